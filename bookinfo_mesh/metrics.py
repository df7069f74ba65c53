"""The canary gate: PromQL for two versions of a service, and pass, fail or inconclusive.

Pure: the queries' text, reading Prometheus's answers into counts, and the decision on them.

Every query takes reporter="destination": the series the canary's own sidecar reports. It
labels each request with its own pod's version (a caller's proxy may not know it, and says
"unknown", when a connection fails), it sees every attempt, including those a caller's
retries hide, and it times the service itself. What it cannot see is a request that never
reached the pod; such a canary gets fewer requests, and too few requests hold the gate, so it
never passes. Flagger's built-in request-success-rate and request-duration checks read the
same series.

The decision is two exact one-sided binomial tests per metric, each at (1 - CONFIDENCE) / 2
(Bonferroni over the two metrics):
- success rate: the canary's 5xx count among its requests against the bar "the baseline's
  error rate plus canaryMaxErrorRateIncrease";
- latency: the canary's requests slower than the p99 bar (the baseline's p99 times
  canaryMaxLatencyRatio, capped at canaryMaxP99Ms, rounded up to a bucket bound of the
  histogram, whose counts are exact only there) against the 1 % a p99 at the bar allows.
A metric fails when its count is improbably high for the bar, and passes only when it is
improbably low: a pass is evidence of a good canary, not the absence of evidence of a bad
one. The gate passes when both pass, fails when either fails, and is inconclusive otherwise,
and whenever either version served fewer than canaryMinRequests requests in the window.
The counts are those the window's samples saw, not increase()'s extrapolation
(gate_queries says why).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from bookinfo_mesh.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, ToolError
from bookinfo_mesh.exact_tests import CONFIDENCE, binomial_cdf, binomial_sf
from model.canary_gate import GateThresholds

REPORTER = "destination"
QUANTILE = 0.99  # the latency the gate judges: p99
TAIL_SHARE = 0.01  # the share of requests slower than a p99
# Names as Kubernetes takes them: a service and a namespace are DNS-1123 labels, a version
# a label value. Neither holds a quote or a backslash, so they go into PromQL strings as is.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
# A Prometheus duration of one unit, as a range selector takes it: 30s, 5m, 1h.
_DURATION = re.compile(r"([1-9][0-9]{0,5})(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class GateError(ToolError):
    """A target the gate cannot query: one line, exit 2."""


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


EXIT_CODES = {
    Verdict.PASS: EXIT_OK,
    Verdict.FAIL: EXIT_FAILED,
    Verdict.INCONCLUSIVE: EXIT_INCONCLUSIVE,
}


@dataclass(frozen=True)
class Target:
    """What the gate compares: two versions of one service, over the `window` before now."""

    service: str
    namespace: str
    baseline: str
    canary: str
    window: str

    def __post_init__(self) -> None:
        for option, value, pattern in (
            ("--service", self.service, _DNS_LABEL),
            ("--namespace", self.namespace, _DNS_LABEL),
            ("--baseline", self.baseline, _LABEL_VALUE),
            ("--canary", self.canary, _LABEL_VALUE),
        ):
            if not pattern.fullmatch(value):
                kind = "a version label" if pattern is _LABEL_VALUE else "a Kubernetes name"
                raise GateError(f"{option} {value[:40]!r} is not {kind}")
        if self.baseline == self.canary:
            raise GateError(f"--baseline and --canary are both {self.baseline!r}")
        if window_seconds(self.window) is None:
            raise GateError(
                f"--window {self.window[:20]!r} is not a Prometheus duration like 30s, 5m or 1h"
            )


def window_seconds(window: str) -> float | None:
    match = _DURATION.fullmatch(window)
    return int(match[1]) * _UNIT_S[match[2]] if match else None


@dataclass(frozen=True)
class Queries:
    """The instant queries: the raw samples of the counters over the window, and the p99s."""

    requests: str  # a range vector: every series' samples
    buckets: str  # a range vector
    p99: str  # an instant vector by destination_version


def gate_queries(target: Target) -> Queries:
    """PromQL over `target.window` for every version of the service at once.

    The counts are not increase()'s: it extrapolates each series to the window's edges, so a
    5m window scraped every 15 s counts about 5 % more requests than its samples saw (a 3 s
    window scraped every second a third more), and an exact test would take that as evidence.
    The counts here are what the samples saw, from each series' first sample in the window
    to its last, across counter resets, as increase() would count before extrapolating.
    """
    where = (
        f'reporter="{REPORTER}",destination_service_name="{target.service}",'
        f'destination_workload_namespace="{target.namespace}"'
    )
    window = target.window
    bucket_rate = f"rate(istio_request_duration_milliseconds_bucket{{{where}}}[{window}])"
    return Queries(
        requests=f"istio_requests_total{{{where}}}[{window}]",
        buckets=f"istio_request_duration_milliseconds_bucket{{{where}}}[{window}]",
        p99=f"histogram_quantile({QUANTILE}, sum by (destination_version, le) ({bucket_rate}))",
    )


# --- Prometheus's answers as counts ---------------------------------------------------------


@dataclass(frozen=True)
class VersionStats:
    """One version's requests in the window: counts as its samples saw them, p99, histogram."""

    version: str
    requests: int
    errors: int
    p99_ms: float | None
    # (bucket bound in ms, requests at most that slow), ascending; the last bound is +Inf.
    buckets: tuple[tuple[float, int], ...] = ()

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def _number(value: Any) -> float:
    """A sample's value ("12.5", "NaN", "+Inf") as a float."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GateError(
            f"Prometheus answered a sample that is no number: {str(value)[:40]}"
        ) from None


def _of_version(result: Sequence[Mapping[str, Any]], version: str) -> list[Mapping[str, Any]]:
    return [s for s in result if s.get("metric", {}).get("destination_version") == version]


def seen_increase(values: Sequence[Sequence[Any]]) -> int:
    """What a counter's samples ([time, "value"], oldest first) saw it grow by: each rise,
    and after a reset (a restarted pod) the new count; never extrapolated."""
    grown, last = 0.0, None
    for _, text in values:
        value = _number(text)
        if not math.isfinite(value):
            continue
        if last is not None:
            grown += value - last if value >= last else value
        last = value
    return round(grown)


def _series(sample: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    values = sample.get("values")
    if not isinstance(values, list):
        raise GateError(f"Prometheus answered a series without samples: {str(sample)[:80]}")
    return values


def version_stats(answers: Mapping[str, Sequence[Mapping[str, Any]]], version: str) -> VersionStats:
    """One version's stats from the results of gate_queries' three queries (keyed by field)."""
    requests = errors = 0
    for sample in _of_version(answers["requests"], version):
        seen = seen_increase(_series(sample))
        requests += seen
        if str(sample["metric"].get("response_code", "")).startswith("5"):
            errors += seen
    p99s = [_number(s.get("value", [0, None])[1]) for s in _of_version(answers["p99"], version)]
    p99 = p99s[0] if p99s and math.isfinite(p99s[0]) else None
    bounds: dict[float, int] = {}
    for sample in _of_version(answers["buckets"], version):
        try:
            bound = float(sample["metric"]["le"])
        except (KeyError, ValueError):
            continue
        if not math.isnan(bound):
            bounds[bound] = bounds.get(bound, 0) + seen_increase(_series(sample))
    buckets: list[tuple[float, int]] = []
    running = 0
    for bound in sorted(bounds):
        running = max(running, bounds[bound])  # cumulative counts never fall
        buckets.append((bound, running))
    return VersionStats(version, requests, errors, p99, tuple(buckets))


# --- the decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One metric judged: `counted` of `of` requests against the share `bar_share` allows."""

    metric: str  # "success rate" or "p99 latency"
    canary: float | None  # the canary's error rate, or its p99 in ms
    baseline: float | None
    bar: float  # the most the canary may have: an error rate, or a p99 in ms
    counted: int  # the canary's errors, or its requests slower than the bar
    of: int
    bar_share: float  # the share of `of` that `counted` may be at the bar
    p_worse: float  # P(a count >= counted | bar_share): small means worse than the bar
    p_better: float  # P(a count <= counted | bar_share): small means better than the bar
    verdict: Verdict


def _judged(
    metric: str,
    canary: float | None,
    baseline: float | None,
    bar: float,
    counted: int,
    of: int,
    share: float,
    alpha: float,
) -> Check:
    worse, better = binomial_sf(counted, of, share), binomial_cdf(counted, of, share)
    if worse < alpha:
        verdict = Verdict.FAIL
    elif better < alpha:
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE
    return Check(metric, canary, baseline, bar, counted, of, share, worse, better, verdict)


def success_check(
    baseline: VersionStats, canary: VersionStats, thresholds: GateThresholds, alpha: float
) -> Check:
    """The canary's errors against the baseline's error rate plus the allowed increase."""
    base_rate = baseline.error_rate or 0.0
    bar = min(1.0, base_rate + thresholds.max_error_rate_increase)
    return _judged(
        "success rate",
        canary.error_rate,
        baseline.error_rate,
        bar,
        canary.errors,
        canary.requests,
        bar,
        alpha,
    )


def latency_bar(baseline: VersionStats, thresholds: GateThresholds) -> float:
    """The p99 the canary may have, in ms: the baseline's times the ratio, at most the cap."""
    cap = float(thresholds.max_p99_ms)
    if baseline.p99_ms is None:
        return cap
    return min(cap, baseline.p99_ms * thresholds.max_latency_ratio)


def latency_check(
    baseline: VersionStats, canary: VersionStats, thresholds: GateThresholds, alpha: float
) -> Check | None:
    """The canary's requests slower than the p99 bar (rounded up to a bucket bound), against
    the 1 % that a p99 at the bar allows; None when the canary has no histogram."""
    if not canary.buckets:
        return None
    wanted = latency_bar(baseline, thresholds)
    bound, within = next(((b, c) for b, c in canary.buckets if b >= wanted), canary.buckets[-1])
    total = canary.buckets[-1][1]
    return _judged(
        "p99 latency",
        canary.p99_ms,
        baseline.p99_ms,
        bound,
        total - within,
        total,
        TAIL_SHARE,
        alpha,
    )


@dataclass
class GateReport:
    """The gate's answer and everything it was drawn from."""

    service: str
    namespace: str
    window: str
    evaluated_at: float  # Unix time of the instant queries
    prometheus: str
    thresholds: GateThresholds
    confidence: float
    baseline: VersionStats
    canary: VersionStats
    checks: list[Check] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    verdict: Verdict = Verdict.INCONCLUSIVE

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def as_json(self) -> dict[str, Any]:
        """The report as JSON takes it: buckets by their `le`, no infinite number."""
        data = asdict(self)
        for version in ("baseline", "canary"):
            stats: VersionStats = getattr(self, version)
            data[version]["errorRate"] = stats.error_rate
            data[version]["buckets"] = [{"le": _le(b), "count": c} for b, c in stats.buckets]
        data["exitCode"] = self.exit_code
        return _finite(data)


def _le(bound: float) -> str:
    """A bucket bound as Prometheus's `le` label writes it."""
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def _finite(value: Any) -> Any:
    """`value` with +-inf as "+Inf"/"-Inf" and NaN as None: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def decide(
    baseline: VersionStats,
    canary: VersionStats,
    thresholds: GateThresholds,
    confidence: float = CONFIDENCE,
) -> tuple[Verdict, list[Check], list[str]]:
    """Pass, fail or inconclusive, the checks it rests on, and why, in words."""
    alpha = (1 - confidence) / 2
    checks = [success_check(baseline, canary, thresholds, alpha)]
    latency = latency_check(baseline, canary, thresholds, alpha)
    reasons = []
    if latency is None:
        reasons.append(f"canary {canary.version} has no latency histogram in the window")
    else:
        checks.append(latency)
    thin = [v for v in (baseline, canary) if v.requests < thresholds.min_requests]
    for stats in thin:
        role = "baseline" if stats is baseline else "canary"
        reasons.append(
            f"{role} {stats.version} served {stats.requests} requests, fewer than "
            f"canaryMinRequests {thresholds.min_requests}: too little traffic to judge"
        )
    for check in checks:
        reasons.append(_reason(check, canary.version))
    verdicts = {c.verdict for c in checks}
    if thin or latency is None:
        verdict = Verdict.INCONCLUSIVE
    elif Verdict.FAIL in verdicts:
        verdict = Verdict.FAIL
    elif verdicts == {Verdict.PASS}:
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE
    return verdict, checks, reasons


def _reason(check: Check, canary: str) -> str:
    if check.metric == "success rate":
        what = f"{check.counted} of {check.of} requests of {canary} failed (5xx)"
        bar = f"an error rate of {check.bar:.2%}"
    else:
        what = f"{check.counted} of {check.of} requests of {canary} took over {check.bar:g} ms"
        bar = f"a p99 of {check.bar:g} ms ({check.bar_share:.0%} over it)"
    if check.verdict is Verdict.FAIL:
        return f"{check.metric} fails: {what}, worse than {bar} (p = {check.p_worse:.2g})"
    if check.verdict is Verdict.PASS:
        return f"{check.metric} passes: {what}, better than {bar} (p = {check.p_better:.2g})"
    return (
        f"{check.metric} undecided: {what}; neither worse nor better than {bar} with "
        f"confidence (p = {check.p_worse:.2g} and {check.p_better:.2g})"
    )


def gate_report(
    target: Target,
    answers: Mapping[str, Sequence[Mapping[str, Any]]],
    thresholds: GateThresholds,
    evaluated_at: float,
    prometheus: str,
) -> GateReport:
    """The report on Prometheus's `answers` (gate_queries' field -> its vector)."""
    baseline = version_stats(answers, target.baseline)
    canary = version_stats(answers, target.canary)
    verdict, checks, reasons = decide(baseline, canary, thresholds)
    return GateReport(
        target.service,
        target.namespace,
        target.window,
        evaluated_at,
        prometheus,
        thresholds,
        CONFIDENCE,
        baseline,
        canary,
        checks,
        reasons,
        verdict,
    )
