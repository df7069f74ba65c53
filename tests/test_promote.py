"""promote: every transition, refused targets, byte-identical round trips, git's `previous`."""

from __future__ import annotations

import difflib
import shutil
import subprocess
from itertools import permutations
from pathlib import Path

import pytest
import yaml

from bookinfo_mesh import promotion
from bookinfo_mesh.cli import main
from bookinfo_mesh.commands import promote
from bookinfo_mesh.outputs import write_file
from bookinfo_mesh.promotion import PromoteError, plan_istio_promotion, plan_promotion
from bookinfo_mesh.stack_edit import set_key
from bookinfo_mesh.stack_files import stack_config_of_text
from model.routing import MODES
from stacks.config import FAULT_MODES
from stacks.project import ROOT
from tests.programs import shared_render

STACKS = ("dev", "prod")
ALLOWED = {"dev": MODES, "prod": tuple(m for m in MODES if m not in FAULT_MODES)}
WEIGHTS = {"v1": 90, "v3": 10}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's Pulumi.yaml and real stack files to edit."""
    for name in ("Pulumi.yaml", *(f"Pulumi.{s}.yaml" for s in STACKS)):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _move(root: Path, stack: str, to: str | None, weights: dict[str, int] | None = None) -> str:
    promotion = plan_promotion(stack, to, weights, root)
    write_file(promotion.path, promotion.new_text, "--stack")
    return promotion.new_text


def _changed_lines(old: str, new: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_every_transition_changes_only_the_traffic_keys_and_comes_back_byte_identical(
    project: Path, stack: str
) -> None:
    original = (project / f"Pulumi.{stack}.yaml").read_bytes()
    for a, b in permutations(ALLOWED[stack], 2):
        at_a = _move(project, stack, a)
        at_b = _move(project, stack, b)
        for line in _changed_lines(at_a, at_b):
            assert "bookinfo-mesh:mode:" in line or "bookinfo-mesh:splitWeights:" in line, (
                f"{stack} {a} -> {b} changed a line that is not mode or splitWeights: {line}"
            )
        config = yaml.safe_load(at_b)["config"]
        assert config["bookinfo-mesh:mode"] == b, f"{stack} {a} -> {b} wrote the wrong mode"
        assert _move(project, stack, a) == at_a, f"{stack} {a} -> {b} -> {a} is not byte-identical"
    _move(project, stack, "all-v1")
    assert (project / f"Pulumi.{stack}.yaml").read_bytes() == original, (
        f"{stack}: back at all-v1 the file differs from the committed one"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_a_weighted_split_and_back_is_byte_identical(project: Path, stack: str) -> None:
    path = project / f"Pulumi.{stack}.yaml"
    original = path.read_text()
    split = _move(project, stack, None, WEIGHTS)
    assert yaml.safe_load(split)["config"]["bookinfo-mesh:splitWeights"] == (
        '{"v1": 90, "v3": 10}'
    ), "splitWeights is not the JSON string the engine expects"
    assert _move(project, stack, "split50", {"v1": 50, "v3": 50}) != split, "weights unchanged"
    assert _move(project, stack, "split50", WEIGHTS) == split, "same weights, other bytes"
    assert _move(project, stack, "v3") != split
    _move(project, stack, "all-v1")
    assert path.read_text() == original, "split and back left traces in the stack file"


@pytest.mark.parametrize("mode", FAULT_MODES)
def test_fault_modes_on_prod_are_refused_and_the_file_is_untouched(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    monkeypatch.setattr(promotion, "ROOT", project)
    before = (project / "Pulumi.prod.yaml").read_bytes()
    assert main(["promote", "--stack", "prod", "--to", mode]) == 2, "a fault mode on prod passed"
    error = capsys.readouterr().err
    assert "allowFaultInjection" in error, f"the refusal does not say how to allow it: {error}"
    assert error.count("\n") == 1, f"the error is not one line: {error!r}"
    assert (project / "Pulumi.prod.yaml").read_bytes() == before, "a refused promotion wrote"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--weights", "v1=90,v3=20"], "sum to 100"),
        (["--weights", "v1=90,v4=10"], "v4"),
        (["--weights", "v1=ninety"], "subset=percent"),
        (["--weights", "v1=50,v1=50"], "twice"),
        (["--to", "v3", "--weights", "v3=100"], "cannot go with --to v3"),
        (["--stack", "../etc/passwd", "--to", "v3"], "not a stack name"),
        (
            ["--stack", "staging", "--to", "v3"],
            "no stack 'staging': there is no Pulumi.staging.yaml",
        ),
        ([], "needs --to"),
        (["--istio", "1.31.0", "--to", "v3"], "--istio is a step of its own"),
        (["--istio", "latest"], "--istio 'latest' must be an exact Istio release"),
        (["--istio", "1.32.0"], "--istio '1.32.0' is Istio 1.32, which this program does not"),
        (["--istio", "1.30.4"], "is older than istioVersion 1.31.0"),
        (["--istio", "previous"], "git log: fatal: not a git repository"),
        (["--service", "cart", "--weights", "v1=100"], "--service 'cart' is not routed here"),
        (["--service", "reviews", "--weights", "v1=50,v9=50"], "routes.reviews.http[0]"),
        (["--service", "reviews", "--weights", "v1=50,v3=40"], "weights must sum to 100"),
        (["--service", "reviews", "--to", "v3"], "--service takes --weights"),
        (["--service", "reviews", "--istio", "1.31.1"], "--istio is a step of its own"),
    ],
)
def test_bad_promotions_exit_2_with_one_line_and_write_nothing(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    says: str,
) -> None:
    monkeypatch.setattr(promotion, "ROOT", project)
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    assert main(["promote", *argv]) == 2, f"promote {argv} did not exit 2"
    error = capsys.readouterr().err
    assert says in error and error.count("\n") == 1, f"promote {argv}: {error!r}"
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before, "a file changed"


def test_the_command_writes_the_file_and_prints_routes_and_pages(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(promotion, "ROOT", project)
    assert main(["promote", "--stack", "dev", "--weights", "v1=90,v3=10"]) == 0
    out = capsys.readouterr().out
    assert "v1 90 %, v3 10 %" in out, f"the after route is not printed:\n{out}"
    assert "10 %: reviews v3, red stars" in out, f"the predicted page is not printed:\n{out}"
    assert "split50" in (project / "Pulumi.dev.yaml").read_text(), "the file was not written"
    assert main(["promote", "--stack", "dev", "--to", "v3", "--dry-run"]) == 0
    assert "split50" in (project / "Pulumi.dev.yaml").read_text(), "--dry-run wrote the file"


COMMENTED = (
    "# a stack with comments everywhere\r\n"
    "config:\r\n"
    "    # traffic\r\n"
    '    mode: "user-v2"   # promoted by hand\r\n'
    "    aws:region: ap-northeast-2\r\n"
    '    bookinfo-mesh:splitWeights: \'{"v1": 70, "v2": 30}\' # staged\r\n'
    "    bookinfo-mesh:testUser: 'it''s-me'\r\n"
    "# trailing comment"
)


def test_comments_quoting_crlf_and_short_keys_survive_a_round_trip() -> None:
    there = set_key(COMMENTED, "mode", "split50")
    assert "    mode: split50   # promoted by hand\r\n" in there, f"comment lost:\n{there}"
    weights = set_key(there, "splitWeights", '{"v1": 90, "v3": 10}')
    assert '\'{"v1": 90, "v3": 10}\' # staged\r\n' in weights, f"comment lost:\n{weights}"
    back = set_key(set_key(weights, "splitWeights", '{"v1": 70, "v2": 30}'), "mode", "user-v2")
    assert back == COMMENTED.replace('"user-v2"', "user-v2"), "round trip changed other bytes"
    removed = set_key(back, "splitWeights", None)
    assert "splitWeights" not in removed and removed.endswith("# trailing comment")
    added = set_key(removed, "splitWeights", '{"v1": 70, "v2": 30}')
    assert yaml.safe_load(added)["config"]["bookinfo-mesh:splitWeights"] == '{"v1": 70, "v2": 30}'
    assert added.count("\r\n") == COMMENTED.count("\r\n"), "an inserted line has another ending"


def test_values_that_yaml_would_misread_are_quoted() -> None:
    text = "config:\n  bookinfo-mesh:mode: all-v1\n"
    for value in ("true", "1.35", "a: b", "it's", "#x"):
        written = set_key(text, "mode", value)
        assert yaml.safe_load(written)["config"]["bookinfo-mesh:mode"] == value, written


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _commit(root: Path, message: str) -> None:
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)


def test_previous_restores_the_last_committed_mode_and_weights(project: Path) -> None:
    _git(project, "init", "-q")
    path = project / "Pulumi.dev.yaml"
    _commit(project, "all-v1")
    split = _move(project, "dev", None, WEIGHTS)
    _commit(project, "split 90/10")
    path.write_text(path.read_text().replace("azCount: 2", "azCount: 3"))
    _commit(project, "an unrelated change to the same file")
    at_v3 = _move(project, "dev", "v3")
    _commit(project, "v3")
    assert _move(project, "dev", "previous") == split.replace("azCount: 2", "azCount: 3"), (
        "previous did not restore split50 with its weights"
    )
    _commit(project, "roll back")
    _move(project, "dev", "previous")
    assert path.read_text() == at_v3, "previous of the rollback is not v3 again"


def test_previous_without_history_is_refused(project: Path) -> None:
    _git(project, "init", "-q")
    _commit(project, "only commit")
    with pytest.raises(PromoteError, match="no commit"):
        plan_promotion("dev", "previous", None, project)


def test_the_printed_routes_and_pages_are_those_render_predicts() -> None:
    planned = plan_promotion("dev", "delay", None)
    routes, pages = promote.tables(planned.after)
    summary = shared_render("dev", {"mode": "delay"}).summary
    assert routes == summary.routes, "promote's route table differs from render's"
    assert pages == {c: p.summary for c, p in summary.predicted_pages.items()}


# --- the control plane's ladder ----------------------------------------------------------
OLD_ISTIO, NEW_ISTIO = "1.30.4", "1.31.0"


@pytest.fixture
def on_old_istio(project: Path) -> Path:
    """The dev stack pinned to 1.30.4, committed, as a stack deployed before 1.31 would be."""
    path = project / "Pulumi.dev.yaml"
    path.write_text(
        path.read_text().replace(
            "  bookinfo-mesh:mode: all-v1\n",
            f"  bookinfo-mesh:mode: all-v1\n  bookinfo-mesh:istioVersion: {OLD_ISTIO}\n",
        )
    )
    _git(project, "init", "-q")
    _commit(project, f"dev on {OLD_ISTIO}")
    return project


def _istio_step(root: Path, to: str) -> dict[str, object]:
    promotion = plan_istio_promotion("dev", to, root)
    if promotion.new_text != promotion.old_text:
        write_file(promotion.path, promotion.new_text, "--stack")
        _commit(root, f"istio step toward {to}")
    config = yaml.safe_load(promotion.new_text)["config"]
    return {k.removeprefix("bookinfo-mesh:"): v for k, v in config.items() if "istio" in k}


def test_the_istio_ladder_takes_four_steps_each_one_config_change(on_old_istio: Path) -> None:
    original = (on_old_istio / "Pulumi.dev.yaml").read_text()
    steps = [_istio_step(on_old_istio, NEW_ISTIO) for _ in range(5)]
    assert steps == [
        {"istioVersion": OLD_ISTIO, "istioCanaryVersion": NEW_ISTIO},
        {
            "istioVersion": OLD_ISTIO,
            "istioCanaryVersion": NEW_ISTIO,
            "istioCanaryStage": "workloads",
        },
        {"istioVersion": OLD_ISTIO, "istioCanaryVersion": NEW_ISTIO, "istioCanaryStage": "gateway"},
        {"istioVersion": NEW_ISTIO},
        {"istioVersion": NEW_ISTIO},  # done: the last step changes nothing
    ]
    final = (on_old_istio / "Pulumi.dev.yaml").read_text()
    for line in _changed_lines(original, final):
        assert "bookinfo-mesh:istioVersion:" in line, f"a step changed another line: {line}"


def test_previous_walks_the_ladder_back_to_the_same_bytes(on_old_istio: Path) -> None:
    path = on_old_istio / "Pulumi.dev.yaml"
    texts = [path.read_text()]
    for _ in range(4):
        _istio_step(on_old_istio, NEW_ISTIO)
        texts.append(path.read_text())
    # Each `previous` undoes the newest step; a step back is itself a commit, so the
    # history of the file alternates, as `--to previous` does for traffic.
    _istio_step(on_old_istio, "previous")
    assert path.read_text() == texts[3], "previous did not undo the final step"


def test_a_patch_of_the_current_minor_is_one_in_place_step(project: Path) -> None:
    assert _istio_step_in(project, "1.31.1") == {"istioVersion": "1.31.1"}


def _istio_step_in(root: Path, to: str) -> dict[str, object]:
    promotion = plan_istio_promotion("dev", to, root)
    config = yaml.safe_load(promotion.new_text)["config"]
    return {k.removeprefix("bookinfo-mesh:"): v for k, v in config.items() if "istio" in k}


def test_a_second_canary_is_refused_while_one_is_under_way(on_old_istio: Path) -> None:
    _istio_step(on_old_istio, NEW_ISTIO)
    with pytest.raises(PromoteError, match=r"a canary of 1\.31\.0 is under way; finish it"):
        plan_istio_promotion("dev", "1.30.9", on_old_istio)
    assert _istio_step_in(on_old_istio, "1.31.1") == {
        "istioVersion": OLD_ISTIO,
        "istioCanaryVersion": "1.31.1",
    }, "a newer patch of the canary's own minor replaces it at the same stage"


def test_the_istio_step_prints_the_control_plane_before_and_after(
    on_old_istio: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(promotion, "ROOT", on_old_istio)
    assert main(["promote", "--stack", "dev", "--istio", NEW_ISTIO]) == 0
    out = capsys.readouterr().out
    assert "│ * │ istiod revisions      │ 1-30 (1.30.4) │ 1-30 (1.30.4), 1-31 (1.31.0) │" in out, (
        out
    )
    assert "wrote Pulumi.dev.yaml: canary 1-31 (1.31.0) beside 1-30" in out, out
    assert "next: promote --istio 1.31.0" in out, out


def test_a_service_step_writes_only_its_routes_and_keeps_its_other_rules(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--service reviews steps the rule that matches everyone; jason keeps v2 (user-v2)."""
    monkeypatch.setattr(promotion, "ROOT", project)
    path = project / "Pulumi.dev.yaml"
    assert main(["promote", "--stack", "dev", "--to", "user-v2"]) == 0
    before = path.read_text()
    assert (
        main(["promote", "--stack", "dev", "--service", "reviews", "--weights", "v1=90,v3=10"]) == 0
    )
    after = path.read_text()
    changed = _changed_lines(before, after)
    assert len(changed) == 1 and changed[0].startswith("+  bookinfo-mesh:routes: {"), changed
    config = stack_config_of_text(after, path.name, project)
    assert [d.weight for d in config.route_table["reviews"][1].destinations] == [90, 10]
    assert (
        config.route_table["reviews"][0]
        == stack_config_of_text(before, path.name, project).route_table["reviews"][0]
    )
    # The file says an object, as Pulumi.yaml declares routes: Pulumi reads it as one.
    assert isinstance(yaml.safe_load(after)["config"]["bookinfo-mesh:routes"], dict)
