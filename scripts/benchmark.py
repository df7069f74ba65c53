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
from model.routing import Mode, TrafficSettings, route_table
from model.serving import program_serving
imported = time.perf_counter()
for mode in Mode:
    table = route_table(mode, TrafficSettings())
    traffic_manifests(table)
    predict_page(table, program_serving("1.30.3"), "jason")
done = time.perf_counter()
assert not any(m == "pulumi" or m.startswith("pulumi_") for m in sys.modules), "pulumi imported"
print(imported - start, done - imported)
"""


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
    Console().print(table)


if __name__ == "__main__":
    main()
