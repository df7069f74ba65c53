"""`bookinfo-mesh verify`: load a live /productpage as an anonymous visitor and as the test
user, and check that each cohort sees what the stack's `mode` predicts, with evidence.

Exit codes: 0 the mesh agrees with the prediction, 1 a mismatch (named), 2 bad input or the
mesh cannot be reached (with the reason), 130 interrupted with Ctrl-C (after a partial report).
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import math
import queue
import re
import shutil
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from http.cookies import SimpleCookie
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bookinfo_mesh.stack_files import load_engine_config, parse_overrides
from model.outcomes import (
    RATINGS_UNAVAILABLE,
    STAR_COLOR,
    CohortPrediction,
    PageOutcome,
    predict_page,
)
from model.routing import route_table
from model.serving import program_serving
from stacks.config import PROJECT, ConfigError, StackConfig, parse_stack_config
from stacks.project import ROOT

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_UNREACHABLE = 2
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT

# Page loads per cohort. At 40 and 99 % confidence a 50/50 split passes from 11/29 to 29/11
# (a true 50/50 falls outside 0.2 % of the time); 90/10 fails 99.8 % of the time, 80/20 84 %
# (README, "Verify a live stack").
DEFAULT_REQUESTS = 40
MAX_REQUESTS = 1000  # bounded: the exact test sums n + 1 terms of math.comb(n, i)
CONFIDENCE = 0.99
DEFAULT_CONCURRENCY = 8
DEFAULT_DEADLINE_S = 300.0
# A page is on time if it arrives within the predicted wait +- (1 s + 10 % of that wait):
# the 1 s covers the internet and productpage's own work, the 10 % the Envoy timers.
LATENCY_TOLERANCE_S = 1.0
LATENCY_TOLERANCE_FRACTION = 0.10
# Per request: the longest predicted wait plus this, so a page that hangs ends as a finding.
TIMEOUT_MARGIN_S = 10.0

# Markers of samples/bookinfo/src/productpage/templates/productpage.html and the reviews
# JSON it renders (LibertyRestEndpoint.java), Istio 1.30.3; both files are the same at the
# commit that moved Bookinfo to the 1.20.3 images this project deploys (model/catalogue.py).
_SERVED_BY = re.compile(r"Reviews served by:\s*([^\s<]+)")
_REVIEWS_POD = re.compile(r"reviews-(v\d+)-")
_STARS = re.compile(r'<div class="flex gap-x-1 text-([a-z]+)-500">')
_SIGNED_IN = re.compile(r'<p class="text-base font-medium text-gray-50">(.*?)</p>', re.S)
_SIGN_IN_BUTTON = 'id="sign-in-button"'
_BOOK_REVIEWS = '<h4 class="text-3xl font-semibold">Book Reviews</h4>'
_REVIEWS_ERROR = "Error fetching product reviews"
_DETAILS_ERROR = "Error fetching product details"
_RATINGS_ERROR = f'<p class="text-red-500">{RATINGS_UNAVAILABLE}</p>'


class UnexpectedPageError(ValueError):
    """The page is not one Bookinfo shows for any routing: the reason, as a finding."""


@dataclass(frozen=True)
class PageReading:
    """What one /productpage says: who served reviews, with what, for whom."""

    reviews_version: str | None  # None: productpage shows "Error fetching product reviews"
    ratings_unavailable: bool
    user: str | None  # the signed-in user the page greets; None: a "Sign in" button

    @property
    def what(self) -> str:
        return PageOutcome(1.0, self.reviews_version, self.ratings_unavailable, 0.0).what


def read_page(page: str) -> PageReading:
    """Reviews version, ratings state and user of a productpage; UnexpectedPageError if none."""
    if _DETAILS_ERROR in page:
        raise UnexpectedPageError("details unavailable ('Error fetching product details')")
    if _SIGN_IN_BUTTON in page:
        user = None
    elif signed_in := _SIGNED_IN.search(page):
        user = html.unescape(signed_in.group(1).strip())
    else:
        raise UnexpectedPageError("malformed page: neither a signed-in user nor a 'Sign in' button")
    if _REVIEWS_ERROR in page:
        if _SERVED_BY.search(page):
            raise UnexpectedPageError("malformed page: a reviews error and reviews at once")
        return PageReading(None, False, user)
    if _BOOK_REVIEWS not in page:
        raise UnexpectedPageError("malformed page: no 'Book Reviews' section and no reviews error")
    pods = set(_SERVED_BY.findall(page))
    if len(pods) != 1:
        raise UnexpectedPageError(f"malformed page: 'Reviews served by:' names {len(pods)} pods")
    pod = html.unescape(pods.pop())
    served = _REVIEWS_POD.match(pod)
    if served is None:
        raise UnexpectedPageError(f"reviews served by {pod!r}, which is not a reviews-vN pod")
    version = served.group(1)
    colours = set(_STARS.findall(page))
    ratings_error = _RATINGS_ERROR in page
    expected_colour = STAR_COLOR.get(version)
    if expected_colour is None:
        if colours or ratings_error:
            raise UnexpectedPageError(f"reviews {version} shows ratings, which it never calls")
        return PageReading(version, False, user)
    if colours - {expected_colour}:
        shown = ", ".join(sorted(colours))
        raise UnexpectedPageError(
            f"reviews {version} with {shown} stars (its stars are {expected_colour})"
        )
    if not colours and not ratings_error:
        raise UnexpectedPageError(f"reviews {version} with neither stars nor a ratings error")
    return PageReading(version, ratings_error, user)


@dataclass(frozen=True)
class Observation:
    """One page load: how long it took, and what it showed or why it showed nothing usable."""

    cohort: str
    latency_s: float
    reading: PageReading | None
    problem: str | None = None  # HTTP error, no answer, malformed page
    unreachable: bool = False  # no HTTP answer at all


# -- Statistics ---------------------------------------------------------------------------


def binomial_p_value(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial test: P(a count no more likely than k | n, p).

    The definition scipy.stats.binomtest uses; a relative 1e-7 slack keeps counts exactly as
    likely as k (the mirror image under p = 0.5) from being lost to rounding.
    """
    if n == 0:
        return 1.0
    pmf = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    threshold = pmf[k] * (1 + 1e-7)
    return min(1.0, sum(x for x in pmf if x <= threshold))


# -- Judging one cohort ------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """Delays in real seconds for a mesh whose clocks run at `time_scale` (1 on a real stack)."""

    time_scale: float = 1.0

    def wait(self, outcome: PageOutcome) -> float:
        return outcome.wait_s * self.time_scale

    def band(self, outcome: PageOutcome) -> float:
        return LATENCY_TOLERANCE_S * self.time_scale + LATENCY_TOLERANCE_FRACTION * self.wait(
            outcome
        )


@dataclass
class OutcomeRow:
    """A predicted outcome and how often it was seen."""

    sees: str
    share: float
    wait_s: float
    tolerance_s: float
    observed: int = 0
    latencies_s: list[float] = field(default_factory=list)
    p_value: float | None = None


@dataclass
class FindingRow:
    """Pages that fit no predicted outcome, grouped by what was wrong with them."""

    sees: str
    observed: int = 0
    latencies_s: list[float] = field(default_factory=list)


@dataclass
class CohortReport:
    cohort: str
    requested: int
    outcomes: list[OutcomeRow]
    findings: list[FindingRow]
    mismatches: list[str]

    @property
    def completed(self) -> int:
        return sum(r.observed for r in self.outcomes) + sum(f.observed for f in self.findings)


def _classify(
    obs: Observation, prediction: CohortPrediction, user: str | None, tol: Tolerance
) -> tuple[int | None, str]:
    """(index of the predicted outcome it fits, or None; what it was)."""
    if obs.reading is None:
        return None, obs.problem or "no page"
    reading = obs.reading
    if reading.user != user:
        shown = "nobody" if reading.user is None else repr(reading.user)
        wanted = "nobody" if user is None else repr(user)
        return None, f"signed in as {shown}, expected {wanted}: {reading.what}"
    fits = [
        i
        for i, o in enumerate(prediction.outcomes)
        if (o.reviews_version, o.ratings_unavailable)
        == (reading.reviews_version, reading.ratings_unavailable)
    ]
    if not fits:
        return None, f"{reading.what} (not predicted)"
    nearest = min(fits, key=lambda i: abs(obs.latency_s - tol.wait(prediction.outcomes[i])))
    outcome = prediction.outcomes[nearest]
    if abs(obs.latency_s - tol.wait(outcome)) <= tol.band(outcome):
        return nearest, reading.what
    side = "later" if obs.latency_s > tol.wait(outcome) else "sooner"
    return None, (
        f"{reading.what}, {side} than predicted "
        f"(~{tol.wait(outcome):.3g} s ± {tol.band(outcome):.2g} s)"
    )


def judge_cohort(
    prediction: CohortPrediction,
    user: str | None,
    observations: Sequence[Observation],
    requested: int,
    tol: Tolerance,
    confidence: float = CONFIDENCE,
) -> CohortReport:
    """Compare one cohort's pages with its prediction.

    Every page must fit a predicted outcome (same reviews version and ratings state, and a
    latency within the tolerance of that outcome's wait). Where several outcomes are
    predicted, each one's count is tested against its share with an exact two-sided
    binomial test at (1 - confidence) / outcomes (Bonferroni), so the whole cohort is judged
    at `confidence`.
    """
    rows = [
        # The share has a column of its own: describe the page as if it were the only one.
        OutcomeRow(replace(o, share=1.0).describe(), o.share, tol.wait(o), tol.band(o))
        for o in prediction.outcomes
    ]
    findings: dict[str, FindingRow] = {}
    for obs in observations:
        index, what = _classify(obs, prediction, user, tol)
        if index is None:
            finding = findings.setdefault(what, FindingRow(what))
            finding.observed += 1
            finding.latencies_s.append(obs.latency_s)
        else:
            rows[index].observed += 1
            rows[index].latencies_s.append(obs.latency_s)
    n = len(observations)
    cohort = prediction.cohort
    mismatches = [f"{cohort}: {f.observed} of {n} pages: {f.sees}" for f in findings.values()]
    if len(rows) > 1 and n:
        alpha = (1 - confidence) / len(rows)
        for row in rows:
            row.p_value = binomial_p_value(row.observed, n, row.share)
            if row.p_value < alpha:
                mismatches.append(
                    f"{cohort}: {row.observed} of {n} pages '{row.sees}', predicted "
                    f"{row.share:.0%} (exact binomial p = {row.p_value:.2g} < {alpha:.2g})"
                )
    return CohortReport(cohort, requested, rows, list(findings.values()), mismatches)


# -- HTTP -------------------------------------------------------------------------------


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return kind(parts.hostname, parts.port, timeout=timeout), target


def login(url: str, user: str, timeout: float) -> str | None:
    """Sign in the way Bookinfo's form does (POST login, relative to the page): the Cookie
    header of the session it sets, or None if it set none. OSError if nothing answers."""
    conn, target = _connection(urllib.parse.urljoin(url, "login"), timeout)
    body = urllib.parse.urlencode({"username": user, "passwd": ""})
    try:
        # A browser sends its page as Referer, and productpage redirects back to it.
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": url}
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        cookies: SimpleCookie = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
    finally:
        conn.close()
    return "; ".join(f"{k}={m.value}" for k, m in cookies.items()) or None


def load_page(url: str, cohort: str, cookie: str | None, timeout: float) -> Observation:
    """GET the page once and read it; every failure becomes part of the observation."""
    started = time.monotonic()
    try:
        conn, target = _connection(url, timeout)
        try:
            conn.request("GET", target, headers={"Cookie": cookie} if cookie else {})
            response = conn.getresponse()
            body = response.read().decode("utf-8", errors="replace")
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as error:
        reason = f"timed out after {timeout:.3g} s" if isinstance(error, TimeoutError) else error
        return Observation(cohort, time.monotonic() - started, None, f"no answer: {reason}", True)
    latency = time.monotonic() - started
    if response.status != 200:
        return Observation(cohort, latency, None, f"HTTP {response.status} {response.reason}")
    try:
        return Observation(cohort, latency, read_page(body))
    except UnexpectedPageError as problem:
        return Observation(cohort, latency, None, str(problem))


# -- Running ----------------------------------------------------------------------------


@dataclass
class RunResult:
    observations: list[Observation]
    interrupted: bool = False
    deadline_hit: bool = False


def run_requests(
    tasks: Sequence[Callable[[], Observation]],
    concurrency: int,
    deadline_s: float,
    on_done: Callable[[], None] = lambda: None,
) -> RunResult:
    """Run `tasks` on at most `concurrency` daemon threads until done, the deadline or Ctrl-C.

    Daemon threads, not an executor: after Ctrl-C or the deadline the command reports and
    exits at once instead of waiting for requests still in flight.
    """
    todo: queue.SimpleQueue[Callable[[], Observation]] = queue.SimpleQueue()
    for task in tasks:
        todo.put(task)
    done: queue.SimpleQueue[Observation] = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                task = todo.get_nowait()
            except queue.Empty:
                return
            done.put(task())

    for _ in range(min(concurrency, len(tasks))):
        threading.Thread(target=worker, daemon=True).start()
    result = RunResult([])
    ends = time.monotonic() + deadline_s
    try:
        while len(result.observations) < len(tasks):
            remaining = ends - time.monotonic()
            if remaining <= 0:
                result.deadline_hit = True
                break
            try:
                result.observations.append(done.get(timeout=min(remaining, 0.1)))
            except queue.Empty:
                continue
            on_done()
    except KeyboardInterrupt:
        result.interrupted = True
    stop.set()
    return result


# -- The command ------------------------------------------------------------------------


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
            return EXIT_UNREACHABLE
        return EXIT_MISMATCH if self.mismatches else EXIT_OK

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["exitCode"] = self.exit_code
        verdicts = {0: "agrees", 1: "mismatch", 2: "unreachable", 130: "interrupted"}
        data["verdict"] = verdicts[self.exit_code]
        return data


class VerifyError(Exception):
    """Bad input, or no URL to send requests to: one line, exit 2."""


def expected_pages(
    stack: str, overrides: dict[str, str]
) -> tuple[StackConfig, tuple[CohortPrediction, CohortPrediction]]:
    """The stack's config and the pages it predicts: the pure model, as render predicts them."""
    try:
        config, _ = load_engine_config(stack, overrides)
        prefix = f"{PROJECT}:"
        raw = {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
        parsed = parse_stack_config(raw)
    except (FileNotFoundError, ConfigError) as error:
        raise VerifyError(str(error)) from None
    table = route_table(parsed.mode, parsed.traffic)
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
        table = Table(title=Text(f"{cohort.cohort}: {cohort.completed} of {cohort.requested}"))
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


def cmd_verify(args: argparse.Namespace, console: Console) -> int:
    errors = Console(stderr=True, width=120)
    try:
        overrides = parse_overrides(args.set)
        if not 1 <= args.requests <= MAX_REQUESTS:
            raise VerifyError(f"--requests must be 1 to {MAX_REQUESTS}, got {args.requests}")
        if args.concurrency < 1 or args.deadline <= 0 or args.time_scale <= 0:
            raise VerifyError("--concurrency, --deadline and the time scale must be positive")
        config, predictions = expected_pages(args.stack, overrides)
        url = args.url or stack_url(args.stack)
        parts = urllib.parse.urlsplit(url)  # ValueError on a malformed URL
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise VerifyError(f"--url must be an http(s) URL of /productpage, got {url!r}")
    except (VerifyError, ValueError) as error:
        errors.print(Text(f"error: {error}"))
        return EXIT_UNREACHABLE
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
            args.time_scale,
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
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="expect this config value instead of the stack's (like `pulumi config set`)",
    )
    parser.add_argument("--url", help="productpage URL (default: the stack output productpageUrl)")
    parser.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        metavar="N",
        help=f"page loads per cohort (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight at most"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        metavar="SECONDS",
        help=f"stop and report after this long (default {DEFAULT_DEADLINE_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    # Tests run against a Bookinfo double whose clocks run faster: 7 s of delay take 0.7 s
    # at 0.1. Predicted waits, tolerances and timeouts are scaled alike.
    parser.add_argument("--time-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.set_defaults(func=cmd_verify)
