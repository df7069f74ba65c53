"""The canary gate as the commands run it: thresholds from a stack's config, the report shown."""

from __future__ import annotations

import argparse
import datetime
import json
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bookinfo_mesh.errors import ToolError
from bookinfo_mesh.metrics import Check, GateReport, Verdict, VersionStats
from bookinfo_mesh.outputs import check_output_file, write_file
from bookinfo_mesh.prometheus import DEFAULT_URL
from bookinfo_mesh.stack_files import stack_config
from model.canary_gate import GateThresholds

DEFAULT_WINDOW = "5m"
VERDICT_STYLE = {Verdict.PASS: "green", Verdict.FAIL: "bold red", Verdict.INCONCLUSIVE: "yellow"}
VERDICT_WORDS = {
    Verdict.PASS: "PASS",
    Verdict.FAIL: "FAIL",
    Verdict.INCONCLUSIVE: "INCONCLUSIVE (hold: promote nothing)",
}


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """What the gate compares and where it reads, as analyze and ladder take them."""
    parser.add_argument(
        "--prometheus",
        default=DEFAULT_URL,
        metavar="URL",
        help=f"Prometheus's HTTP API (default {DEFAULT_URL}, as `kubectl port-forward` gives it)",
    )
    parser.add_argument("--service", default="reviews", help="service name (default reviews)")
    parser.add_argument("--namespace", default="bookinfo", help="its namespace (default bookinfo)")
    parser.add_argument("--baseline", default="v1", help="baseline version label (default v1)")
    parser.add_argument("--canary", default="v3", help="canary version label (default v3)")
    parser.add_argument(
        "--window",
        default=DEFAULT_WINDOW,
        help=f"how far back to count, a Prometheus duration (default {DEFAULT_WINDOW})",
    )


def stack_thresholds(
    stack: str, overrides: Mapping[str, str] | None = None, root: Path | None = None
) -> GateThresholds:
    """The gate's thresholds as `stack`'s config sets them (Pulumi.yaml's defaults, the stack
    file, then `overrides`), checked with the rest of its config as `pulumi up` checks it."""
    return stack_config(stack, overrides, root).gate_thresholds


def utc(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_instant(text: str) -> float:
    """--at: Unix seconds, or an ISO 8601 time with its zone (2026-12-01T10:00:00Z)."""
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else _iso(text)
    except ValueError:
        raise ToolError(
            f"--at takes Unix seconds or an ISO 8601 time with a zone, got {text[:40]!r}"
        ) from None


def _iso(text: str) -> float:
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no zone")
    return moment.timestamp()


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} ms"


def _version_row(stats: VersionStats, role: str) -> tuple[str, ...]:
    success = None if stats.error_rate is None else 1 - stats.error_rate
    return (
        stats.version,
        role,
        str(stats.requests),
        str(stats.errors),
        _rate(success),
        _ms(stats.p99_ms),
    )


def _check_row(check: Check) -> tuple[Text | str, ...]:
    shown = _rate if check.metric == "success rate" else _ms
    return (
        check.metric,
        shown(check.canary),
        shown(check.baseline),
        shown(check.bar),
        f"{check.counted} of {check.of}",
        f"{check.p_worse:.2g}",
        f"{check.p_better:.2g}",
        Text(check.verdict.value, style=VERDICT_STYLE[check.verdict]),
    )


def print_gate_report(report: GateReport, console: Console) -> None:
    """The two versions, the checks, then the verdict and its reasons."""
    title = (
        f"bookinfo-mesh analyze: {report.service}.{report.namespace}, {report.canary.version} "
        f"against {report.baseline.version}, {report.window} to {utc(report.evaluated_at)}, "
        f"{report.prometheus}"
    )
    console.print(Text(title, style="bold"))
    versions = Table(title="Requests in the window (reporter=destination)", title_justify="left")
    for column in ("version", "role", "requests", "5xx", "success rate", "p99"):
        versions.add_column(column)
    versions.add_row(*_version_row(report.baseline, "baseline"))
    versions.add_row(*_version_row(report.canary, "canary"))
    console.print(versions)
    checks = Table(
        title=f"Checks at {report.confidence:.0%} confidence (exact one-sided binomial, "
        "Bonferroni)",
        title_justify="left",
    )
    for column in ("check", "canary", "baseline", "bar", "over the bar", "p worse", "p better", ""):
        checks.add_column(column)
    for check in report.checks:
        checks.add_row(*_check_row(check))
    console.print(checks)
    console.print(Text(f"{VERDICT_WORDS[report.verdict]}", style=VERDICT_STYLE[report.verdict]))
    for reason in report.reasons:
        console.print(Text(f"  - {reason}"), soft_wrap=True)


def check_json_output(option: str | None) -> None:
    """Refuse, before any query, a --json file that could not be written."""
    if option not in (None, "-"):
        check_output_file(Path(option), "--json")


def write_json(report: GateReport, option: str) -> str:
    """The report as JSON: the text for stdout with `--json -`, else written to the file."""
    text = json.dumps(report.as_json(), indent=2) + "\n"
    if option != "-":
        write_file(Path(option), text, "--json")
    return text
