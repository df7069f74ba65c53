"""`analyze` and `ladder` against a real Prometheus scraping the metrics double.

Debian's prometheus evaluates the gate's own PromQL on counters the double grows with the
clock: a healthy canary passes, one with 5 % errors fails, a slow one fails, one without
traffic is inconclusive, and a Prometheus that is down or is not Prometheus is one line,
exit 2. Then ladders, each step promoted in a git copy of the project's stack files and
"applied" by routing the double's traffic as the stack file now says: one rolled back, one
promoted, one held.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from bookinfo_mesh.cli import main
from bookinfo_mesh.commands import ladder as ladder_command
from bookinfo_mesh.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK
from bookinfo_mesh.gate import stack_thresholds
from bookinfo_mesh.ladder import (
    LadderPlan,
    Outcome,
    StackRig,
    summary_markdown,
    walk,
)
from bookinfo_mesh.metrics import Target, Verdict
from bookinfo_mesh.stack_files import project_values, read_stack_text, stack_config_of_text
from stacks.project import ROOT
from tests.metrics_double import MeshTraffic, Service, Version, serve
from tests.prometheus_server import prometheus, wait_for_scrapes
from tests.repos import git, one_commit_repository

WINDOW = "2s"
WAIT_S = 2.5  # the window, and a scrape for it to start after the step
RATE = 6000.0  # requests per second per service: at 10 %, 1200 canary requests a window
SCRAPES = 5  # before the first query: the window full, and then some
# One Prometheus for the module: it takes 5 s to start scraping (its discovery manager sends
# targets at most every 5 s), so the tests share it, each service a case of its own.
pytestmark = pytest.mark.xdist_group("prometheus")


@dataclass
class Mesh:
    traffic: MeshTraffic
    prometheus: str
    double: str  # host:port


def _mesh(services: list[Service]) -> Iterator[Mesh]:
    traffic = MeshTraffic(services, start=time.time(), seed=22)
    with serve(traffic) as double, prometheus([double]) as url:
        wait_for_scrapes(url, SCRAPES)
        yield Mesh(traffic, url, double)


def _split(canary: Version, share: float = 0.1) -> dict[str, Version]:
    canary.share = share
    return {"v1": Version(1 - share), "v3": canary}


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """Services beside each other: for analyze, v3 at 10 % of each; for the ladders, reviews
    in a namespace per case (as if each were a mesh of its own), v3 at none until the fake
    `pulumi up` routes it as the stack file says."""
    yield from _mesh(
        [
            Service("healthy", "bookinfo", RATE, _split(Version(0))),
            Service("errors", "bookinfo", RATE, _split(Version(0, error_rate=0.05))),
            Service("slow", "bookinfo", RATE, _split(Version(0, median_ms=120))),
            Service("idle", "bookinfo", 20, _split(Version(0))),
            Service("reviews", "good", RATE, _split(Version(0), share=0)),
            Service("reviews", "bad", RATE, _split(Version(0, error_rate=0.05), share=0)),
            Service("reviews", "quiet", 20, _split(Version(0), share=0)),
            Service("reviews", "routed", RATE, _split(Version(0), share=0)),
        ]
    )


def analyze(mesh: Mesh, service: str, *extra: str) -> int:
    argv = ["analyze", "--prometheus", mesh.prometheus, "--service", service]
    return main([*argv, "--window", WINDOW, *extra])


@pytest.mark.parametrize(
    ("service", "exit_code", "says"),
    [
        ("healthy", EXIT_OK, "success rate passes"),
        ("errors", EXIT_FAILED, "success rate fails"),
        ("slow", EXIT_FAILED, "p99 latency fails"),
        ("idle", EXIT_INCONCLUSIVE, "fewer than canaryMinRequests 200"),
        ("nowhere", EXIT_INCONCLUSIVE, "canary v3 served 0 requests"),
    ],
    ids=["healthy passes", "5 % errors fail", "slow fails", "no traffic holds", "no series"],
)
def test_the_gate_on_real_promql(
    mesh: Mesh,
    service: str,
    exit_code: int,
    says: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "report.json"
    code = analyze(mesh, service, "--json", str(report_path))
    out = capsys.readouterr().out
    assert code == exit_code, out
    assert says in out, out
    report = json.loads(report_path.read_text())
    assert report["exitCode"] == exit_code
    assert report["verdict"] == {0: "pass", 1: "fail", 3: "inconclusive"}[exit_code]
    if service == "errors":  # the source reporter's retries hide them; destination's do not
        assert report["canary"]["errors"] > 0 and report["baseline"]["errors"] == 0, report


def test_the_json_report_on_stdout_is_the_whole_output(
    mesh: Mesh, capsys: pytest.CaptureFixture[str]
) -> None:
    assert analyze(mesh, "healthy", "--json", "-") == EXIT_OK
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    canary = report["canary"]
    assert canary["version"] == "v3" and canary["requests"] >= 200, canary
    assert canary["buckets"][-1]["le"] == "+Inf"
    assert [c["metric"] for c in report["checks"]] == ["success rate", "p99 latency"]


def test_thresholds_come_from_the_stack_and_set(
    mesh: Mesh, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asking for more requests than a window has turns the healthy pass into a hold."""
    code = analyze(mesh, "healthy", "--set", "canaryMinRequests=10000000")
    assert code == EXIT_INCONCLUSIVE
    assert "fewer than canaryMinRequests 10000000" in capsys.readouterr().out


def one_line(argv: list[str], capsys: pytest.CaptureFixture[str], says: str) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == EXIT_BAD_INPUT, (code, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert says in err and "Traceback" not in out + err, err


def test_prometheus_down_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    one_line(
        ["analyze", "--prometheus", "http://127.0.0.1:9", "--window", WINDOW],
        capsys,
        "cannot reach Prometheus at http://127.0.0.1:9: [Errno 111] Connection refused",
    )


def test_a_server_that_is_not_prometheus_is_one_line(
    mesh: Mesh, capsys: pytest.CaptureFixture[str]
) -> None:
    one_line(
        ["analyze", "--prometheus", f"http://{mesh.double}"],
        capsys,
        "did not answer as Prometheus's HTTP API does (HTTP 404 to /api/v1/query)",
    )


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--window", "5 minutes"], "--window '5 minutes' is not a Prometheus duration"),
        (["--service", "Reviews"], "--service 'Reviews' is not a Kubernetes name"),
        (["--canary", 'v3"}'], "--canary 'v3\"}' is not a version label"),
        (["--canary", "v1"], "--baseline and --canary are both 'v1'"),
        (["--prometheus", "localhost:9090"], "--prometheus must be an http(s) URL"),
        (["--json", "/nonexistent/r.json"], "folder /nonexistent does not exist"),
        (["--at", "yesterday"], "--at takes Unix seconds or an ISO 8601 time with a zone"),
        (["--set", "canaryMaxP99Ms=0"], 'bookinfo-mesh:canaryMaxP99Ms = "0": must be 1 to'),
        (["--set", "canaryMaxErrorRateIncrease=1%"], "must be a decimal number"),
        (["--stack", "staging"], "no stack 'staging'"),
    ],
)
def test_bad_input_is_one_line_before_any_query(
    extra: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    one_line(["analyze", "--prometheus", "http://127.0.0.1:9", *extra], capsys, says)


# --- ladders ----------------------------------------------------------------------------------


def make_project(folder: Path) -> Path:
    """The project's Pulumi.yaml and dev stack file in a git repository of their own."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(ROOT / name, folder / name)
    return one_commit_repository(folder, "ladder", "the project as it is")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def routed_shares(root: Path, service: str = "reviews") -> dict[str, float]:
    """How the program would route everyone's requests to `service` after `pulumi up` of
    Pulumi.dev.yaml as it now is: its catch-all rule's weights, from the stack's routes."""
    path = root / "Pulumi.dev.yaml"
    rules = stack_config_of_text(read_stack_text(path), path.name, root).route_table[service]
    catch_all = next(r for r in reversed(rules) if not r.matches)
    return {d.subset: d.weight / 100 for d in catch_all.destinations}


def climb(mesh: Mesh, root: Path, target: Target, plan: LadderPlan) -> tuple[Any, list[str]]:
    said: list[str] = []

    def deploy() -> None:
        host = f"{target.service}.{target.namespace}"
        mesh.traffic.set_shares(host, routed_shares(root, target.service))

    rig = StackRig(
        "dev",
        target,
        mesh.prometheus,
        stack_thresholds("dev"),
        deploy=deploy,
        root=root,
        say=said.append,
    )
    return walk(plan, rig, said.append), said


def ladder_target(namespace: str, service: str = "reviews") -> Target:
    return Target(service, namespace, "v1", "v3", WINDOW)


def commits(root: Path) -> list[str]:
    return git(root, "log", "--format=%s").splitlines()


# Reviews ruled by `routes` in the "routed" ladder: jason to v2, everyone else to v1.
ROUTES = {
    "reviews": {
        "http": [
            {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
             "route": [{"destination": {"subset": "v2"}}]},
            {"route": [{"destination": {"subset": "v1"}}]},
        ]
    }
}  # fmt: skip
# Each ladder's namespace (a mesh of its own in the double) and plan.
LADDERS = {
    "bad": LadderPlan((10, 25, 50, 100), WAIT_S, retries=0, retry_wait_s=1),
    "good": LadderPlan((50, 100), WAIT_S, retries=0, retry_wait_s=1),
    "routed": LadderPlan((50, 100), WAIT_S, retries=0, retry_wait_s=1),
    "quiet": LadderPlan((10, 100), WAIT_S, retries=1, retry_wait_s=0.5),
}


class Climbed(NamedTuple):
    project: Path
    before: bytes  # the stack file as the ladder found it
    result: Any
    said: list[str]


def _climb_ladder(mesh: Mesh, folder: Path, namespace: str) -> Climbed:
    project = make_project(folder)
    path = project / "Pulumi.dev.yaml"
    if namespace == "routed":
        path.write_text(path.read_text() + f"  bookinfo-mesh:routes: {json.dumps(ROUTES)}\n")
    before = path.read_bytes()
    result, said = climb(mesh, project, ladder_target(namespace), LADDERS[namespace])
    return Climbed(project, before, result, said)


@pytest.fixture(scope="module")
def climbed(
    mesh: Mesh, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Climbed]]]:
    """The four ladders climbed side by side, each in its own namespace and git copy, so
    their waits for Prometheus's windows overlap; each test reads what its own one did (and
    fails alone if that one failed)."""
    with ThreadPoolExecutor(len(LADDERS), thread_name_prefix="ladder") as pool:
        running = {
            namespace: pool.submit(
                _climb_ladder, mesh, tmp_path_factory.mktemp(namespace), namespace
            )
            for namespace in LADDERS
        }
        yield running


def test_a_failing_canary_is_rolled_back_and_applied(
    mesh: Mesh, climbed: dict[str, Future[Climbed]]
) -> None:
    project, before, result, said = climbed["bad"].result()
    assert result.outcome is Outcome.ROLLED_BACK, said
    assert [s.percent for s in result.steps] == [10], said
    assert result.steps[0].verdict is Verdict.FAIL
    assert (project / "Pulumi.dev.yaml").read_bytes() == before, "not rolled back byte for byte"
    assert commits(project) == [
        "dev: reviews v3 rolled back (canary ladder)",
        "dev: reviews v1 90 %, v3 10 % (canary ladder)",
        "the project as it is",
    ]
    assert mesh.traffic.services["reviews.bad"].versions["v3"].share == 0, "not applied"
    summary = summary_markdown("dev", ladder_target("bad"), result)
    assert "**rolled back**" in summary and "| 10 % | fail | 1 |" in summary, summary
    assert "success rate fails" in summary, summary


def test_a_healthy_canary_is_promoted_step_by_step(climbed: dict[str, Future[Climbed]]) -> None:
    project, _, result, said = climbed["good"].result()
    assert result.outcome is Outcome.PROMOTED, said
    assert [s.verdict for s in result.steps] == [Verdict.PASS, None], said
    assert routed_shares(project) == {"v3": 1.0}
    assert commits(project)[:2] == [
        "dev: reviews v1 0 %, v3 100 % (canary ladder)",
        "dev: reviews v1 50 %, v3 50 % (canary ladder)",
    ]
    assert project_values(read_stack_text(project / "Pulumi.dev.yaml"), "dev")["mode"] == (
        "split50"
    ), "Bookinfo's reviews steps by splitWeights, as promote --weights does"


def test_a_service_the_routes_key_rules_steps_its_catch_all_rule(
    climbed: dict[str, Future[Climbed]],
) -> None:
    """Reviews ruled by `routes` (jason to v2, everyone else to v1): the steps go into that
    key's catch-all rule, as promote --service writes them, and jason's rule stays."""
    project, _, result, said = climbed["routed"].result()
    path = project / "Pulumi.dev.yaml"
    assert result.outcome is Outcome.PROMOTED, said
    assert routed_shares(project) == {"v3": 1.0}
    values = project_values(read_stack_text(path), path.name)
    stepped = json.loads(values["routes"])["reviews"]["http"]
    jason, everyone = stepped
    assert jason["match"] == ROUTES["reviews"]["http"][0]["match"], stepped
    assert [r["destination"]["subset"] for r in jason["route"]] == ["v2"], stepped
    assert [(r["destination"]["subset"], r.get("weight", 100)) for r in everyone["route"]] == [
        ("v3", 100)
    ], stepped
    assert "splitWeights" not in values, values


def test_too_little_traffic_holds_after_its_retries(climbed: dict[str, Future[Climbed]]) -> None:
    project, _, result, said = climbed["quiet"].result()
    assert result.outcome is Outcome.HELD, said
    assert [len(s.reports) for s in result.steps] == [2], "not asked twice"
    assert routed_shares(project) == {"v1": 0.9, "v3": 0.1}, "held means: left where it was"


def test_the_ladder_command_rolls_back_through_git_and_its_apply_command(
    mesh: Mesh, project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The CLI end to end: a real subprocess as `--apply` (here `true`), a summary file."""
    monkeypatch.setattr(ladder_command, "ROOT", project)
    mesh.traffic.set_shares("reviews.bad", {"v1": 0.9, "v3": 0.1})  # as if already live
    summary = tmp_path / "summary.md"
    argv = ["ladder", "--prometheus", mesh.prometheus, "--namespace", "bad"]
    argv += ["--window", WINDOW, "--wait", "3", "--apply", "true", "--summary", str(summary)]
    assert main(argv) == EXIT_FAILED
    assert "rolled back" in summary.read_text()
    assert commits(project)[0] == "dev: reviews v3 rolled back (canary ladder)"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--steps", "25,10"], "--steps must rise"),
        (["--steps", "ten"], "--steps takes percentages"),
        (["--wait", "1"], "--wait 1 s is shorter than --window 5m"),
        (["--apply", "no-such-deployer up"], "--apply 'no-such-deployer up': no such command"),
        (["--apply", 'pulumi up "--stack'], "No closing quotation"),
    ],
)
def test_the_ladder_refuses_bad_input_in_one_line(
    extra: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    one_line(["ladder", "--apply", "true", *extra], capsys, says)


def test_the_module_shares_one_prometheus_on_one_worker(request: pytest.FixtureRequest) -> None:
    """Under `--dist loadgroup` (make test) every test here runs on one worker, beside one
    Prometheus; pytest 9.2 with xdist 3.8.0 silently loses the group (pytest-xdist#1386)."""
    if request.config.getoption("dist", "no") == "loadgroup":
        assert request.node.nodeid.endswith("@prometheus"), request.node.nodeid
