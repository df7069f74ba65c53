"""TrafficPolicy: the DestinationRules and VirtualServices that put a traffic mode in place."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.k8s_objects import register_object
from components.options import declared_dependencies
from model.istio_manifests import (
    FAULT_INJECTION_ALLOWED,
    FAULT_INJECTION_ANNOTATION,
    destination_rule_manifest,
    virtual_service_manifest,
)
from model.routing import Mode, TrafficSettings, describe_routes, route_table


@dataclass(frozen=True)
class TrafficPolicyArgs:
    """The scenario step to apply and its knobs."""

    mode: Mode
    settings: TrafficSettings = field(default_factory=TrafficSettings)
    # Marks the objects so policy checks can tell a deliberate production fault from a typo.
    allow_fault_injection: bool = False


class TrafficPolicy(pulumi.ComponentResource):
    """One DestinationRule and one VirtualService per Bookinfo service, specs set by mode.

    Names never depend on the mode, so a mode change is an in-place update of the same
    objects, exactly like re-applying the upstream sample files with kubectl. Give it istiod
    (validation webhook) and the namespace the objects live in as `depends_on`.
    """

    routes: pulumi.Output[dict]

    def __init__(
        self, name: str, args: TrafficPolicyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("bookinfo:index:TrafficPolicy", name, None, opts)
        table = route_table(args.mode, args.settings)
        prerequisites = declared_dependencies(opts)
        rules = {
            service: register_object(
                f"{name}-dr-{service}",
                destination_rule_manifest(service),
                pulumi.ResourceOptions(parent=self, depends_on=prerequisites),
            )
            for service in table
        }
        for service, service_rules in table.items():
            manifest = virtual_service_manifest(service, service_rules)
            if args.allow_fault_injection:
                manifest["metadata"]["annotations"] = {
                    FAULT_INJECTION_ANNOTATION: FAULT_INJECTION_ALLOWED
                }
            named_hosts = {
                route["destination"]["host"]
                for http in manifest["spec"]["http"]
                for route in http["route"]
            }
            register_object(
                f"{name}-vs-{service}",
                manifest,
                # A route naming a subset no DestinationRule defines answers 503.
                pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*prerequisites, *(rules[h] for h in sorted(named_hosts))],
                ),
            )
        self.routes = pulumi.Output.from_input(describe_routes(table))
        self.register_outputs({"mode": args.mode.value, "routes": self.routes})
