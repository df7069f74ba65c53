"""`bookinfo-mesh verify`: load a live /productpage as an anonymous visitor and as the test
user, and check that each cohort sees what the stack's `mode` predicts, with evidence.

Exit codes: 0 the mesh agrees with the prediction, 1 a mismatch (named), 2 bad input or the
mesh cannot be reached (with the reason), 130 interrupted with Ctrl-C (after a partial report).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bookinfo_mesh.commands.arguments import add_stack_arguments, seconds, whole_number
from bookinfo_mesh.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ToolError
from bookinfo_mesh.judging import CONFIDENCE, CohortReport, Tolerance, judge_cohort
from bookinfo_mesh.probe import load_page, login, run_requests
from bookinfo_mesh.stack_files import parse_overrides, stack_config
from model.outcomes import CohortPrediction, cohort_label, predict_page
from model.serving import program_serving
from stacks.config import StackConfig
from stacks.project import ROOT

# Page loads per cohort. At 40 and 99 % confidence a 50/50 split passes from 11/29 to 29/11
# (a true 50/50 falls outside 0.2 % of the time); 90/10 fails 99.8 % of the time, 80/20 84 %
# (README, "Verify a live stack").
DEFAULT_REQUESTS = 40
MAX_REQUESTS = 1000  # per cohort: the two-sided exact test sums n + 1 terms
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 256  # a thread each
DEFAULT_DEADLINE_S = 300.0
# Per request: the longest predicted wait plus this, so a page that hangs ends as a finding.
TIMEOUT_MARGIN_S = 10.0


@dataclass
class Report:
    stack: str
    mode: str
    url: str
    requests_per_cohort: int
    confidence: float
    time_scale: float
    cohorts: list[CohortReport]
    notes: list[str]
    mismatches: list[str]
    interrupted: bool
    unreachable: str | None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.unreachable:
            return EXIT_BAD_INPUT
        return EXIT_FAILED if self.mismatches else EXIT_OK

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["exitCode"] = self.exit_code
        verdicts = {0: "agrees", 1: "mismatch", 2: "unreachable", 130: "interrupted"}
        data["verdict"] = verdicts[self.exit_code]
        return data


class VerifyError(ToolError):
    """Bad input, or no URL to send requests to: one line, exit 2."""


def expected_pages(
    stack: str, overrides: dict[str, str]
) -> tuple[StackConfig, tuple[CohortPrediction, CohortPrediction]]:
    """The stack's config and the pages it predicts: the pure model, as render predicts them."""
    parsed = stack_config(stack, overrides)
    table = parsed.route_table
    return parsed, predict_page(table, program_serving(parsed.istio_version), parsed.test_user)


def stack_url(stack: str) -> str:
    """productpageUrl from the stack's outputs, through Pulumi's Automation API."""
    if shutil.which("pulumi") is None:
        raise VerifyError(
            "no Pulumi CLI on PATH to read the stack output productpageUrl: pass --url URL"
        )
    from pulumi import automation

    try:
        workspace_stack = automation.select_stack(stack_name=stack, work_dir=str(ROOT))
        outputs = workspace_stack.outputs()
    except Exception as error:  # noqa: BLE001 - the CLI's failures reach us as many types
        raise VerifyError(f"pulumi could not read stack {stack!r}: {error}") from None
    if "productpageUrl" not in outputs:
        raise VerifyError(f"stack {stack!r} has no output productpageUrl: run `pulumi up` first")
    return str(outputs["productpageUrl"].value)


def verify(
    url: str,
    stack: str,
    config: StackConfig,
    predictions: tuple[CohortPrediction, CohortPrediction],
    requests: int,
    concurrency: int = DEFAULT_CONCURRENCY,
    deadline_s: float = DEFAULT_DEADLINE_S,
    time_scale: float = 1.0,
    progress: Callable[[int], Callable[[], None]] | None = None,
) -> Report:
    """Load the page `requests` times per cohort and judge both cohorts."""
    tol = Tolerance(time_scale)
    longest = max(tol.wait(o) for p in predictions for o in p.outcomes)
    timeout = longest + TIMEOUT_MARGIN_S * time_scale
    report = Report(
        stack, config.mode.value, url, requests, CONFIDENCE, time_scale, [], [], [], False, None
    )
    try:
        cookie = login(url, config.test_user, timeout)
    except (OSError, http.client.HTTPException, ValueError) as error:
        report.unreachable = f"cannot sign in at {urllib.parse.urljoin(url, 'login')}: {error}"
        return report
    except KeyboardInterrupt:  # Ctrl-C while signing in: a report of no pages
        report.interrupted = True
        report.notes.append("interrupted while signing in, before any page was loaded")
        return report
    if cookie is None:
        report.notes.append(f"POST login as {config.test_user!r} set no session cookie")
    anonymous, tester = predictions
    cohorts = ((anonymous, None, None), (tester, config.test_user, cookie))
    tasks = [
        (lambda c=prediction.cohort, k=jar: load_page(url, c, k, timeout))
        for _ in range(requests)
        for prediction, _user, jar in cohorts
    ]
    on_done = progress(len(tasks)) if progress else (lambda: None)
    run = run_requests(tasks, concurrency, deadline_s, on_done)
    report.interrupted = run.interrupted
    if run.observations and all(o.unreachable for o in run.observations):
        report.unreachable = f"{url}: {run.observations[0].problem}"
    for prediction, user, _jar in cohorts:
        mine = [o for o in run.observations if o.cohort == prediction.cohort]
        cohort = judge_cohort(prediction, user, mine, requests, tol)
        report.cohorts.append(cohort)
        report.mismatches.extend(cohort.mismatches)
    if run.deadline_hit:
        report.mismatches.append(
            f"only {len(run.observations)} of {len(tasks)} pages arrived within the "
            f"{deadline_s:g} s deadline"
        )
    if run.interrupted:
        report.notes.append(f"interrupted after {len(run.observations)} of {len(tasks)} pages")
    return report


def _median(values: Iterable[float]) -> str:
    values = list(values)
    return f"{statistics.median(values):.2f} s" if values else ""


def print_report(report: Report, console: Console) -> None:
    """One table per cohort, predicted against observed, then the verdict."""
    title = f"bookinfo-mesh verify: stack {report.stack}, mode {report.mode}, {report.url}"
    console.print(Text(title, style="bold"))
    if report.time_scale != 1:
        console.print(Text(f"delays scaled by {report.time_scale:g}"))
    for cohort in report.cohorts:
        heading = f"{cohort_label(cohort.cohort)}: {cohort.completed} of {cohort.requested}"
        table = Table(title=Text(heading))
        for column in ("predicted", "share", "seen", "median latency", "p-value"):
            table.add_column(column)
        for row in cohort.outcomes:
            p = "" if row.p_value is None else f"{row.p_value:.2g}"
            share = f"{row.share:.0%}"
            seen = str(row.observed)
            table.add_row(Text(row.sees), share, seen, _median(row.latencies_s), p)
        for finding in cohort.findings:
            label = Text(f"not predicted: {finding.sees}", style="red")
            table.add_row(label, "0%", str(finding.observed), _median(finding.latencies_s), "")
        console.print(table)
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    splits = f"splits tested at {report.confidence:.0%} confidence (exact binomial, Bonferroni)"
    if report.unreachable:
        console.print(Text(f"UNREACHABLE: {report.unreachable}", style="bold red"))
    elif report.mismatches:
        console.print(Text("MISMATCH:", style="bold red"))
        for mismatch in report.mismatches:
            console.print(Text(f"  - {mismatch}"))
    elif not report.interrupted:
        console.print(Text(f"OK: every page as mode {report.mode} predicts; {splits}", "green"))


def run(args: argparse.Namespace, console: Console) -> int:
    return run_with(args, console, Tolerance())


def run_with(args: argparse.Namespace, console: Console, tolerance: Tolerance) -> int:
    """The command against a mesh whose timing `tolerance` describes (a real one: the default)."""
    overrides = parse_overrides(args.set)
    config, predictions = expected_pages(args.stack, overrides)
    url = args.url or stack_url(args.stack)
    try:
        parts = urllib.parse.urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a malformed port or bracketed host
        valid = False
    if not valid:
        raise VerifyError(f"--url must be an http(s) URL of /productpage, got {url!r}")
    errors = Console(stderr=True, width=120)
    with Progress(
        TextColumn("loading /productpage"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as bar:

        def progress(total: int) -> Callable[[], None]:
            task = bar.add_task("pages", total=total)
            return lambda: bar.advance(task)

        report = verify(
            url,
            args.stack,
            config,
            predictions,
            args.requests,
            args.concurrency,
            args.deadline,
            tolerance.time_scale,
            progress,
        )
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print_report(report, console)
    if report.unreachable:
        errors.print(Text(f"error: cannot reach the mesh: {report.unreachable}"))
    return report.exit_code


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "verify", help="check that a live stack's pages are what its mode predicts"
    )
    add_stack_arguments(
        parser, "expect this config value instead of the stack's (like `pulumi config set`)"
    )
    parser.add_argument("--url", help="productpage URL (default: the stack output productpageUrl)")
    parser.add_argument(
        "--requests",
        type=whole_number(1, MAX_REQUESTS),
        default=DEFAULT_REQUESTS,
        metavar="N",
        help=f"page loads per cohort (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--concurrency",
        type=whole_number(1, MAX_CONCURRENCY),
        default=DEFAULT_CONCURRENCY,
        help="requests in flight at most",
    )
    parser.add_argument(
        "--deadline",
        type=seconds,
        default=DEFAULT_DEADLINE_S,
        metavar="SECONDS",
        help=f"stop and report after this long (default {DEFAULT_DEADLINE_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)
