"""HTTP routing for any services, as Istio's VirtualService and DestinationRule say it. Pure data.

A service has subsets (name -> pod labels) and ordered rules; Envoy takes the first rule that
matches a request. Regular expressions are RE2, matched against the whole value, as Envoy's
safe_regex matches them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import re2

MATCH_KINDS = ("exact", "prefix", "regex")
# Istio durations as its CRDs accept them (Go style: 7s, 500ms, 1m30s, 1.5s), ASCII digits
# only: "\d" would take full-width ones, which Istio's Go parser refuses.
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|m|s)")
# In milliseconds, so that "350ms" is exactly 350 / 1000 and not 350 * 0.001.
_DURATION_MS = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def _quiet_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is the caller's to report, not RE2's to log
    return options


_RE2_OPTIONS = _quiet_options()


@functools.cache
def compile_regex(pattern: str) -> re2._Regexp:
    """An RE2 program, as Envoy's safe_regex compiles it; RegexError if it is not one."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        reason = error.args[0]
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise RegexError(text) from None


class RegexError(ValueError):
    """A pattern RE2 refuses, with RE2's reason."""


def parse_duration(text: str) -> float:
    """Seconds in an Istio duration string; ValueError if it is not one."""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 7s, 500ms or 1m30s")
    return sum(float(n) * _DURATION_MS[u] for n, u in parts) / 1000


@dataclass(frozen=True)
class StringMatch:
    """Istio's StringMatch: `exact`, `prefix` or `regex` (RE2, the whole value)."""

    kind: str
    value: str

    def matches(self, text: str | None) -> bool:
        if text is None:
            return False
        if self.kind == "exact":
            return text == self.value
        if self.kind == "prefix":
            return text.startswith(self.value)
        return compile_regex(self.value).fullmatch(text) is not None

    def implies(self, other: StringMatch) -> bool:
        """Whether every value this matches, `other` matches too (False when unsure)."""
        if self.kind == "exact":
            return other.matches(self.value)
        if self.kind == "prefix" and other.kind == "prefix":
            return self.value.startswith(other.value)
        return self == other


@dataclass(frozen=True)
class Request:
    """What a cohort's requests carry, as far as routing can see it."""

    headers: Mapping[str, str] = field(default_factory=dict)
    path: str = "/"
    query: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    source_labels: Mapping[str, str] = field(default_factory=dict)
    source_namespace: str | None = None


@dataclass(frozen=True)
class RequestMatch:
    """One `match` block: every condition it has must hold (blocks of a rule are alternatives)."""

    headers: Mapping[str, StringMatch] = field(default_factory=dict)
    uri: StringMatch | None = None
    query_params: Mapping[str, StringMatch] = field(default_factory=dict)
    method: StringMatch | None = None
    source_labels: Mapping[str, str] = field(default_factory=dict)
    source_namespace: str | None = None

    def matches(self, request: Request) -> bool:
        if any(not m.matches(request.headers.get(k)) for k, m in self.headers.items()):
            return False
        if self.uri is not None and not self.uri.matches(request.path):
            return False
        if any(not m.matches(request.query.get(k)) for k, m in self.query_params.items()):
            return False
        if self.method is not None and not self.method.matches(request.method):
            return False
        if any(request.source_labels.get(k) != v for k, v in self.source_labels.items()):
            return False
        return self.source_namespace in (None, request.source_namespace)

    def covers(self, other: RequestMatch) -> bool:
        """Whether every request `other` matches, this matches too (False when unsure)."""

        def within(mine: Mapping[str, StringMatch], theirs: Mapping[str, StringMatch]) -> bool:
            return all(k in theirs and theirs[k].implies(m) for k, m in mine.items())

        def single(mine: StringMatch | None, theirs: StringMatch | None) -> bool:
            return mine is None or (theirs is not None and theirs.implies(mine))

        return (
            within(self.headers, other.headers)
            and within(self.query_params, other.query_params)
            and single(self.uri, other.uri)
            and single(self.method, other.method)
            and self.source_labels.items() <= other.source_labels.items()
            and self.source_namespace in (None, other.source_namespace)
        )


@dataclass(frozen=True)
class Destination:
    """A subset of the rule's service and the percentage of requests it receives."""

    subset: str
    weight: int = 100


@dataclass(frozen=True)
class Delay:
    """Fault: hold `percent` % of requests for `fixed_delay` before forwarding."""

    fixed_delay: str
    percent: float

    @property
    def seconds(self) -> float:
        return parse_duration(self.fixed_delay)


@dataclass(frozen=True)
class Abort:
    """Fault: answer `percent` % of requests with `http_status` at once."""

    http_status: int
    percent: float


Fault = Delay | Abort


@dataclass(frozen=True)
class Mirror:
    """Copy `percent` % of requests to a subset, answers discarded."""

    subset: str
    percent: float = 100.0


@dataclass(frozen=True)
class Retries:
    """Retry a failed request up to `attempts` times, each try within `per_try_timeout`."""

    attempts: int
    per_try_timeout: str | None = None
    retry_on: str | None = None  # Envoy's retry conditions, comma-separated: "5xx,reset"


@dataclass(frozen=True)
class HeaderOperations:
    """Headers to set (replace), add (append) and remove."""

    set: Mapping[str, str] = field(default_factory=dict)
    add: Mapping[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)


@dataclass(frozen=True)
class HeaderChanges:
    request: HeaderOperations = field(default_factory=HeaderOperations)
    response: HeaderOperations = field(default_factory=HeaderOperations)

    def __bool__(self) -> bool:
        return bool(self.request or self.response)


@dataclass(frozen=True)
class HttpRule:
    """One rule of a VirtualService: who it matches (no block: everyone), what it does."""

    destinations: tuple[Destination, ...]
    matches: tuple[RequestMatch, ...] = ()
    fault: Fault | None = None
    mirror: Mirror | None = None
    timeout: str | None = None
    retries: Retries | None = None
    headers: HeaderChanges = field(default_factory=HeaderChanges)

    def applies_to(self, request: Request) -> bool:
        return not self.matches or any(m.matches(request) for m in self.matches)

    def covers(self, other: HttpRule) -> bool:
        """Whether this rule takes every request `other` could, so `other` is never reached."""
        if not self.matches:
            return True
        return bool(other.matches) and all(
            any(mine.covers(theirs) for mine in self.matches) for theirs in other.matches
        )


@dataclass(frozen=True)
class Service:
    """A Kubernetes Service in the mesh and its subsets (name -> the pod labels they select)."""

    name: str
    namespace: str
    subsets: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class ServiceRoutes:
    service: Service
    rules: tuple[HttpRule, ...]


def first_rule(rules: tuple[HttpRule, ...], request: Request) -> HttpRule | None:
    """The rule Envoy takes for `request`: the first that matches; None answers 404."""
    return next((rule for rule in rules if rule.applies_to(request)), None)
