"""Traffic modes of the scenario as a route table: service -> ordered HTTP rules. Pure data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from model.catalogue import SERVICES


class Mode(StrEnum):
    """The scenario's steps, each one of Istio's samples/bookinfo/networking files."""

    ALL_V1 = "all-v1"  # virtual-service-all-v1.yaml
    USER_V2 = "user-v2"  # + virtual-service-reviews-test-v2.yaml
    DELAY = "delay"  # + user-v2 + virtual-service-ratings-test-delay.yaml
    ABORT = "abort"  # + user-v2 + virtual-service-ratings-test-abort.yaml
    SPLIT50 = "split50"  # + virtual-service-reviews-50-v3.yaml
    V3 = "v3"  # + virtual-service-reviews-v3.yaml


MODES: tuple[str, ...] = tuple(m.value for m in Mode)

# Istio durations as its CRDs accept them (Go style: 7s, 500ms, 1m30s, 1.5s).
# ASCII digits only: "\d" would take full-width ones, which Istio's Go parser refuses.
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|m|s)")
# In milliseconds, so that "350ms" is exactly 350 / 1000 and not 350 * 0.001 (0.35000000000000003).
_DURATION_MS = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def parse_duration(text: str) -> float:
    """Seconds in an Istio duration string; ValueError if it is not one."""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 7s, 500ms or 1m30s")
    return sum(float(n) * _DURATION_MS[u] for n, u in parts) / 1000


@dataclass(frozen=True)
class Destination:
    """A subset of the rule's host and the percentage of requests it receives."""

    subset: str
    weight: int = 100


@dataclass(frozen=True)
class Delay:
    """Istio fault: hold `percent` % of requests for `fixed_delay` before forwarding."""

    fixed_delay: str
    percent: float

    @property
    def seconds(self) -> float:
        return parse_duration(self.fixed_delay)


@dataclass(frozen=True)
class Abort:
    """Istio fault: answer `percent` % of requests with `http_status` at once."""

    http_status: int
    percent: float


Fault = Delay | Abort


@dataclass(frozen=True)
class HttpRoute:
    """One rule of a VirtualService: who it matches, which fault, where it sends."""

    destinations: tuple[Destination, ...]
    user: str | None = None  # matches header end-user exactly; None matches everyone
    fault: Fault | None = None

    def matches(self, user: str | None) -> bool:
        return self.user is None or self.user == user


RouteTable = Mapping[str, tuple[HttpRoute, ...]]


@dataclass(frozen=True)
class TrafficSettings:
    """The knobs of the fault and split steps (stack config keys in comments)."""

    test_user: str = "jason"  # testUser
    fault_delay: str = "7s"  # faultDelay
    fault_abort_status: int = 500  # faultAbortStatus
    fault_percent: float = 100.0  # faultPercent
    split_weights: Mapping[str, int] = field(  # splitWeights
        default_factory=lambda: MappingProxyType({"v1": 50, "v3": 50})
    )


def _to(subset: str) -> tuple[HttpRoute, ...]:
    return (HttpRoute((Destination(subset),)),)


def _split(weights: Mapping[str, int]) -> tuple[HttpRoute, ...]:
    # Zero weights are dropped: Istio needs no destination that receives nothing.
    kept = tuple(Destination(s, w) for s, w in weights.items() if w > 0)
    return (HttpRoute(kept),)


def route_table(mode: Mode, settings: TrafficSettings) -> RouteTable:
    """The effective rules per service after the scenario has applied `mode`.

    Modes layer as the workshop applies them: every step starts from all-v1, and the
    fault steps also keep user-v2, because only reviews v2 calls ratings for the test
    user (v1 never does), so without it the injected fault would be invisible.
    """
    table: dict[str, tuple[HttpRoute, ...]] = {s: _to("v1") for s in SERVICES}
    user = settings.test_user
    if mode in (Mode.USER_V2, Mode.DELAY, Mode.ABORT):
        table["reviews"] = (HttpRoute((Destination("v2"),), user=user), *_to("v1"))
    if mode in (Mode.DELAY, Mode.ABORT):
        fault: Fault = (
            Delay(settings.fault_delay, settings.fault_percent)
            if mode is Mode.DELAY
            else Abort(settings.fault_abort_status, settings.fault_percent)
        )
        table["ratings"] = (HttpRoute((Destination("v1"),), user=user, fault=fault), *_to("v1"))
    if mode is Mode.SPLIT50:
        table["reviews"] = _split(settings.split_weights)
    if mode is Mode.V3:
        table["reviews"] = _to("v3")
    return MappingProxyType(table)


def rule_for(rules: tuple[HttpRoute, ...], user: str | None) -> HttpRoute:
    """The rule Envoy picks for a request: the first one that matches (Istio semantics)."""
    for rule in rules:
        if rule.matches(user):
            return rule
    raise LookupError(f"no rule matches user {user!r}: the service would answer 404")


def describe_rule(rule: HttpRoute) -> dict[str, object]:
    """A rule as plain, readable data: who it matches, its fault, where traffic goes."""
    described: dict[str, object] = {
        "match": f"end-user={rule.user}" if rule.user is not None else "*",
        "to": {d.subset: d.weight for d in rule.destinations},
    }
    if isinstance(rule.fault, Delay):
        described["fault"] = f"delay {rule.fault.fixed_delay} ({rule.fault.percent:g} %)"
    elif isinstance(rule.fault, Abort):
        described["fault"] = f"abort {rule.fault.http_status} ({rule.fault.percent:g} %)"
    return described


def describe_routes(table: RouteTable) -> dict[str, list[dict[str, object]]]:
    """The route table as plain data, for stack outputs and reports."""
    return {service: [describe_rule(r) for r in rules] for service, rules in table.items()}
