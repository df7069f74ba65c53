"""Routing policy <-> Istio DestinationRule and VirtualService objects (networking.istio.io/v1).

`virtual_service` and `routes_of` are inverses: reports read the routes back from the objects
the program registered, so they show what is really there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model.http_policy import (
    Abort,
    Delay,
    Destination,
    HeaderChanges,
    HeaderOperations,
    HttpRule,
    Mirror,
    RequestMatch,
    Retries,
    Service,
    ServiceRoutes,
    StringMatch,
)

API_VERSION = "networking.istio.io/v1"
# Set on VirtualServices of a production stack whose config allows fault injection: the
# policy pack (policy/rules.py) then lets their faults through.
FAULT_INJECTION_ANNOTATION = "bookinfo-mesh/fault-injection"
FAULT_INJECTION_ALLOWED = "allowed"


def destination_rule(service: Service) -> dict[str, Any]:
    """The subsets of `service`, each selecting its pods by labels."""
    return {
        "apiVersion": API_VERSION,
        "kind": "DestinationRule",
        "metadata": {"name": service.name, "namespace": service.namespace},
        "spec": {
            "host": service.name,
            "subsets": [
                {"name": name, "labels": dict(labels)} for name, labels in service.subsets.items()
            ],
        },
    }


def _string_match(match: StringMatch) -> dict[str, str]:
    return {match.kind: match.value}


def _match(match: RequestMatch) -> dict[str, Any]:
    block: dict[str, Any] = {}
    if match.headers:
        block["headers"] = {k: _string_match(m) for k, m in match.headers.items()}
    if match.uri is not None:
        block["uri"] = _string_match(match.uri)
    if match.query_params:
        block["queryParams"] = {k: _string_match(m) for k, m in match.query_params.items()}
    if match.method is not None:
        block["method"] = _string_match(match.method)
    if match.source_labels:
        block["sourceLabels"] = dict(match.source_labels)
    if match.source_namespace is not None:
        block["sourceNamespace"] = match.source_namespace
    return block


def _fault(fault: Delay | Abort) -> dict[str, Any]:
    if isinstance(fault, Delay):
        return {"delay": {"fixedDelay": fault.fixed_delay, "percentage": {"value": fault.percent}}}
    return {"abort": {"httpStatus": fault.http_status, "percentage": {"value": fault.percent}}}


def _operations(operations: HeaderOperations) -> dict[str, Any]:
    written: dict[str, Any] = {}
    if operations.set:
        written["set"] = dict(operations.set)
    if operations.add:
        written["add"] = dict(operations.add)
    if operations.remove:
        written["remove"] = list(operations.remove)
    return written


def http_route(host: str, rule: HttpRule) -> dict[str, Any]:
    """A rule as a VirtualService's http entry (and as the `routes` config key writes it)."""
    http: dict[str, Any] = {}
    if rule.matches:
        http["match"] = [_match(m) for m in rule.matches]
    if rule.fault is not None:
        http["fault"] = _fault(rule.fault)
    single = len(rule.destinations) == 1
    http["route"] = [
        {"destination": {"host": host, "subset": d.subset}}
        | ({} if single else {"weight": d.weight})
        for d in rule.destinations
    ]
    if rule.mirror is not None:
        http["mirror"] = {"host": host, "subset": rule.mirror.subset}
        http["mirrorPercentage"] = {"value": rule.mirror.percent}
    if rule.timeout is not None:
        http["timeout"] = rule.timeout
    if rule.retries is not None:
        retries: dict[str, Any] = {"attempts": rule.retries.attempts}
        if rule.retries.per_try_timeout is not None:
            retries["perTryTimeout"] = rule.retries.per_try_timeout
        if rule.retries.retry_on is not None:
            retries["retryOn"] = rule.retries.retry_on
        http["retries"] = retries
    if rule.headers:
        http["headers"] = {
            part: _operations(operations)
            for part, operations in (
                ("request", rule.headers.request),
                ("response", rule.headers.response),
            )
            if operations
        }
    return http


def virtual_service(routes: ServiceRoutes) -> dict[str, Any]:
    """The mesh-internal routes of a service; its name never depends on the rules."""
    service = routes.service
    return {
        "apiVersion": API_VERSION,
        "kind": "VirtualService",
        "metadata": {"name": service.name, "namespace": service.namespace},
        "spec": {
            "hosts": [service.name],
            "http": [http_route(service.name, r) for r in routes.rules],
        },
    }


def traffic_manifests(policy: tuple[ServiceRoutes, ...]) -> list[dict[str, Any]]:
    """All DestinationRules, then all VirtualServices: subsets exist before routes name them."""
    return [destination_rule(r.service) for r in policy] + [virtual_service(r) for r in policy]


# ---- back from the objects ------------------------------------------------------------------


def _read_match(match: Mapping[str, str]) -> StringMatch:
    ((kind, value),) = match.items()
    return StringMatch(kind, value)


def _read_request_match(block: Mapping[str, Any]) -> RequestMatch:
    return RequestMatch(
        headers={k: _read_match(m) for k, m in (block.get("headers") or {}).items()},
        uri=_read_match(block["uri"]) if "uri" in block else None,
        query_params={k: _read_match(m) for k, m in (block.get("queryParams") or {}).items()},
        method=_read_match(block["method"]) if "method" in block else None,
        source_labels=dict(block.get("sourceLabels") or {}),
        source_namespace=block.get("sourceNamespace"),
    )


def _read_operations(written: Mapping[str, Any] | None) -> HeaderOperations:
    written = written or {}
    return HeaderOperations(
        set=dict(written.get("set") or {}),
        add=dict(written.get("add") or {}),
        remove=tuple(written.get("remove") or ()),
    )


def _read_rule(http: Mapping[str, Any]) -> HttpRule:
    fault: Delay | Abort | None = None
    written_fault = http.get("fault") or {}
    if "delay" in written_fault:
        delay = written_fault["delay"]
        fault = Delay(delay["fixedDelay"], float(delay["percentage"]["value"]))
    elif "abort" in written_fault:
        abort = written_fault["abort"]
        fault = Abort(int(abort["httpStatus"]), float(abort["percentage"]["value"]))
    mirror = None
    if "mirror" in http:
        percent = float((http.get("mirrorPercentage") or {}).get("value", 100.0))
        mirror = Mirror(http["mirror"]["subset"], percent)
    retries = None
    if "retries" in http:
        written = http["retries"]
        retries = Retries(
            int(written["attempts"]), written.get("perTryTimeout"), written.get("retryOn")
        )
    headers = http.get("headers") or {}
    return HttpRule(
        destinations=tuple(
            Destination(r["destination"]["subset"], int(r.get("weight", 100)))
            for r in http["route"]
        ),
        matches=tuple(_read_request_match(m) for m in http.get("match") or ()),
        fault=fault,
        mirror=mirror,
        timeout=http.get("timeout"),
        retries=retries,
        headers=HeaderChanges(
            _read_operations(headers.get("request")), _read_operations(headers.get("response"))
        ),
    )


def routes_of(virtual_services: list[dict[str, Any]]) -> dict[str, tuple[HttpRule, ...]]:
    """Service -> rules, read from mesh VirtualServices as generated here (gateway ones skipped)."""
    return {
        vs["spec"]["hosts"][0]: tuple(_read_rule(h) for h in vs["spec"]["http"])
        for vs in virtual_services
        if "gateways" not in vs["spec"]
    }
