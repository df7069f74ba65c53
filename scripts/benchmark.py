"""Benchmark: render time against SDK import time, and the pure route/prediction path."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from model.http_policy import (
    Delay,
    Destination,
    HttpRule,
    Request,
    RequestMatch,
    Retries,
    Service,
    ServiceRoutes,
    StringMatch,
)
from model.policy_manifests import traffic_manifests
from model.policy_validation import validate_policy
from model.predictions import Cohort, predict

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
# Touch every class the program uses: pulumi_aws loads its submodules lazily, on access.
IMPORT_SDKS = """
import pulumi, pulumi_aws as aws, pulumi_eks as eks, pulumi_kubernetes as k8s
(aws.ec2.Vpc, aws.iam.Role, aws.kms.Key, aws.get_availability_zones, eks.Cluster,
 eks.ManagedNodeGroup, k8s.Provider, k8s.core.v1.Namespace, k8s.apps.v1.Deployment,
 k8s.helm.v3.Release, k8s.apiextensions.CustomResource)
"""
PURE_PATH = """
import sys, time
start = time.perf_counter()
from model.outcomes import predict_page
from model.policy_manifests import traffic_manifests
from model.routing import Mode, TrafficSettings, bookinfo_policy, route_table
from model.serving import program_serving
imported = time.perf_counter()
for mode in Mode:
    table = route_table(mode, TrafficSettings())
    traffic_manifests(bookinfo_policy(table))
    predict_page(table, program_serving("1.30.3"), "jason")
done = time.perf_counter()
assert not any(m == "pulumi" or m.startswith("pulumi_") for m in sys.modules), "pulumi imported"
print(imported - start, done - imported)
"""


SCALES = (10, 20, 50, 200)  # services, each with 3 subsets and 3 rules


def scaled_policy(services: int) -> tuple[ServiceRoutes, ...]:
    """`services` services in a chain (svc0 calls svc1, ...), each with 3 subsets and 3 rules:
    a header route for testers, a path prefix route with retries, a weighted catch-all."""
    subsets = ("v1", "v2", "v3")
    policy = []
    for index in range(services):
        service = Service(f"svc{index}", "shop", {s: {"version": s} for s in subsets})
        rules = (
            HttpRule(
                (Destination("v3"),),
                matches=(RequestMatch(headers={"x-tester": StringMatch("regex", "yes|true")}),),
                fault=Delay("1s", 10.0),
            ),
            HttpRule(
                (Destination("v2"),),
                matches=(RequestMatch(uri=StringMatch("prefix", f"/api/{index}")),),
                retries=Retries(2, "1s", "5xx"),
            ),
            HttpRule((Destination("v1", 80), Destination("v2", 20)), timeout="3s"),
        )
        policy.append(ServiceRoutes(service, rules))
    return tuple(policy)


SCALE_COHORTS = (
    Cohort("customers"),
    Cohort("testers", Request(headers={"x-tester": "yes"})),
    Cohort("api", Request(path="/api/1/items")),
)


def pure_policy_seconds(services: int) -> float:
    """Median seconds to validate, render and predict a scaled policy, in this process."""
    policy = scaled_policy(services)
    calls = {f"svc{i}": (f"svc{i + 1}",) for i in range(services - 1)}
    repeat = max(1, 2000 // services)  # each sample ~2000 services' work: timer noise averages out
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(repeat):
            validate_policy(policy)
            traffic_manifests(policy)
            predict(policy, SCALE_COHORTS, "svc0", calls)
        times.append((time.perf_counter() - start) / repeat)
    return statistics.median(times)


def program_seconds(services: int) -> tuple[float, int]:
    """Seconds for a program registering a scaled TrafficPolicy under the mock engine, and the
    resources it registered."""
    from bookinfo_mesh.engine import run_under_mocks
    from components.traffic_policy import TrafficPolicy, TrafficPolicyArgs

    start = time.perf_counter()
    run = run_under_mocks(lambda: TrafficPolicy("shop", TrafficPolicyArgs(scaled_policy(services))))
    seconds = time.perf_counter() - start
    if run.error is not None:
        raise SystemExit(f"the scaled program failed: {run.error}")
    return seconds, len(run.resources)


def base_render_seconds() -> tuple[float, float]:
    """Seconds to render a promotion's base, a commit the checkout differs from only in the
    stack file (in this process), and the same commit with an untracked file beside it (in
    a copy of the commit, by a Python of its own); medians of RUNS."""
    from bookinfo_mesh.rendering import render_at

    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        stack_file = clone / "Pulumi.dev.yaml"
        stack_file.write_text(stack_file.read_text().replace("mode: all-v1", "mode: v3"))
        commit = subprocess.run(
            ["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        timed = {}
        for case in ("in-process", "copy"):
            if case == "copy":
                (clone / "untracked.txt").write_text("a file git does not know\n")
            times = []
            for _ in range(RUNS):
                start = time.perf_counter()
                render_at(commit, "dev", {}, clone)
                times.append(time.perf_counter() - start)
            timed[case] = statistics.median(times)
    return timed["in-process"], timed["copy"]


def _seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    python = sys.executable
    with tempfile.TemporaryDirectory() as out:
        render = [
            str(Path(python).with_name("bookinfo-mesh")),
            "render",
            "--stack",
            "dev",
            "--out",
            out,
            "--format",
            "json",
        ]
        imports, renders = [], []
        for _ in range(RUNS):  # interleaved, so both see the same machine load
            imports.append(_seconds([python, "-c", IMPORT_SDKS]))
            renders.append(_seconds(render))
    pure = [
        tuple(
            map(
                float,
                subprocess.run(
                    [python, "-c", PURE_PATH], cwd=ROOT, check=True, capture_output=True, text=True
                ).stdout.split(),
            )
        )
        for _ in range(RUNS)
    ]
    import_s, render_s = statistics.median(imports), statistics.median(renders)
    pure_import_ms = statistics.median(p[0] for p in pure) * 1000
    pure_compute_ms = statistics.median(p[1] for p in pure) * 1000

    table = Table(title=f"bookinfo-mesh benchmark (median of {RUNS}, fresh processes)")
    for column in ("measure", "value", "goal"):
        table.add_column(column)
    table.add_row("import the Pulumi SDKs the program uses", f"{import_s:.2f} s", "")
    table.add_row("render the dev stack (incl. schema validation)", f"{render_s:.2f} s", "")
    table.add_row("render / SDK import", f"{render_s / import_s:.2f}", "<= 1.3")
    table.add_row(
        "routes + manifests + predicted pages, 6 modes", f"{pure_compute_ms:.1f} ms", "< 50 ms"
    )
    table.add_row("import of that pure path (no Pulumi)", f"{pure_import_ms:.1f} ms", "")
    scale = {n: pure_policy_seconds(n) for n in SCALES}
    for n, seconds in scale.items():
        goal = "< 2 s" if n == max(SCALES) else ""
        table.add_row(
            f"validate + manifests + predictions, {n} services x 3 x 3",
            f"{seconds * 1000:.1f} ms",
            goal,
        )
    table.add_row(
        "200 services / 20 services", f"{scale[200] / scale[20]:.1f}", "<= 12 (linear: 10)"
    )
    program_s, resources = program_seconds(max(SCALES))
    table.add_row(
        f"program under mocks, {max(SCALES)} services ({resources} resources)",
        f"{program_s:.2f} s",
        "",
    )
    here_s, copy_s = base_render_seconds()
    table.add_row("render a promotion's base (diff --base), in-process", f"{here_s:.2f} s", "")
    table.add_row("the same commit rendered in a copy of its own", f"{copy_s:.2f} s", "")
    table.add_row("copy / in-process", f"{copy_s / here_s:.1f}", "")
    Console().print(table)


if __name__ == "__main__":
    main()
