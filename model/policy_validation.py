"""Every problem of a routing policy at once, each at its path, before any resource exists.

Paths read like the config that holds the policy: `routes.reviews.http[2].match[0].headers.
end-user.regex`. Rules are checked as Istio and Envoy will take them (RE2 regular expressions,
Go durations, Envoy's retry conditions), plus what would silently misroute: weights that do
not sum to 100, subsets that do not exist or select no pods, rules no request can reach.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from model.http_policy import (
    MATCH_KINDS,
    Abort,
    Delay,
    HeaderOperations,
    HttpRule,
    RegexError,
    RequestMatch,
    ServiceRoutes,
    StringMatch,
    compile_regex,
    parse_duration,
)

# RFC 9110 token (header and method names) and a DNS-1123 label (service and subset names).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
# Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on conditions, which Istio's retryOn takes
# (with HTTP status codes, for retriable-status-codes).
RETRY_CONDITIONS = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
MAX_RETRY_ATTEMPTS = 10
FAULT_DELAY_RANGE_S = (0.001, 300.0)
ABORT_STATUS_RANGE = (400, 599)


@dataclass(frozen=True)
class PolicyProblem:
    """One problem: where it is, the value found there, and what would be right."""

    path: str
    value: object
    message: str

    def __str__(self) -> str:
        return f"{self.path} = {self.value!r}: {self.message}"


class PolicyError(ValueError):
    """Every problem of a policy, reported together."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"invalid routing policy: {problems[0]}")
        else:
            lines = "\n".join(f"  - {p}" for p in problems)
            super().__init__(f"invalid routing policy ({len(problems)} problems):\n{lines}")


def _duration(
    path: str, text: str, low: float = 0.001, high: float | None = None
) -> Iterator[PolicyProblem]:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        yield PolicyProblem(path, text, str(error))
        return
    if high is not None and not low <= seconds <= high:
        yield PolicyProblem(path, text, f"must be between {low * 1000:g}ms and {high:g}s")
    elif seconds < low:
        yield PolicyProblem(path, text, f"must be {low * 1000:g}ms or more")


def _percent(path: str, value: float) -> Iterator[PolicyProblem]:
    if not 0 <= value <= 100:
        yield PolicyProblem(path, value, "must be a percentage from 0 to 100")


def _string_match(
    path: str, match: StringMatch, kinds: tuple[str, ...] = MATCH_KINDS
) -> Iterator[PolicyProblem]:
    where = f"{path}.{match.kind}"
    if match.kind not in kinds:
        yield PolicyProblem(path, match.kind, f"must be one of {', '.join(kinds)}")
    elif match.kind == "regex":
        try:
            compile_regex(match.value)
        except RegexError as error:
            yield PolicyProblem(where, match.value, f"is not an RE2 regular expression: {error}")
    elif not _HEADER_VALUE.fullmatch(match.value):
        yield PolicyProblem(where, match.value, "must be visible ASCII text")


def _request_match(path: str, match: RequestMatch) -> Iterator[PolicyProblem]:
    for name, header in match.headers.items():
        if not _TOKEN.fullmatch(name) or name != name.lower():
            yield PolicyProblem(f"{path}.headers", name, "header names are lower-case HTTP tokens")
        yield from _string_match(f"{path}.headers.{name}", header)
    if match.uri is not None:
        yield from _string_match(f"{path}.uri", match.uri)
        if match.uri.kind != "regex" and not match.uri.value.startswith("/"):
            yield PolicyProblem(
                f"{path}.uri.{match.uri.kind}", match.uri.value, "a path starts with /"
            )
    for name, param in match.query_params.items():
        # Istio matches query parameters exactly or by regex only.
        yield from _string_match(f"{path}.queryParams.{name}", param, ("exact", "regex"))
    if match.method is not None:
        yield from _string_match(f"{path}.method", match.method)
    for key, value in match.source_labels.items():
        if not key or not value:
            yield PolicyProblem(
                f"{path}.sourceLabels", {key: value}, "labels need a key and a value"
            )
    if match.source_namespace is not None and not _LABEL.fullmatch(match.source_namespace):
        yield PolicyProblem(
            f"{path}.sourceNamespace", match.source_namespace, "must be a namespace name"
        )


def _headers(path: str, operations: HeaderOperations) -> Iterator[PolicyProblem]:
    for part in ("set", "add"):
        for name, value in getattr(operations, part).items():
            if not _TOKEN.fullmatch(name):
                yield PolicyProblem(f"{path}.{part}", name, "header names are HTTP tokens")
            if not _HEADER_VALUE.fullmatch(value):
                yield PolicyProblem(f"{path}.{part}.{name}", value, "must be visible ASCII text")
    for index, name in enumerate(operations.remove):
        if not _TOKEN.fullmatch(name):
            yield PolicyProblem(f"{path}.remove[{index}]", name, "header names are HTTP tokens")


def _rule(path: str, rule: HttpRule, subsets: Mapping[str, bool]) -> Iterator[PolicyProblem]:
    """`subsets`: subset name -> whether it selects a known pod (True when pods are unknown)."""
    for index, match in enumerate(rule.matches):
        yield from _request_match(f"{path}.match[{index}]", match)
    if not rule.destinations:
        yield PolicyProblem(f"{path}.route", [], "needs at least one destination")
    for index, destination in enumerate(rule.destinations):
        where = f"{path}.route[{index}]"
        yield from _subset(f"{where}.subset", destination.subset, subsets)
        if isinstance(destination.weight, bool) or not 0 <= destination.weight <= 100:
            yield PolicyProblem(
                f"{where}.weight", destination.weight, "must be a whole number from 0 to 100"
            )
    if len(rule.destinations) > 1:
        total = sum(d.weight for d in rule.destinations)
        if total != 100:
            yield PolicyProblem(
                f"{path}.route",
                {d.subset: d.weight for d in rule.destinations},
                f"weights must sum to 100 (they sum to {total}); Istio would send other shares",
            )
    if isinstance(rule.fault, Delay):
        low, high = FAULT_DELAY_RANGE_S
        yield from _duration(f"{path}.fault.delay.fixedDelay", rule.fault.fixed_delay, low, high)
        yield from _percent(f"{path}.fault.delay.percentage", rule.fault.percent)
    elif isinstance(rule.fault, Abort):
        low_status, high_status = ABORT_STATUS_RANGE
        if not low_status <= rule.fault.http_status <= high_status:
            yield PolicyProblem(
                f"{path}.fault.abort.httpStatus",
                rule.fault.http_status,
                f"must be an HTTP error status, {low_status} to {high_status}",
            )
        yield from _percent(f"{path}.fault.abort.percentage", rule.fault.percent)
    if rule.mirror is not None:
        yield from _subset(f"{path}.mirror.subset", rule.mirror.subset, subsets)
        yield from _percent(f"{path}.mirror.percentage", rule.mirror.percent)
    if rule.timeout is not None:
        yield from _duration(f"{path}.timeout", rule.timeout)
    if rule.retries is not None:
        retries = rule.retries
        if not 0 <= retries.attempts <= MAX_RETRY_ATTEMPTS:
            yield PolicyProblem(
                f"{path}.retries.attempts", retries.attempts, f"must be 0 to {MAX_RETRY_ATTEMPTS}"
            )
        if retries.per_try_timeout is not None:
            yield from _duration(f"{path}.retries.perTryTimeout", retries.per_try_timeout)
        if retries.retry_on is not None:
            unknown = [
                c
                for c in retries.retry_on.split(",")
                if c not in RETRY_CONDITIONS
                and not (c.isascii() and c.isdigit() and 100 <= int(c) <= 599)
            ]
            if unknown:
                yield PolicyProblem(
                    f"{path}.retries.retryOn",
                    retries.retry_on,
                    f"{', '.join(map(repr, unknown))}: conditions are Envoy's "
                    f"({', '.join(sorted(RETRY_CONDITIONS))}) or HTTP status codes",
                )
    yield from _headers(f"{path}.headers.request", rule.headers.request)
    yield from _headers(f"{path}.headers.response", rule.headers.response)


def _subset(path: str, subset: str, subsets: Mapping[str, bool]) -> Iterator[PolicyProblem]:
    if subset not in subsets:
        yield PolicyProblem(
            path, subset, f"no such subset; subsets: {', '.join(subsets) or '(none)'}"
        )
    elif not subsets[subset]:
        yield PolicyProblem(path, subset, "selects no pods: requests routed there answer 503")


def _unreachable(path: str, rules: tuple[HttpRule, ...]) -> Iterator[PolicyProblem]:
    for later_index, later in enumerate(rules):
        for earlier_index, earlier in enumerate(rules[:later_index]):
            if earlier.covers(later):
                why = "everyone" if not earlier.matches else "every request it would"
                yield PolicyProblem(
                    f"{path}.http[{later_index}]",
                    "unreachable",
                    f"comes after http[{earlier_index}], which matches {why}: no request "
                    "reaches it",
                )
                break


def policy_problems(
    policy: tuple[ServiceRoutes, ...],
    workloads: Mapping[str, tuple[Mapping[str, str], ...]] | None = None,
    root: str = "routes",
) -> list[PolicyProblem]:
    """Every problem of `policy`; `workloads` (service -> its pods' labels) when known."""
    problems: list[PolicyProblem] = []
    seen: set[str] = set()
    for routes in policy:
        service = routes.service
        path = f"{root}.{service.name}"
        if service.name in seen:
            problems.append(
                PolicyProblem(path, service.name, "is routed twice; give each service one entry")
            )
        seen.add(service.name)
        if not _LABEL.fullmatch(service.name):
            problems.append(PolicyProblem(path, service.name, "a service name is a DNS label"))
        pods = None if workloads is None else workloads.get(service.name, ())
        subsets = {
            name: pods is None or any(labels.items() <= pod.items() for pod in pods)
            for name, labels in service.subsets.items()
        }
        for name, labels in service.subsets.items():
            if not _LABEL.fullmatch(name):
                problems.append(
                    PolicyProblem(f"{path}.subsets", name, "a subset name is a DNS label")
                )
            if not labels:
                problems.append(
                    PolicyProblem(f"{path}.subsets.{name}", {}, "needs labels to select its pods")
                )
        if not routes.rules:
            problems.append(PolicyProblem(f"{path}.http", [], "needs at least one rule"))
        for index, rule in enumerate(routes.rules):
            problems.extend(_rule(f"{path}.http[{index}]", rule, subsets))
        problems.extend(_unreachable(path, routes.rules))
    return problems


def validate_policy(
    policy: tuple[ServiceRoutes, ...],
    workloads: Mapping[str, tuple[Mapping[str, str], ...]] | None = None,
) -> tuple[ServiceRoutes, ...]:
    """`policy` itself when it has no problem; PolicyError listing them all when it has."""
    problems = policy_problems(policy, workloads)
    if problems:
        raise PolicyError(problems)
    return policy
