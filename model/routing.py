"""Bookinfo's traffic modes as presets of the generic routing model (model.http_policy).

Each mode is the route table the scenario leaves after applying it: service -> ordered rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from model.catalogue import DESTINATION_RULE_SUBSETS, NAMESPACE, SERVICES, TEST_USER_HEADER
from model.http_policy import (
    Abort,
    Delay,
    Destination,
    Fault,
    HttpRule,
    Request,
    RequestMatch,
    Service,
    ServiceRoutes,
    StringMatch,
    first_rule,
)


class Mode(StrEnum):
    """The scenario's steps, each one of Istio's samples/bookinfo/networking files."""

    ALL_V1 = "all-v1"  # virtual-service-all-v1.yaml
    USER_V2 = "user-v2"  # + virtual-service-reviews-test-v2.yaml
    DELAY = "delay"  # + user-v2 + virtual-service-ratings-test-delay.yaml
    ABORT = "abort"  # + user-v2 + virtual-service-ratings-test-abort.yaml
    SPLIT50 = "split50"  # + virtual-service-reviews-50-v3.yaml
    V3 = "v3"  # + virtual-service-reviews-v3.yaml


MODES: tuple[str, ...] = tuple(m.value for m in Mode)

RouteTable = Mapping[str, tuple[HttpRule, ...]]


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


def user_match(user: str) -> RequestMatch:
    """Requests of a logged-in user: productpage sends the name as header end-user."""
    return RequestMatch(headers={TEST_USER_HEADER: StringMatch("exact", user)})


def cohort_request(user: str | None) -> Request:
    """A request as productpage sends it for a visitor (None) or a logged-in user."""
    return Request(headers={TEST_USER_HEADER: user} if user is not None else {})


def bookinfo_rule(
    destinations: tuple[Destination, ...], user: str | None = None, fault: Fault | None = None
) -> HttpRule:
    """A rule as the scenario writes them: for one logged-in user (None: everyone)."""
    matches = (user_match(user),) if user is not None else ()
    return HttpRule(destinations, matches=matches, fault=fault)


def _to(subset: str) -> tuple[HttpRule, ...]:
    return (bookinfo_rule((Destination(subset),)),)


# The service whose canary the modes split50 and v3 move (splitWeights weighs its subsets).
CANARY_SERVICE = "reviews"


def _split(weights: Mapping[str, int]) -> tuple[HttpRule, ...]:
    # Zero weights are dropped: Istio needs no destination that receives nothing.
    kept = tuple(Destination(s, w) for s, w in weights.items() if w > 0)
    return (bookinfo_rule(kept),)


def route_table(mode: Mode, settings: TrafficSettings) -> RouteTable:
    """The effective rules per service after the scenario has applied `mode`.

    Modes layer as the workshop applies them: every step starts from all-v1, and the
    fault steps also keep user-v2, because only reviews v2 calls ratings for the test
    user (v1 never does), so without it the injected fault would be invisible.
    """
    table: dict[str, tuple[HttpRule, ...]] = {s: _to("v1") for s in SERVICES}
    user = settings.test_user
    if mode in (Mode.USER_V2, Mode.DELAY, Mode.ABORT):
        table["reviews"] = (bookinfo_rule((Destination("v2"),), user), *_to("v1"))
    if mode in (Mode.DELAY, Mode.ABORT):
        fault: Fault = (
            Delay(settings.fault_delay, settings.fault_percent)
            if mode is Mode.DELAY
            else Abort(settings.fault_abort_status, settings.fault_percent)
        )
        table["ratings"] = (bookinfo_rule((Destination("v1"),), user, fault), *_to("v1"))
    if mode is Mode.SPLIT50:
        table[CANARY_SERVICE] = _split(settings.split_weights)
    if mode is Mode.V3:
        table[CANARY_SERVICE] = _to("v3")
    return MappingProxyType(table)


def bookinfo_service(name: str) -> Service:
    """A Bookinfo service with upstream destination-rule-all.yaml's subsets (label `version`)."""
    subsets = {s: MappingProxyType({"version": s}) for s in DESTINATION_RULE_SUBSETS[name]}
    return Service(name, NAMESPACE, MappingProxyType(subsets))


def bookinfo_policy(table: RouteTable) -> tuple[ServiceRoutes, ...]:
    """A route table of Bookinfo's services as the generic policy TrafficPolicy takes."""
    return tuple(ServiceRoutes(bookinfo_service(name), table[name]) for name in SERVICES)


def rule_for(rules: tuple[HttpRule, ...], user: str | None) -> HttpRule:
    """The rule Envoy picks for a Bookinfo visitor (None) or logged-in user."""
    rule = first_rule(rules, cohort_request(user))
    if rule is None:
        raise LookupError(f"no rule matches user {user!r}: the service would answer 404")
    return rule


def _condition(name: str, match: StringMatch) -> str:
    operator = {"exact": "=", "prefix": "^=", "regex": "~"}[match.kind]
    return f"{name}{operator}{match.value}"


def describe_match(match: RequestMatch) -> str:
    """A match block as one line: `end-user=jason`, `uri^=/api method=GET`."""
    parts = [_condition(k, m) for k, m in match.headers.items()]
    if match.uri is not None:
        parts.append(_condition("uri", match.uri))
    parts += [_condition(f"?{k}", m) for k, m in match.query_params.items()]
    if match.method is not None:
        parts.append(_condition("method", match.method))
    parts += [f"from {k}={v}" for k, v in match.source_labels.items()]
    if match.source_namespace is not None:
        parts.append(f"from namespace {match.source_namespace}")
    return " ".join(parts)


def describe_rule(rule: HttpRule) -> dict[str, object]:
    """A rule as plain, readable data: who it matches, its fault, where traffic goes."""
    described: dict[str, object] = {
        "match": " | ".join(map(describe_match, rule.matches)) if rule.matches else "*",
        "to": {d.subset: d.weight for d in rule.destinations},
    }
    if isinstance(rule.fault, Delay):
        described["fault"] = f"delay {rule.fault.fixed_delay} ({rule.fault.percent:g} %)"
    elif isinstance(rule.fault, Abort):
        described["fault"] = f"abort {rule.fault.http_status} ({rule.fault.percent:g} %)"
    if rule.mirror is not None:
        described["mirror"] = f"{rule.mirror.subset} ({rule.mirror.percent:g} %)"
    if rule.timeout is not None:
        described["timeout"] = rule.timeout
    if rule.retries is not None:
        described["retries"] = rule.retries.attempts
    return described


def describe_routes(table: RouteTable) -> dict[str, list[dict[str, object]]]:
    """The route table as plain data, for stack outputs and reports."""
    return {service: [describe_rule(r) for r in rules] for service, rules in table.items()}
