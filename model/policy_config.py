"""The `routes` stack config key: rules per service in VirtualService's own field names.

    routes:
      reviews:
        http:        # replaces the preset's rules of reviews
          - match: [{headers: {end-user: {exact: jason}}}]
            route: [{destination: {subset: v2}}]
      ratings:
        prepend:     # go before the preset's rules of ratings
          - route: [{destination: {subset: v1}}]
            timeout: 2s

Each rule is an Istio HTTPRoute (match, route, fault, mirror, mirrorPercentage, timeout,
retries, headers) routing to subsets of its own service. Every structural problem comes back
at once, at its path (`routes.reviews.http[0].route[0].weight`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from model.http_policy import (
    MATCH_KINDS,
    Abort,
    Delay,
    Destination,
    HeaderChanges,
    HeaderOperations,
    HttpRule,
    Mirror,
    RequestMatch,
    Retries,
    ServiceRoutes,
    StringMatch,
)
from model.policy_validation import PolicyProblem

PLACEMENTS = ("http", "prepend")


class _RefusedError(Exception):
    """A value that cannot be read at all; its problem is already recorded."""


@dataclass
class _Reader:
    problems: list[PolicyProblem] = field(default_factory=list)

    def refuse(self, path: str, value: Any, message: str) -> _RefusedError:
        self.problems.append(PolicyProblem(path, value, message))
        return _RefusedError()

    def mapping(self, path: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.refuse(path, value, f"must be a mapping of {', '.join(allowed)}")
        for key in value:
            if key not in allowed:
                self.problems.append(
                    PolicyProblem(
                        f"{path}.{key}", value[key], f"unknown field; allowed: {', '.join(allowed)}"
                    )
                )
        return value

    def sequence(self, path: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.refuse(path, value, "must be a list")
        return value

    def text(self, path: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.refuse(path, value, "must be a string")
        return value

    def number(self, path: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.refuse(path, value, "must be a number")
        return float(value)

    def whole(self, path: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.refuse(path, value, "must be a whole number")
        return value

    def labels(self, path: str, value: Any) -> dict[str, str]:
        mapping = value if isinstance(value, dict) else None
        if mapping is None or not all(isinstance(v, str) for v in mapping.values()):
            raise self.refuse(path, value, "must map label keys to string values")
        return dict(mapping)

    def each(self, path: str, value: Any, read: Callable[[str, Any], Any]) -> Iterator[Any]:
        """read(item) for each item of a list; items that cannot be read are left out."""
        for index, item in enumerate(self.sequence(path, value)):
            try:
                yield read(f"{path}[{index}]", item)
            except _RefusedError:
                continue

    def string_match(self, path: str, value: Any) -> StringMatch:
        written = self.mapping(path, value, MATCH_KINDS)
        if len(written) != 1 or next(iter(written)) not in MATCH_KINDS:
            raise self.refuse(path, value, f"must hold exactly one of {', '.join(MATCH_KINDS)}")
        ((kind, text),) = written.items()
        return StringMatch(kind, self.text(f"{path}.{kind}", text))

    def string_matches(self, path: str, value: Any) -> dict[str, StringMatch]:
        written = value if isinstance(value, dict) else None
        if written is None:
            raise self.refuse(path, value, "must map names to matches like {exact: value}")
        return {str(k): self.string_match(f"{path}.{k}", v) for k, v in written.items()}

    def request_match(self, path: str, value: Any) -> RequestMatch:
        fields = ("headers", "uri", "queryParams", "method", "sourceLabels", "sourceNamespace")
        written = self.mapping(path, value, fields)
        return RequestMatch(
            headers=self.string_matches(f"{path}.headers", written.get("headers", {})),
            uri=self.string_match(f"{path}.uri", written["uri"]) if "uri" in written else None,
            query_params=self.string_matches(f"{path}.queryParams", written.get("queryParams", {})),
            method=self.string_match(f"{path}.method", written["method"])
            if "method" in written
            else None,
            source_labels=self.labels(f"{path}.sourceLabels", written.get("sourceLabels", {})),
            source_namespace=(
                self.text(f"{path}.sourceNamespace", written["sourceNamespace"])
                if "sourceNamespace" in written
                else None
            ),
        )

    def destination(self, path: str, value: Any, service: str) -> Destination:
        written = self.mapping(path, value, ("destination", "weight"))
        target = self.mapping(f"{path}.destination", written.get("destination"), ("host", "subset"))
        host = target.get("host", service)
        if host != service:
            raise self.refuse(
                f"{path}.destination.host",
                host,
                f"a rule of {service} routes to {service}'s own subsets",
            )
        subset = self.text(f"{path}.destination.subset", target.get("subset"))
        weight = self.whole(f"{path}.weight", written["weight"]) if "weight" in written else 100
        return Destination(subset, weight)

    def percentage(self, path: str, value: Any) -> float:
        written = self.mapping(path, value, ("value",))
        return self.number(f"{path}.value", written.get("value"))

    def fault(self, path: str, value: Any) -> Delay | Abort:
        written = self.mapping(path, value, ("delay", "abort"))
        if len(written) != 1:
            raise self.refuse(path, value, "must hold exactly one of delay, abort")
        if "delay" in written:
            delay = self.mapping(f"{path}.delay", written["delay"], ("fixedDelay", "percentage"))
            return Delay(
                self.text(f"{path}.delay.fixedDelay", delay.get("fixedDelay")),
                self.percentage(
                    f"{path}.delay.percentage", delay.get("percentage", {"value": 100})
                ),
            )
        abort = self.mapping(f"{path}.abort", written["abort"], ("httpStatus", "percentage"))
        return Abort(
            self.whole(f"{path}.abort.httpStatus", abort.get("httpStatus")),
            self.percentage(f"{path}.abort.percentage", abort.get("percentage", {"value": 100})),
        )

    def retries(self, path: str, value: Any) -> Retries:
        written = self.mapping(path, value, ("attempts", "perTryTimeout", "retryOn"))
        return Retries(
            self.whole(f"{path}.attempts", written.get("attempts")),
            self.text(f"{path}.perTryTimeout", written["perTryTimeout"])
            if "perTryTimeout" in written
            else None,
            self.text(f"{path}.retryOn", written["retryOn"]) if "retryOn" in written else None,
        )

    def operations(self, path: str, value: Any) -> HeaderOperations:
        written = self.mapping(path, value, ("set", "add", "remove"))
        return HeaderOperations(
            set=self.labels(f"{path}.set", written.get("set", {})),
            add=self.labels(f"{path}.add", written.get("add", {})),
            remove=tuple(self.each(f"{path}.remove", written.get("remove", []), self.text)),
        )

    def rule(self, path: str, value: Any, service: str) -> HttpRule:
        """A rule; every part is read, so one bad part hides no problem of another."""
        fields = ("match", "route", "fault", "mirror", "mirrorPercentage", "timeout", "retries")
        written = self.mapping(path, value, (*fields, "headers"))
        failed = False

        def part(read: Callable[[], Any]) -> Any:
            nonlocal failed
            try:
                return read()
            except _RefusedError:
                failed = True
                return None

        def optional(key: str, read: Callable[[str, Any], Any]) -> Any:
            return part(lambda: read(f"{path}.{key}", written[key])) if key in written else None

        destinations = part(
            lambda: tuple(
                self.each(
                    f"{path}.route",
                    written.get("route"),
                    lambda p, v: self.destination(p, v, service),
                )
            )
        )
        matches = part(
            lambda: tuple(self.each(f"{path}.match", written.get("match", []), self.request_match))
        )
        mirror = optional("mirror", lambda p, v: self.mapping(p, v, ("host", "subset")))
        percent = optional("mirrorPercentage", self.percentage)
        subset = (
            part(lambda: self.text(f"{path}.mirror.subset", mirror.get("subset")))
            if mirror
            else None
        )
        headers = part(
            lambda: self.mapping(
                f"{path}.headers", written.get("headers", {}), ("request", "response")
            )
        )
        changes = part(
            lambda: HeaderChanges(
                self.operations(f"{path}.headers.request", (headers or {}).get("request", {})),
                self.operations(f"{path}.headers.response", (headers or {}).get("response", {})),
            )
        )
        rule = HttpRule(
            destinations=destinations or (),
            matches=matches or (),
            fault=optional("fault", self.fault),
            mirror=Mirror(subset, 100.0 if percent is None else percent) if subset else None,
            timeout=optional("timeout", self.text),
            retries=optional("retries", self.retries),
            headers=changes or HeaderChanges(),
        )
        if failed:
            raise _RefusedError()
        return rule


@dataclass(frozen=True)
class RoutesChange:
    """A service's rules from config, and whether they replace the preset's or go first."""

    rules: tuple[HttpRule, ...]
    placement: str  # "http": replace; "prepend": before the preset's


def read_routes(
    value: Any, services: tuple[str, ...], root: str = "routes"
) -> tuple[dict[str, RoutesChange], list[PolicyProblem]]:
    """Service -> its change, and every problem of the value (with their paths)."""
    reader = _Reader()
    changes: dict[str, RoutesChange] = {}
    if not isinstance(value, dict):
        return {}, [
            PolicyProblem(
                root, value, "must map service names to {http: [...]} or {prepend: [...]}"
            )
        ]
    for service, entry in value.items():
        path = f"{root}.{service}"
        if service not in services:
            reader.problems.append(
                PolicyProblem(path, service, f"no such service; services: {', '.join(services)}")
            )
            continue
        try:
            written = reader.mapping(path, entry, PLACEMENTS)
        except _RefusedError:
            continue
        given = [p for p in PLACEMENTS if p in written]
        if len(given) != 1:
            reader.problems.append(
                PolicyProblem(path, entry, "needs exactly one of http (replace) or prepend")
            )
            continue
        (placement,) = given
        try:
            rules = tuple(
                reader.each(
                    f"{path}.{placement}",
                    written[placement],
                    lambda p, v, s=service: reader.rule(p, v, s),
                )
            )
        except _RefusedError:
            continue
        changes[service] = RoutesChange(rules, placement)
    return changes, reader.problems


def apply_routes(
    policy: tuple[ServiceRoutes, ...], changes: dict[str, RoutesChange]
) -> tuple[ServiceRoutes, ...]:
    """The preset policy with each service's change from config applied."""
    changed = []
    for routes in policy:
        change = changes.get(routes.service.name)
        if change is None:
            changed.append(routes)
        elif change.placement == "http":
            changed.append(ServiceRoutes(routes.service, change.rules))
        else:
            changed.append(ServiceRoutes(routes.service, change.rules + routes.rules))
    return tuple(changed)
