"""Route table -> Istio DestinationRule and VirtualService objects (networking.istio.io/v1)."""

from __future__ import annotations

from typing import Any

from model.catalogue import (
    DESTINATION_RULE_SUBSETS,
    NAMESPACE,
    SERVICES,
    TEST_USER_HEADER,
)
from model.routing import Abort, Delay, Destination, HttpRoute, RouteTable

API_VERSION = "networking.istio.io/v1"
# Set on VirtualServices of a production stack whose config allows fault injection.
FAULT_INJECTION_ANNOTATION = "bookinfo-mesh/fault-injection"
FAULT_INJECTION_ALLOWED = "allowed"


def destination_rule_manifest(service: str) -> dict[str, Any]:
    """The upstream subsets of `service`, one per `version` label."""
    return {
        "apiVersion": API_VERSION,
        "kind": "DestinationRule",
        "metadata": {"name": service, "namespace": NAMESPACE},
        "spec": {
            "host": service,
            "subsets": [
                {"name": s, "labels": {"version": s}} for s in DESTINATION_RULE_SUBSETS[service]
            ],
        },
    }


def _http_rule(service: str, rule: HttpRoute) -> dict[str, Any]:
    http: dict[str, Any] = {}
    if rule.user is not None:
        http["match"] = [{"headers": {TEST_USER_HEADER: {"exact": rule.user}}}]
    if isinstance(rule.fault, Delay):
        http["fault"] = {
            "delay": {
                "fixedDelay": rule.fault.fixed_delay,
                "percentage": {"value": rule.fault.percent},
            }
        }
    elif isinstance(rule.fault, Abort):
        http["fault"] = {
            "abort": {
                "httpStatus": rule.fault.http_status,
                "percentage": {"value": rule.fault.percent},
            }
        }
    single = len(rule.destinations) == 1
    http["route"] = [
        {"destination": {"host": service, "subset": d.subset}}
        | ({} if single else {"weight": d.weight})
        for d in rule.destinations
    ]
    return http


def virtual_service_manifest(service: str, rules: tuple[HttpRoute, ...]) -> dict[str, Any]:
    """The mesh-internal routes of `service`; its name never depends on the mode."""
    return {
        "apiVersion": API_VERSION,
        "kind": "VirtualService",
        "metadata": {"name": service, "namespace": NAMESPACE},
        "spec": {"hosts": [service], "http": [_http_rule(service, r) for r in rules]},
    }


def traffic_manifests(table: RouteTable) -> list[dict[str, Any]]:
    """All DestinationRules, then all VirtualServices: subsets exist before routes name them."""
    return [destination_rule_manifest(s) for s in SERVICES] + [
        virtual_service_manifest(s, table[s]) for s in SERVICES
    ]


def _rule_from_http(http: dict[str, Any]) -> HttpRoute:
    user = None
    for match in http.get("match") or []:
        user = match["headers"][TEST_USER_HEADER]["exact"]
    fault: Delay | Abort | None = None
    if "delay" in (http.get("fault") or {}):
        delay = http["fault"]["delay"]
        fault = Delay(delay["fixedDelay"], float(delay["percentage"]["value"]))
    elif "abort" in (http.get("fault") or {}):
        abort = http["fault"]["abort"]
        fault = Abort(int(abort["httpStatus"]), float(abort["percentage"]["value"]))
    destinations = tuple(
        Destination(r["destination"]["subset"], int(r.get("weight", 100))) for r in http["route"]
    )
    return HttpRoute(destinations, user=user, fault=fault)


def routes_from_manifests(virtual_services: list[dict[str, Any]]) -> RouteTable:
    """The route table that VirtualServices as generated here put in place (inverse of above).

    Reading the objects back, rather than recomputing from the mode, makes reports show
    what the program really registered.
    """
    return {
        vs["spec"]["hosts"][0]: tuple(_rule_from_http(h) for h in vs["spec"]["http"])
        for vs in virtual_services
        if "gateways" not in vs["spec"]
    }
