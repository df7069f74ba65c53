"""What each cohort's requests meet, service by service, along the declared calls. Pure.

A cohort is the request properties its users send (headers, path, method). Requests enter at
the entry service and follow the declared calls; at each service the first matching rule
decides which subsets answer, with what share, and which fault, mirror, timeout and retries
apply. A caller's pods are the source the next service's rules see (sourceLabels).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from model.http_policy import Abort, Delay, HttpRule, Request, ServiceRoutes, first_rule


@dataclass(frozen=True)
class Cohort:
    name: str
    request: Request = field(default_factory=Request)


@dataclass(frozen=True)
class ServicePrediction:
    """What a cohort's requests to one service meet: shares are of the cohort's requests."""

    reached: float  # share of the cohort's requests that reach the service
    subsets: Mapping[str, float]  # subset -> share answered by it
    faults: Mapping[str, float]  # "delay 7s", "abort 503" -> share of requests that get it
    not_routed: float = 0.0  # share no rule matched: Envoy answers 404
    timeouts: tuple[str, ...] = ()
    retries: tuple[int, ...] = ()
    mirrors: Mapping[str, float] = field(default_factory=dict)  # subset -> share copied


@dataclass
class _Flow:
    """Requests arriving at a service from one source, as a share of the cohort's."""

    share: float
    source_labels: Mapping[str, str]
    source_namespace: str | None


def callees(
    calls: Mapping[str, tuple[str, ...]], service: str, subset: str | None
) -> tuple[str, ...]:
    """What a subset's pods call: its own entry ("reviews/v1") if declared, else the service's."""
    if subset is not None and f"{service}/{subset}" in calls:
        return calls[f"{service}/{subset}"]
    return calls.get(service, ())


def _order(entry: str, calls: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Services reachable from `entry`, each after every caller of it; ValueError on a loop."""
    graph: dict[str, set[str]] = defaultdict(set)
    for caller, called in calls.items():
        graph[caller.partition("/")[0]].update(called)
    reachable, frontier = {entry}, [entry]
    while frontier:
        for callee in graph.get(frontier.pop(), ()):
            if callee not in reachable:
                reachable.add(callee)
                frontier.append(callee)
    waiting = dict.fromkeys(reachable, 0)  # callers not yet placed
    for caller in reachable:
        for callee in graph.get(caller, ()):
            waiting[callee] += 1
    ready = sorted(s for s, count in waiting.items() if count == 0)
    order: list[str] = []
    while ready:
        service = ready.pop()
        order.append(service)
        for callee in sorted(graph.get(service, ())):
            waiting[callee] -= 1
            if waiting[callee] == 0:
                ready.append(callee)
    if len(order) < len(reachable):
        looped = sorted(s for s, count in waiting.items() if count > 0)
        raise ValueError(f"the calls loop: {', '.join(looped)} call each other")
    return order


def _fault_name(rule: HttpRule) -> str | None:
    if isinstance(rule.fault, Delay):
        return f"delay {rule.fault.fixed_delay}"
    if isinstance(rule.fault, Abort):
        return f"abort {rule.fault.http_status}"
    return None


def predict(
    policy: tuple[ServiceRoutes, ...],
    cohorts: tuple[Cohort, ...],
    entry: str,
    calls: Mapping[str, tuple[str, ...]],
    entry_source: Mapping[str, str] | None = None,
) -> dict[str, dict[str, ServicePrediction]]:
    """Cohort name -> service -> prediction, for every service the entry's calls reach.

    `calls` maps a service (or one subset, "reviews/v1") to the services its pods call.
    Aborted requests call nothing further; delayed ones do, later. `entry_source` is the
    labels of whatever sends the requests in (the ingress gateway's pods).
    """
    routes = {r.service.name: r for r in policy}
    order = _order(entry, calls)
    predictions: dict[str, dict[str, ServicePrediction]] = {}
    for cohort in cohorts:
        inbound: dict[str, list[_Flow]] = defaultdict(list)
        inbound[entry].append(_Flow(1.0, dict(entry_source or {}), None))
        found: dict[str, ServicePrediction] = {}
        for service in order:
            flows = inbound.get(service, [])
            if not flows or service not in routes:
                continue
            subsets: dict[str, float] = defaultdict(float)
            faults: dict[str, float] = defaultdict(float)
            mirrors: dict[str, float] = defaultdict(float)
            not_routed = 0.0
            timeouts, retries = set(), set()
            onward: dict[str, float] = defaultdict(float)  # subset -> share calling onward
            for flow in flows:
                request = replace(
                    cohort.request,
                    source_labels=flow.source_labels,
                    source_namespace=flow.source_namespace,
                )
                rule = first_rule(routes[service].rules, request)
                if rule is None:
                    not_routed += flow.share
                    continue
                aborted = rule.fault.percent / 100 if isinstance(rule.fault, Abort) else 0.0
                if (name := _fault_name(rule)) is not None and rule.fault is not None:
                    faults[name] += flow.share * rule.fault.percent / 100
                if rule.mirror is not None:
                    mirrors[rule.mirror.subset] += flow.share * rule.mirror.percent / 100
                if rule.timeout is not None:
                    timeouts.add(rule.timeout)
                if rule.retries is not None:
                    retries.add(rule.retries.attempts)
                total = sum(d.weight for d in rule.destinations)
                for destination in rule.destinations:
                    share = flow.share * destination.weight / total * (1 - aborted)
                    subsets[destination.subset] += share
                    onward[destination.subset] += share
            found[service] = ServicePrediction(
                reached=sum(f.share for f in flows),
                subsets=dict(subsets),
                faults=dict(faults),
                not_routed=not_routed,
                timeouts=tuple(sorted(timeouts)),
                retries=tuple(sorted(retries)),
                mirrors=dict(mirrors),
            )
            namespace = routes[service].service.namespace
            for subset, share in onward.items():
                labels = routes[service].service.subsets.get(subset, {})
                for callee in callees(calls, service, subset):
                    inbound[callee].append(_Flow(share, dict(labels), namespace))
        predictions[cohort.name] = found
    return predictions
