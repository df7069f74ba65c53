"""TrafficPolicy: the DestinationRules and VirtualServices of a routing policy, for any services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from components.k8s_objects import register_object
from components.options import declared_dependencies
from model.http_policy import ServiceRoutes
from model.policy_manifests import (
    FAULT_INJECTION_ALLOWED,
    FAULT_INJECTION_ANNOTATION,
    destination_rule,
    virtual_service,
)
from model.policy_validation import validate_policy
from model.routing import describe_routes


@dataclass(frozen=True)
class TrafficPolicyArgs:
    """Each service, its subsets and its ordered rules (model.http_policy)."""

    routes: tuple[ServiceRoutes, ...]
    # Service -> the labels of its pods, where known: a route to a subset that selects none
    # of them is refused (it would answer 503).
    workloads: Mapping[str, tuple[Mapping[str, str], ...]] | None = None
    # Marks the objects so policy checks can tell a deliberate production fault from a typo.
    allow_fault_injection: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict)


class TrafficPolicy(pulumi.ComponentResource):
    """One DestinationRule and one VirtualService per service, from its subsets and rules.

    The policy is checked whole before anything is registered (model.policy_validation).
    Names never depend on the rules, so a change of rules is an in-place update of the same
    objects, like re-applying a VirtualService with kubectl. Give it istiod (validation
    webhook) and the namespaces the objects live in as `depends_on`.
    """

    routes: pulumi.Output[dict]

    def __init__(
        self, name: str, args: TrafficPolicyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        policy = validate_policy(args.routes, args.workloads)  # PolicyError before any resource
        super().__init__("bookinfo:index:TrafficPolicy", name, None, opts)
        prerequisites = declared_dependencies(opts)
        annotations = dict(args.annotations)
        if args.allow_fault_injection:
            annotations[FAULT_INJECTION_ANNOTATION] = FAULT_INJECTION_ALLOWED
        rules = {
            routes.service.name: register_object(
                f"{name}-dr-{routes.service.name}",
                destination_rule(routes.service),
                pulumi.ResourceOptions(parent=self, depends_on=prerequisites),
            )
            for routes in policy
        }
        for routes in policy:
            manifest = virtual_service(routes)
            if annotations:
                manifest["metadata"]["annotations"] = dict(annotations)
            register_object(
                f"{name}-vs-{routes.service.name}",
                manifest,
                # A route naming a subset no DestinationRule defines answers 503.
                pulumi.ResourceOptions(
                    parent=self, depends_on=[*prerequisites, rules[routes.service.name]]
                ),
            )
        table = {routes.service.name: routes.rules for routes in policy}
        self.routes = pulumi.Output.from_input(describe_routes(table))
        self.register_outputs({"routes": self.routes})
