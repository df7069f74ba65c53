"""The canary gate without Prometheus: its queries' text, its reading of answers, its exact
tests, its decision, its thresholds, and the ladder's walk with a rig of the test's own."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest

from bookinfo_mesh.errors import ToolError
from bookinfo_mesh.gate import stack_thresholds
from bookinfo_mesh.ladder import (
    LadderPlan,
    Outcome,
    escape_markdown,
    parse_steps,
    summary_markdown,
    walk,
)
from bookinfo_mesh.metrics import (
    GateError,
    GateReport,
    Target,
    Verdict,
    VersionStats,
    decide,
    gate_queries,
    gate_report,
    seen_increase,
    version_stats,
)
from model.canary_gate import GateThresholds
from stacks.project import ROOT
from tests.metrics_double import BUCKETS_MS

TARGET = Target("reviews", "bookinfo", "v1", "v3", "5m")
# Pulumi.yaml's defaults (test_thresholds_default_to_pulumi_yamls checks they are).
DEFAULTS = GateThresholds(
    min_requests=200, max_error_rate_increase=0.01, max_latency_ratio=1.5, max_p99_ms=1000
)


def test_the_queries_read_the_destination_reporter_of_one_service_by_version() -> None:
    where = (
        'reporter="destination",destination_service_name="reviews",'
        'destination_workload_namespace="bookinfo"'
    )
    queries = gate_queries(TARGET)
    assert queries.requests == f"istio_requests_total{{{where}}}[5m]"
    assert queries.buckets == f"istio_request_duration_milliseconds_bucket{{{where}}}[5m]"
    assert queries.p99 == (
        "histogram_quantile(0.99, sum by (destination_version, le) "
        f"(rate(istio_request_duration_milliseconds_bucket{{{where}}}[5m])))"
    )


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("service", 'reviews"}', "--service 'reviews\"}' is not a Kubernetes name"),
        ("namespace", "Bookinfo", "--namespace 'Bookinfo' is not a Kubernetes name"),
        ("canary", "v3\\", "is not a version label"),
        ("window", "5", "--window '5' is not a Prometheus duration"),
        ("window", "0s", "is not a Prometheus duration"),
    ],
)
def test_targets_that_would_break_out_of_promql_are_refused(
    field: str, value: str, says: str
) -> None:
    fields = {"service": "reviews", "namespace": "bookinfo", "baseline": "v1", "canary": "v3"}
    with pytest.raises(GateError, match=None) as caught:
        Target(**{**fields, "window": "5m", field: value})
    assert says in str(caught.value)


# --- reading Prometheus's answers ------------------------------------------------------------


def _series(version: str, samples: list[float], **labels: str) -> dict:
    """A range vector's series: samples 15 s apart."""
    values = [[1.8e9 + 15 * i, repr(v)] for i, v in enumerate(samples)]
    return {"metric": {"destination_version": version, **labels}, "values": values}


def _answers(
    requests: dict[tuple[str, str], list[float]],
    buckets: dict[str, dict[float, list[float]]],
    p99: dict[str, float],
) -> dict[str, list[dict]]:
    """Prometheus's answers: (version, response code) -> samples; version -> le -> samples."""
    return {
        "requests": [_series(v, s, response_code=c) for (v, c), s in requests.items()],
        "buckets": [
            _series(v, s, le="+Inf" if math.isinf(b) else f"{b:g}")
            for v, by_bound in buckets.items()
            for b, s in by_bound.items()
        ],
        "p99": [
            {"metric": {"destination_version": v}, "value": [1.8e9, repr(x)]}
            for v, x in p99.items()
        ],
    }


def test_counts_are_what_the_samples_saw_across_resets() -> None:
    answers = _answers(
        {
            ("v3", "200"): [100, 150, 20, 70],  # a restart after 150: 50 + 20 + 50
            ("v3", "503"): [3, 4, 4, 7],
            ("v1", "200"): [0, 500, 1000],
        },
        {"v3": {25: [10, 40, 5, 40], 50: [10, 40, 5, 35], math.inf: [10, 60, 8, 70]}},
        {"v1": 40.0, "v3": float("nan")},
    )
    v3 = version_stats(answers, "v3")
    assert (v3.requests, v3.errors, v3.p99_ms) == (124, 4, None)
    assert v3.buckets[0] == (25, 70) and v3.buckets[1] == (50, 70), "a bucket fell"
    assert v3.buckets[-1] == (math.inf, 120)
    v1 = version_stats(answers, "v1")
    assert (v1.requests, v1.errors, v1.p99_ms, v1.buckets) == (1000, 0, 40.0, ())
    assert version_stats(answers, "v2") == VersionStats("v2", 0, 0, None, ())
    assert seen_increase([[0, "5"], [15, "NaN"], [30, "9"]]) == 4


def _stats(version: str, n: int, errors: int, p99: float, slower: dict[float, int]) -> VersionStats:
    """`n` requests; `slower[bound]` of them slower than bound (and every lower bound)."""
    buckets = tuple(
        (b, n - max((c for s, c in slower.items() if s >= b), default=0))
        for b in [*BUCKETS_MS, math.inf]
    )
    return VersionStats(version, n, errors, p99, buckets)


BASELINE = _stats("v1", 9000, 9, 80.0, {50: 300, 100: 5})


@pytest.mark.parametrize(
    ("canary", "verdict", "says"),
    [
        (_stats("v3", 1000, 1, 82.0, {50: 30}), Verdict.PASS, "success rate passes"),
        (_stats("v3", 1000, 50, 82.0, {50: 30}), Verdict.FAIL, "success rate fails"),
        (_stats("v3", 1000, 0, 400.0, {100: 300, 250: 60}), Verdict.FAIL, "p99 latency fails"),
        (_stats("v3", 100, 60, 82.0, {}), Verdict.INCONCLUSIVE, "fewer than canaryMinRequests"),
        (_stats("v3", 300, 4, 82.0, {}), Verdict.INCONCLUSIVE, "success rate undecided"),
        (VersionStats("v3", 5000, 0, None), Verdict.INCONCLUSIVE, "no latency histogram"),
    ],
    ids=["healthy", "5 % errors", "slow", "thin data never fails", "too close", "no histogram"],
)
def test_the_decision(canary: VersionStats, verdict: Verdict, says: str) -> None:
    decided, _, reasons = decide(BASELINE, canary, DEFAULTS)
    assert decided is verdict, reasons
    assert any(says in r for r in reasons), reasons


def test_the_latency_bar_is_the_baselines_p99_times_the_ratio_rounded_up_to_a_bucket() -> None:
    canary = _stats("v3", 1000, 0, 82.0, {})
    _, checks, _ = decide(BASELINE, canary, DEFAULTS)  # 80 ms * 1.5 = 120 ms: bucket 250
    assert checks[1].bar == 250 and checks[1].bar_share == 0.01
    capped = dataclasses.replace(DEFAULTS, max_p99_ms=90)  # at most 90 ms: bucket 100
    _, checks, _ = decide(BASELINE, canary, capped)
    assert checks[1].bar == 100
    no_baseline = VersionStats("v1", 0, 0, None)
    _, checks, _ = decide(no_baseline, canary, DEFAULTS)  # the cap alone: 1000 ms
    assert checks[1].bar == 1000


def test_the_report_is_json_without_infinities() -> None:
    answers = _answers(
        {("v1", "200"): [0, 9000], ("v3", "200"): [0, 1000]},
        {"v3": {50: [0, 1000], math.inf: [0, 1000]}},
        {},
    )
    report = gate_report(TARGET, answers, DEFAULTS, 1.8e9, "http://127.0.0.1:9090")
    text = json.dumps(report.as_json(), allow_nan=False)
    assert '"le": "+Inf"' in text and report.verdict is Verdict.PASS


# --- thresholds ------------------------------------------------------------------------------


def test_thresholds_default_to_pulumi_yamls(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    assert stack_thresholds("dev", None, tmp_path) == DEFAULTS


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("canaryMinRequests", "0", "must be 1 to"),
        ("canaryMaxErrorRateIncrease", "1", "above 0 and below 1"),
        ("canaryMaxErrorRateIncrease", "1e-2", "decimal number"),
        ("canaryMaxLatencyRatio", "0.5", "must be 1 to 100"),
        ("canaryMaxP99Ms", "0", "must be 1 to 3600000 milliseconds"),
    ],
)
def test_thresholds_are_checked_by_key_as_the_program_checks_them(
    key: str, value: str, says: str
) -> None:
    """analyze reads them through the stack config that `pulumi up` checks."""
    with pytest.raises(ToolError, match=f"bookinfo-mesh:{key} = .*{says}"):
        stack_thresholds("dev", {key: value})


@pytest.mark.parametrize("value", ["\uff11", "slow", "1.5"])
def test_a_whole_number_threshold_is_first_pulumis_integer(value: str) -> None:
    with pytest.raises(ToolError, match="key 'canaryMaxP99Ms' must be of type 'integer'"):
        stack_thresholds("dev", {"canaryMaxP99Ms": value})


def test_stack_thresholds_read_the_stack_file_and_its_overrides(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    text = (ROOT / "Pulumi.dev.yaml").read_text() + "  bookinfo-mesh:canaryMaxP99Ms: 500\n"
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    assert stack_thresholds("dev", None, tmp_path).max_p99_ms == 500
    overridden = stack_thresholds("dev", {"canaryMaxP99Ms": "250"}, tmp_path)
    assert overridden.max_p99_ms == 250


# --- the ladder's walk -----------------------------------------------------------------------


def _report(verdict: Verdict) -> GateReport:
    stats = VersionStats("v3", 1000, 0, 50.0)
    return GateReport(
        "reviews",
        "bookinfo",
        "5m",
        0.0,
        "http://p",
        DEFAULTS,
        0.99,
        BASELINE,
        stats,
        [],
        [verdict.value],
        verdict,
    )


class FakeRig:
    """Records what the ladder asks of it; the gate answers from a script."""

    def __init__(
        self, verdicts: list[Verdict], fail_on: str | None = None, interrupt_on: str | None = None
    ) -> None:
        self.verdicts, self.calls = list(verdicts), []
        self.fail_on, self.interrupt_on = fail_on, interrupt_on

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if what == self.fail_on:
            raise ToolError(f"{what} went wrong")
        if what == self.interrupt_on:
            raise KeyboardInterrupt

    def set_canary(self, percent: int) -> None:
        self._call(f"set {percent}")

    def roll_back(self) -> None:
        self._call("roll back")

    def apply(self) -> None:
        self._call("apply")

    def sleep(self, seconds: float) -> None:
        self._call(f"sleep {seconds:g}")

    def gate(self) -> GateReport:
        self._call("gate")
        return _report(self.verdicts.pop(0))


PLAN = LadderPlan((10, 50, 100), wait_s=300, retries=2, retry_wait_s=60)


@pytest.mark.parametrize(
    ("verdicts", "outcome", "calls"),
    [
        (
            [Verdict.PASS, Verdict.PASS],
            Outcome.PROMOTED,
            "set 10,apply,sleep 300,gate,set 50,apply,sleep 300,gate,set 100,apply",
        ),
        (
            [Verdict.PASS, Verdict.FAIL],
            Outcome.ROLLED_BACK,
            "set 10,apply,sleep 300,gate,set 50,apply,sleep 300,gate,roll back,apply",
        ),
        (
            [Verdict.INCONCLUSIVE, Verdict.PASS, Verdict.PASS],
            Outcome.PROMOTED,
            "set 10,apply,sleep 300,gate,sleep 60,gate,set 50,apply,sleep 300,gate,set 100,apply",
        ),
        (
            [Verdict.INCONCLUSIVE] * 3,
            Outcome.HELD,
            "set 10,apply,sleep 300,gate,sleep 60,gate,sleep 60,gate",
        ),
    ],
    ids=["promoted", "rolled back", "retried into a pass", "held"],
)
def test_the_walk(verdicts: list[Verdict], outcome: Outcome, calls: str) -> None:
    rig = FakeRig(verdicts)
    result = walk(PLAN, rig, lambda line: None)
    assert result.outcome is outcome
    assert ",".join(rig.calls) == calls


def test_a_step_that_cannot_be_taken_stops_the_ladder_with_its_reason() -> None:
    result = walk(PLAN, FakeRig([Verdict.PASS], fail_on="gate"), lambda line: None)
    assert (result.outcome, result.error, result.exit_code) == (
        Outcome.STOPPED,
        "gate went wrong",
        2,
    )
    assert "Stopped: gate went wrong" in summary_markdown("dev", TARGET, result)


def test_ctrl_c_keeps_the_steps_so_far_for_the_summary() -> None:
    rig = FakeRig([Verdict.PASS], interrupt_on="set 50")
    result = walk(PLAN, rig, lambda line: None)
    assert (result.outcome, result.exit_code) == (Outcome.INTERRUPTED, 130)
    assert [s.percent for s in result.steps] == [10, 50]
    summary = summary_markdown("dev", TARGET, result)
    assert "**interrupted**" in summary and "| 10 % | pass | 1 |" in summary, summary


def test_steps_and_markdown() -> None:
    assert parse_steps("10, 25,50,100") == (10, 25, 50, 100)
    for bad in ("0,10", "10,10", "50,25", "101", "", "1e2"):
        with pytest.raises(ToolError):
            parse_steps(bad)
    assert escape_markdown("my_stack|*x*") == "my\\_stack\\|\\*x\\*"
