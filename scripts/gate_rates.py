"""How often the canary gate is wrong, measured on the metrics double's traffic.

Two measurements:
- `simulate`: many windows drawn as tests/metrics_double.py draws traffic (each request's
  version by share, 5xx by the version's error rate, latency log-normal, counted into
  Istio's buckets), judged by the gate's own decision (bookinfo_mesh.metrics.decide) with the
  p99 that Prometheus's histogram_quantile would give. Exact counts: no scrape in between.
- `prometheus`: a handful of windows through Debian's real Prometheus scraping the double,
  each service a window of its own, so increase()'s extrapolation is in the numbers too.

A false pass is a pass for a canary that is worse than the bar (5 % errors, slow, or exactly
at the error bar); a false fail is a fail for a canary that is as good as its baseline.

    .venv/bin/python scripts/gate_rates.py simulate --runs 2000
    .venv/bin/python scripts/gate_rates.py prometheus --services 10
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bookinfo_mesh.gate import stack_thresholds
from bookinfo_mesh.metrics import QUANTILE, Target, Verdict, VersionStats, decide
from bookinfo_mesh.prometheus import run_gate
from tests.metrics_double import BUCKETS_MS, MeshTraffic, Service, Version, serve
from tests.prometheus_server import prometheus, wait_for_scrapes

BOUNDS = (*BUCKETS_MS, math.inf)


@dataclass(frozen=True)
class Case:
    name: str
    canary: Version
    bad: bool  # a pass is false for it; else a fail is
    baseline: Version = field(default_factory=lambda: Version(1.0))


CASES = (
    Case("healthy (same as baseline)", Version(0), bad=False),
    Case("healthy, both at 0.5 % errors", Version(0, error_rate=0.005), False, Version(1, 0.005)),
    Case("5 % errors", Version(0, error_rate=0.05), bad=True),
    Case("at the error bar: 1 % errors", Version(0, error_rate=0.01), bad=True),
    Case("slow: median 120 ms", Version(0, median_ms=120), bad=True),
)


def _bucket_cdf(version: Version) -> list[float]:
    """P(latency <= bound) for each bound: the log-normal's CDF."""
    mu = math.log(version.median_ms)
    return [
        1.0
        if math.isinf(b)
        else 0.5 * (1 + math.erf((math.log(b) - mu) / (version.sigma * math.sqrt(2))))
        for b in BOUNDS
    ]


def histogram_quantile(q: float, buckets: tuple[tuple[float, int], ...]) -> float | None:
    """Prometheus's histogram_quantile on cumulative buckets (promql/quantile.go)."""
    total = buckets[-1][1] if buckets else 0
    if total == 0:
        return None
    rank = q * total
    index = next(i for i, (_, c) in enumerate(buckets) if c >= rank)
    if math.isinf(buckets[index][0]):
        return buckets[-2][0]
    start, below = (0.0, 0) if index == 0 else buckets[index - 1]
    end, count = buckets[index]
    return start + (end - start) * (rank - below) / (count - below) if count > below else end


def draw_window(
    rng: random.Random, requests: int, share: float, baseline: Version, canary: Version
) -> tuple[VersionStats, VersionStats]:
    """One window of `requests` requests, as the double draws them."""
    stats = []
    drawn = {"v1": [0, 0, [0] * len(BOUNDS)], "v3": [0, 0, [0] * len(BOUNDS)]}
    cdfs = {"v1": _bucket_cdf(baseline), "v3": _bucket_cdf(canary)}
    rates = {"v1": baseline.error_rate, "v3": canary.error_rate}
    for _ in range(requests):
        version = "v3" if rng.random() < share else "v1"
        counts = drawn[version]
        counts[0] += 1
        counts[1] += rng.random() < rates[version]
        counts[2][bisect.bisect_left(cdfs[version], rng.random())] += 1
    for version in ("v1", "v3"):
        n, errors, per_bucket = drawn[version]
        running, buckets = 0, []
        for bound, count in zip(BOUNDS, per_bucket, strict=True):
            running += count
            buckets.append((bound, running))
        as_tuple = tuple(buckets)
        stats.append(
            VersionStats(version, n, errors, histogram_quantile(QUANTILE, as_tuple), as_tuple)
        )
    return stats[0], stats[1]


def simulate(runs: int, requests: int, share: float, seed: int) -> None:
    rng = random.Random(seed)
    thresholds = stack_thresholds("dev")
    print(
        f"simulated windows: {runs} per case, {requests} requests each, canary share {share:.0%}, "
        f"default thresholds, seed {seed}"
    )
    print(f"{'case':34} {'pass':>7} {'fail':>7} {'hold':>7}  wrong")
    for case in CASES:
        verdicts: Counter[Verdict] = Counter()
        for _ in range(runs):
            baseline, canary = draw_window(rng, requests, share, case.baseline, case.canary)
            verdicts[decide(baseline, canary, thresholds)[0]] += 1
        wrong = Verdict.PASS if case.bad else Verdict.FAIL
        kind = "false pass" if case.bad else "false fail"
        shares = " ".join(f"{verdicts[v] / runs:7.2%}" for v in Verdict)
        print(
            f"{case.name:34} {shares}  {kind} {verdicts[wrong]}/{runs} "
            f"= {verdicts[wrong] / runs:.2%}"
        )


def through_prometheus(services: int, rate: float, share: float, window: str, seed: int) -> None:
    """`services` copies of each case side by side, each judged once by the real PromQL."""
    cases = [(case, i) for case in CASES for i in range(services)]
    thresholds = stack_thresholds("dev")
    traffic = MeshTraffic(
        [
            Service(
                f"c{index}-{i}",
                "bookinfo",
                rate,
                {
                    "v1": Version(1 - share, case.baseline.error_rate),
                    "v3": Version(share, case.canary.error_rate, case.canary.median_ms),
                },
            )
            for index, case in enumerate(CASES)
            for i in range(services)
        ],
        start=time.time(),
        seed=seed,
    )
    print(f"through Prometheus: {services} windows per case, {rate:g} rps, {share:.0%}, {window}")
    with serve(traffic) as double, prometheus([double]) as url:
        wait_for_scrapes(url, 6)
        at = time.time()
        results: dict[str, Counter[Verdict]] = {}
        for case, i in cases:
            index = CASES.index(case)
            target = Target(f"c{index}-{i}", "bookinfo", "v1", "v3", window)
            report = run_gate(url, target, thresholds, at)
            results.setdefault(case.name, Counter())[report.verdict] += 1
    for case in CASES:
        got = results[case.name]
        wrong = got[Verdict.PASS if case.bad else Verdict.FAIL]
        kind = "false pass" if case.bad else "false fail"
        print(
            f"{case.name:34} pass {got[Verdict.PASS]}, fail {got[Verdict.FAIL]}, hold "
            f"{got[Verdict.INCONCLUSIVE]}  {kind} {wrong}/{services}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="how", required=True)
    sim = commands.add_parser("simulate")
    sim.add_argument("--runs", type=int, default=2000)
    sim.add_argument("--requests", type=int, default=6000, help="per window, both versions")
    sim.add_argument("--share", type=float, default=0.1)
    sim.add_argument("--seed", type=int, default=22)
    real = commands.add_parser("prometheus")
    real.add_argument("--services", type=int, default=10, help="windows per case")
    real.add_argument("--rate", type=float, default=400.0, help="requests per second each")
    real.add_argument("--share", type=float, default=0.5)
    real.add_argument("--window", default="4s")
    real.add_argument("--seed", type=int, default=22)
    args = parser.parse_args(argv)
    if args.how == "simulate":
        simulate(args.runs, args.requests, args.share, args.seed)
    else:
        through_prometheus(args.services, args.rate, args.share, args.window, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
