"""The shop example through the operator tools, as a user's own project: render, diff,
promote and pr-comment with --project, in a git repository of the shop's own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bookinfo_mesh.cli import main
from bookinfo_mesh.errors import EXIT_BAD_INPUT, EXIT_OK
from bookinfo_mesh.stack_files import project_values
from stacks.project import ROOT
from tests.repos import git, one_commit_repository

SHOP = ROOT / "examples" / "shop"
WEB_CANARY = "v1 90 %, v2 10 %"


@pytest.fixture
def shop_repo(tmp_path: Path) -> Path:
    """The shop's folder as a repository of its own, one commit deep."""
    repo = tmp_path / "shop"
    shutil.copytree(SHOP, repo, ignore=shutil.ignore_patterns("__pycache__"))
    return one_commit_repository(repo, "shop", "the shop as it is")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_render_shows_the_shops_routes_for_everyone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    argv = ["render", "--project", str(SHOP), "--stack", "dev", "--out", str(out_dir)]
    code, out, err = run(argv, capsys)
    assert code == EXIT_OK, err
    assert "bookinfo-mesh stack dev of project shop: 8 resources, 6 Kubernetes objects" in out
    assert "Predicted /productpage" not in out, "the page is Bookinfo's"
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["project"] == "shop" and summary["predictedPages"] == {}
    assert summary["routes"]["web"] == {"everyone": {"to": WEB_CANARY}}
    assert "checked against Kubernetes" in err, "where the versions checked come from"


def test_diff_previews_a_routes_change(capsys: pytest.CaptureFixture[str]) -> None:
    split = {"route": [{"destination": {"subset": s}, "weight": 50} for s in ("v1", "v2")]}
    change = "routes=" + json.dumps({"web": {"http": [split]}})
    code, out, err = run(["diff", "--project", str(SHOP), "--set", change], capsys)
    assert code == EXIT_OK, err
    assert "spec.http[0].route[0].weight: 90 -> 50" in out
    assert "web     │ everyone │ v1 90 %, v2 10 % │ v1 50 %, v2 50 %" in out


def test_diff_of_the_shop_at_a_commit_of_this_repository(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The shop inside this repository: HEAD's own tools render HEAD's shop."""
    code, out, err = run(["diff", "--project", str(SHOP), "--base", "HEAD"], capsys)
    assert code == EXIT_OK, err
    assert "Routes: unchanged" in out


def test_promote_steps_one_service_then_diff_and_pr_comment_show_it(
    shop_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = shop_repo / "Pulumi.dev.yaml"
    before = stack_file.read_text()
    argv = ["promote", "--project", str(shop_repo), "--service", "web", "--weights", "v1=50,v2=50"]
    code, out, err = run(argv, capsys)
    assert code == EXIT_OK, err
    assert "wrote Pulumi.dev.yaml: routes of web stepped" in out
    after = stack_file.read_text()
    added = [line for line in after.splitlines() if line.startswith("  shop:routes: {")]
    assert len(added) == 1, after
    kept = [line for line in after.splitlines() if line not in added]
    assert kept == before.splitlines(), "promote changed lines it was not asked to"
    routes = json.loads(project_values(after, stack_file.name, "shop")["routes"])
    assert [d["weight"] for d in routes["web"]["http"][0]["route"]] == [50, 50]
    git(shop_repo, "commit", "-qam", "web: v2 at 50 %")

    code, out, err = run(["diff", "--project", str(shop_repo), "--base", "HEAD~1"], capsys)
    assert code == EXIT_OK, err
    assert "v1 90 %, v2 10 % │ v1 50 %, v2 50 %" in out

    comment = tmp_path / "comment.md"
    argv = ["pr-comment", "--project", str(shop_repo), "--base", "HEAD~1", "--out", str(comment)]
    code, out, err = run(argv, capsys)
    assert code == EXIT_OK, err
    text = comment.read_text()
    assert "| web | everyone | v1 90 %, v2 10 % | v1 50 %, v2 50 % |" in text, text
    assert "productpage" not in text, "Bookinfo's page and calls are not the shop's"
    assert 's2 -->|"50 %"| s2n0["web v1"]' in text, text

    argv = ["promote", "--project", str(shop_repo), "--service", "web", "--to", "previous"]
    code, out, err = run(argv, capsys)
    assert code == EXIT_OK, err
    assert stack_file.read_text() == before, "previous did not restore the file byte for byte"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--service", "checkout", "--weights", "v1=100"], "'checkout' is not routed here"),
        (["--service", "web", "--weights", "v1=50,v3=50"], "subset = 'v3': no such subset"),
        (["--to", "v3"], "promote steps one service there"),
        (["--istio", "1.31.1"], "the modes and --istio are bookinfo-mesh's"),
    ],
)
def test_promote_in_a_project_refuses_in_one_line_and_writes_nothing(
    shop_repo: Path, extra: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (shop_repo / "Pulumi.dev.yaml").read_bytes()
    code, _, err = run(["promote", "--project", str(shop_repo), *extra], capsys)
    assert code == EXIT_BAD_INPUT and err.count("\n") == 1 and says in err, err
    assert (shop_repo / "Pulumi.dev.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("folder", "says"),
    [("docs", "no Pulumi.yaml or __main__.py there"), ("nowhere", "no Pulumi.yaml or __main__")],
)
def test_a_folder_that_is_no_project_is_one_line(
    folder: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["render", "--project", str(ROOT / folder)], capsys)
    assert code == EXIT_BAD_INPUT and err.count("\n") == 1 and says in err, err
