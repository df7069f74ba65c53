"""`bookinfo-mesh verify` against a Bookinfo double on loopback: agreement, and every fault."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bookinfo_mesh.cli import main
from bookinfo_mesh.commands import verify
from bookinfo_mesh.commands.verify import expected_pages
from bookinfo_mesh.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from bookinfo_mesh.judging import CONFIDENCE, Tolerance, binomial_p_value, judge_cohort
from bookinfo_mesh.pages import Observation, PageReading, UnexpectedPageError, read_page
from model.outcomes import CohortPrediction, PageOutcome
from model.routing import MODES, route_table
from stacks.project import ROOT
from tests.bookinfo_double import BookinfoDouble, Misbehaviour, refused_url, render_page, serve
from tests.programs import shared_render
from tests.scaled_verify import SCALE, scaled


@pytest.fixture(autouse=True)
def against_the_double(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bookinfo-mesh verify` here judges the double, whose clocks run SCALE times as fast."""
    monkeypatch.setattr(verify, "run", scaled)


REQUESTS = 16  # per cohort, where routes are fixed
SPLIT_REQUESTS = 40  # the command's default, where a split is tested


def double_for(
    overrides: dict[str, str], misbehaviour: Misbehaviour | None = None
) -> BookinfoDouble:
    config, _ = expected_pages("dev", overrides)
    return BookinfoDouble(
        route_table(config.mode, config.traffic), SCALE, misbehaviour or Misbehaviour()
    )


def run_verify(
    capsys: pytest.CaptureFixture[str], url: str, overrides: dict[str, str], *extra: str
) -> tuple[int, dict[str, Any]]:
    sets = [f"--set={k}={v}" for k, v in overrides.items()]
    requests = SPLIT_REQUESTS if overrides.get("mode") == "split50" else REQUESTS
    argv = ["verify", "--url", url, "--requests", str(requests)]
    code = main([*argv, "--concurrency", "16", "--json", *sets, *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


@pytest.mark.parametrize(
    "overrides",
    [{"mode": m} for m in MODES]
    + [
        {"mode": "delay", "faultDelay": "2s"},
        {"mode": "delay", "faultPercent": "50"},
        {"mode": "abort", "faultPercent": "50"},
        {"mode": "split50", "splitWeights": '{"v1": 20, "v2": 30, "v3": 50}'},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_verify_agrees_with_a_faithful_double(
    capsys: pytest.CaptureFixture[str], overrides: dict[str, str]
) -> None:
    double = double_for(overrides)
    with serve(double) as url:
        code, report = run_verify(capsys, url, overrides)
    assert code == EXIT_OK, f"verify disagrees with a faithful double: {report['mismatches']}"
    cohorts = [c["cohort"] for c in report["cohorts"]]
    assert cohorts == ["anonymous", "user:jason"], "cohorts missing"
    for cohort in report["cohorts"]:
        seen = sum(r["observed"] for r in cohort["outcomes"])
        assert seen == cohort["requested"], f"{cohort['cohort']}: {seen} pages judged"
    assert double.end_user_headers_seen == 0, "verify sent an end-user header"


# (config, misbehaviour, exit code, text the report must contain)
MISBEHAVIOURS = {
    "split served all v1": (
        {"mode": "split50"},
        Misbehaviour(reviews_weights={"v1": 100}),
        "predicted 50%",
    ),
    "split served 90/10": (
        {"mode": "split50"},
        Misbehaviour(reviews_weights={"v1": 90, "v3": 10}),
        "predicted 50%",
    ),
    "v3 mode still on v1": (
        {"mode": "v3"},
        Misbehaviour(reviews_weights={"v1": 100}),
        "reviews v1, no stars (not predicted)",
    ),
    "delay missing": ({"mode": "delay"}, Misbehaviour(drop_faults=True), "black stars (not pred"),
    "short delay missing, same page": (
        {"mode": "delay", "faultDelay": "2s"},
        Misbehaviour(drop_faults=True),
        "black stars, sooner than predicted",
    ),
    "delay too long": (
        {"mode": "delay", "faultDelay": "1s"},
        Misbehaviour(delay_factor=2.9),
        "black stars, later than predicted",
    ),
    "abort missing": ({"mode": "abort"}, Misbehaviour(drop_faults=True), "black stars (not pred"),
    "gateway errors": ({"mode": "all-v1"}, Misbehaviour(status=503), "HTTP 503"),
    "details failing": ({"mode": "all-v1"}, Misbehaviour(details_error=True), "details unavai"),
    "slow pages": ({"mode": "all-v1"}, Misbehaviour(extra_latency_s=3), "later than predicted"),
    "garbage html": ({"mode": "user-v2"}, Misbehaviour(garbage=True), "malformed page"),
    "login ignored": (
        {"mode": "user-v2"},
        Misbehaviour(login_sets_no_cookie=True),
        "signed in as nobody, expected 'jason'",
    ),
}


@pytest.mark.parametrize("case", MISBEHAVIOURS)
def test_verify_catches_an_injected_misbehaviour_and_names_it(
    capsys: pytest.CaptureFixture[str], case: str
) -> None:
    overrides, misbehaviour, expected = MISBEHAVIOURS[case]
    with serve(double_for(overrides, misbehaviour)) as url:
        code, report = run_verify(capsys, url, overrides)
    assert code == EXIT_FAILED, f"{case}: exit {code}, report {report.get('mismatches')}"
    named = " | ".join(report["mismatches"])
    assert expected in named, f"{case}: mismatch not named as {expected!r}: {named}"


def test_a_refused_connection_exits_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_verify(capsys, refused_url(), {"mode": "all-v1"})
    assert code == EXIT_BAD_INPUT, f"exit {code} for a refused connection"
    assert "Connection refused" in report["unreachable"], f"reason: {report['unreachable']}"


def test_pages_that_outlast_the_deadline_are_a_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    overrides = {"mode": "delay"}
    _, predictions = expected_pages("dev", overrides)
    slowest_page = max(Tolerance(SCALE).wait(o) for p in predictions for o in p.outcomes)
    with serve(double_for(overrides)) as url:
        started = time.monotonic()
        code, report = run_verify(capsys, url, overrides, "--deadline", "0.4", "--concurrency", "2")
        took = time.monotonic() - started
    assert code == EXIT_FAILED, f"exit {code} when the deadline passed"
    assert any("deadline" in m for m in report["mismatches"]), report["mismatches"]
    assert took < slowest_page, f"verify waited {took:.2f} s for pages past a 0.4 s deadline"


def test_ctrl_c_prints_a_partial_report_and_exits_130() -> None:
    overrides = {"mode": "delay"}
    double = double_for(overrides)
    with serve(double) as url:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.scaled_verify", "verify", "--url", url, "--json"),
                *("--set=mode=delay", "--requests", "200"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Interrupt once pages flow (the interpreter and its imports come first).
        waited_until = time.monotonic() + 30
        while double.pages_served < 4 and time.monotonic() < waited_until:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == EXIT_INTERRUPTED, f"exit {process.returncode}: {err}"
    assert "Traceback" not in err, f"Ctrl-C gave a traceback: {err}"
    report = json.loads(out)
    judged = sum(r["observed"] for c in report["cohorts"] for r in c["outcomes"])
    assert report["verdict"] == "interrupted", f"verdict {report['verdict']}"
    assert 0 < judged < 400, f"{judged} of 400 pages judged: not a partial report"
    assert any(n.startswith("interrupted after") for n in report["notes"]), report["notes"]


def test_without_a_pulumi_cli_or_url_verify_exits_2_saying_to_pass_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["verify", "--stack", "dev"]) == EXIT_BAD_INPUT, "no URL, yet not exit 2"
    err = capsys.readouterr().err
    assert "no Pulumi CLI on PATH" in err and "--url" in err, f"unclear message: {err}"


@pytest.mark.parametrize(
    "argv",
    [["--set=mode=bogus"], ["--requests", "0"], ["--url", "ftp://host/productpage"]],
    ids=["bad mode", "no requests", "not http"],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code = main(["verify", "--url", "http://127.0.0.1:1/productpage", *argv])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT and err.startswith("error:"), f"exit {code}: {err}"


def test_the_text_report_shows_a_config_value_literally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    overrides = {"mode": "user-v2", "testUser": "[red]eve"}
    with serve(double_for(overrides)) as url:
        code = main(
            ["verify", "--url", url, "--requests", "4"]
            + [f"--set={k}={v}" for k, v in overrides.items()]
        )
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert "[red]eve" in out and "OK:" in out, f"user name lost or markup applied: {out}"


# -- The expectation is render's -------------------------------------------------------


@pytest.mark.parametrize("mode", ["delay", "split50"])
def test_verify_expects_the_pages_render_predicts(mode: str) -> None:
    _, predictions = expected_pages("dev", {"mode": mode})
    summary = shared_render("dev", {"mode": mode}).summary
    rendered = {cohort: page.summary for cohort, page in summary.predicted_pages.items()}
    assert {p.cohort: p.describe() for p in predictions} == rendered, "verify expects otherwise"


# -- Reading pages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "subset", "ratings_failed"),
    [
        (None, "v1", False),
        ("jason", "v2", False),
        (None, "v3", False),
        ("jason", "v2", True),
        ("jason", None, False),
    ],
)
def test_a_productpage_reads_as_the_version_ratings_and_user_it_shows(
    user: str | None, subset: str | None, ratings_failed: bool
) -> None:
    reading = read_page(render_page(user, subset, ratings_failed))
    assert reading == PageReading(subset, ratings_failed, user), f"read as {reading}"


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        (render_page(None, "v2", False).replace("text-black-500", "text-red-500"), "red stars"),
        (render_page(None, "v1", False).replace("reviews-v1-", "ratings-v1-"), "not a reviews"),
        (render_page(None, "v3", False).replace("reviews-v3-7", "reviews-v2-7", 1), "2 pods"),
        (render_page(None, "v1", False).replace("Book Reviews", "Reviews"), "no 'Book Reviews'"),
        ("", "neither a signed-in user"),
    ],
    ids=["wrong colour", "not a reviews pod", "two versions", "no reviews", "empty"],
)
def test_an_impossible_page_is_named_not_read(page: str, reason: str) -> None:
    with pytest.raises(UnexpectedPageError, match=reason):
        read_page(page)


# -- The statistics ---------------------------------------------------------------------


def _split_readings(counts: dict[str, int]) -> list[Observation]:
    return [
        Observation("anonymous", 0.0, PageReading(v, False, None))
        for v, k in counts.items()
        for _ in range(k)
    ]


def _split(weights: dict[str, float]) -> CohortPrediction:
    return CohortPrediction(
        "anonymous", tuple(PageOutcome(w, v, False, 0.0) for v, w in weights.items())
    )


def test_a_fair_split_seen_as_27_to_13_is_not_called_a_failure() -> None:
    report = judge_cohort(
        _split({"v1": 0.5, "v3": 0.5}), None, _split_readings({"v1": 27, "v3": 13}), 40, Tolerance()
    )
    assert report.mismatches == [], f"27/13 judged a mismatch: {report.mismatches}"


@pytest.mark.parametrize("counts", [{"v1": 40}, {"v1": 36, "v3": 4}, {"v1": 30, "v3": 10}])
def test_a_lopsided_split_fails_at_the_stated_confidence(counts: dict[str, int]) -> None:
    report = judge_cohort(
        _split({"v1": 0.5, "v3": 0.5}), None, _split_readings(counts), 40, Tolerance()
    )
    assert report.mismatches, f"{counts} passed as 50/50 at {CONFIDENCE:.0%}"


def test_a_three_way_split_is_tested_per_subset_with_bonferroni() -> None:
    prediction = _split({"v1": 0.2, "v2": 0.3, "v3": 0.5})
    fair = judge_cohort(
        prediction, None, _split_readings({"v1": 9, "v2": 11, "v3": 20}), 40, Tolerance()
    )
    assert fair.mismatches == [], f"a plausible 9/11/20 failed: {fair.mismatches}"
    skewed = judge_cohort(
        prediction, None, _split_readings({"v1": 0, "v2": 10, "v3": 30}), 40, Tolerance()
    )
    assert any("reviews v1" in m for m in skewed.mismatches), f"0/10/30: {skewed.mismatches}"


def test_a_cohort_with_an_unpredicted_page_fails_even_once() -> None:
    prediction = _split({"v1": 1.0})
    report = judge_cohort(prediction, None, _split_readings({"v1": 39, "v2": 1}), 40, Tolerance())
    assert report.mismatches == [
        "not logged in: 1 of 40 pages: reviews v2, black stars (not predicted)"
    ]


@pytest.mark.parametrize(
    ("v1", "passes"),
    [(10, False), (11, True), (20, True), (29, True), (30, False)],
)
def test_a_fifty_fifty_split_of_40_passes_from_11_29_to_29_11_and_no_further(
    v1: int, passes: bool
) -> None:
    """The README's edges: at 99 % confidence over two outcomes, each is tested at 0.5 %."""
    report = judge_cohort(
        _split({"v1": 0.5, "v3": 0.5}),
        None,
        _split_readings({"v1": v1, "v3": 40 - v1}),
        40,
        Tolerance(),
    )
    assert (report.mismatches == []) is passes, f"{v1}/{40 - v1}: {report.mismatches}"


def test_the_cut_off_is_the_stated_confidence_divided_among_the_outcomes() -> None:
    # 10/30 has p = 0.0022 (< 0.005) and 11/29 p = 0.0064 (> 0.005): a cut-off of 1 %
    # overall would pass 10/30 as well, so these two pin 99 % and its Bonferroni split.
    assert binomial_p_value(10, 40, 0.5) < (1 - CONFIDENCE) / 2 < binomial_p_value(11, 40, 0.5)
    assert binomial_p_value(10, 40, 0.5) > (1 - 0.99) / 10, "the two cases would not tell"


def test_verify_signs_in_beside_a_productpage_served_under_a_path_prefix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bookinfo behind a prefix (/shop/productpage): the login form's action is relative,
    so the sign-in goes to /shop/login; /login would find nothing."""
    overrides = {"mode": "user-v2"}
    config, _ = expected_pages("dev", overrides)
    double = BookinfoDouble(route_table(config.mode, config.traffic), SCALE, path_prefix="/shop")
    with serve(double) as url:
        assert url.endswith("/shop/productpage"), url
        code, report = run_verify(capsys, url, overrides)
    assert code == EXIT_OK, report.get("mismatches")
    assert double.sessions, "nobody signed in"
