"""The operator tools on bad input: exit 2, one line, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bookinfo_mesh import rendering, stack_files
from bookinfo_mesh.cli import main
from bookinfo_mesh.diff import diff_rendered
from bookinfo_mesh.errors import EXIT_BAD_INPUT as EXIT_BAD_CONFIG
from bookinfo_mesh.outputs import check_output_dir, write_file
from bookinfo_mesh.render import RENDER_FILES, Rendered
from bookinfo_mesh.report import diff_markdown, print_render
from stacks.project import ROOT
from tests.programs import shared_render

BROKEN_STACKS = {
    "broken-yaml": "config: [\n",
    "config-list": "config:\n  - bookinfo-mesh:mode\n",
    "only-a-string": "just a string\n",
    "duplicate-key": "config:\n  bookinfo-mesh:mode: v3\n  bookinfo-mesh:mode: all-v1\n",
}


@pytest.fixture
def broken_stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stack files Pulumi would not read, beside copies of the real ones in a project of the
    test's own (never in the checkout, where tests running beside this one read the stacks)."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    for name, text in BROKEN_STACKS.items():
        (tmp_path / f"Pulumi.test-{name}.yaml").write_text(text)
    monkeypatch.setattr(stack_files, "ROOT", tmp_path)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, assert exit 2 and a single error line, and return that line."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == EXIT_BAD_CONFIG, f"{argv} exited {code}, not 2: {captured.err}"
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, f"{argv} printed {len(lines)} error lines: {captured.err}"
    assert lines[0].startswith("error: "), f"{argv}: {lines[0]}"
    assert captured.out == "", f"{argv} printed to stdout: {captured.out}"
    return lines[0]


def test_an_unknown_stack_is_refused_naming_the_stacks_there(capsys, tmp_path: Path) -> None:
    line = refused(["render", "--stack", "staging", "--out", str(tmp_path / "o")], capsys)
    assert "no stack 'staging'" in line and "dev, prod" in line, line
    assert not (tmp_path / "o").exists(), "render wrote files for a stack that does not exist"


@pytest.mark.parametrize(
    ("stack", "says"),
    [
        ("broken-yaml", "is not valid YAML (line 2)"),
        ("config-list", "`config:` must map keys to values, not be a list"),
        ("only-a-string", "must be a mapping with a `config:` key, not a str"),
        ("duplicate-key", 'mapping key "bookinfo-mesh:mode" already defined at line 2'),
    ],
)
def test_a_malformed_stack_file_is_refused_in_one_line(
    broken_stacks, capsys, tmp_path: Path, stack: str, says: str
) -> None:
    line = refused(["render", "--stack", f"test-{stack}", "--out", str(tmp_path / "o")], capsys)
    assert says in line and f"Pulumi.test-{stack}.yaml" in line, line
    assert not (tmp_path / "o").exists()


def test_a_value_with_rich_markup_is_shown_as_typed(capsys, tmp_path: Path) -> None:
    code = main(["render", "--set", "mode=[/]", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_CONFIG and '"[/]"' in err, err
    assert "Traceback" not in err


def test_a_test_user_with_markup_shows_as_typed_in_the_terminal(tmp_path: Path) -> None:
    from rich.console import Console

    rendered = shared_render("dev", {"testUser": "[bold]x"})
    console = Console(record=True, width=200)
    print_render(rendered, console, None)
    assert "user [bold]x" in console.export_text(), "rich read the test user as markup"


def test_out_naming_an_existing_file_is_refused_and_left_alone(capsys, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("keep me")
    line = refused(["render", "--out", str(target)], capsys)
    assert "is an existing file" in line, line
    assert target.read_text() == "keep me"


def test_out_in_a_place_that_cannot_be_written_is_refused(capsys) -> None:
    line = refused(["render", "--out", "/proc/bookinfo-mesh-out"], capsys)
    assert "/proc/bookinfo-mesh-out" in line, line


def test_out_holding_other_files_is_never_replaced(capsys, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    line = refused(["render", "--out", str(tmp_path)], capsys)
    assert "notes.txt" in line, line
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("where", ["missing-dir/comment.md", "."])
def test_markdown_into_a_missing_folder_or_onto_a_folder_is_refused(
    capsys, tmp_path: Path, where: str
) -> None:
    line = refused(["diff", "--markdown", str(tmp_path / where)], capsys)
    assert "--markdown" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a partial comment was written"


def test_a_base_ref_that_looks_like_an_option_never_reaches_git(capsys, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    line = refused(["diff", f"--base=--output={victim}"], capsys)
    assert "starts with '-'" in line, line
    assert victim.read_text() == "precious", "git truncated the file named in --base"


def test_a_base_ref_that_does_not_exist_exits_2(capsys) -> None:
    line = refused(["diff", "--base", "no-such-branch-anywhere"], capsys)
    assert "names no commit" in line, line


def test_head_without_base_is_refused(capsys) -> None:
    line = refused(["diff", "--head", "HEAD"], capsys)
    assert "--head needs --base" in line, line


def test_a_bad_input_never_prints_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bookinfo_mesh", "diff", "--base=-x", "--markdown", "-"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == EXIT_BAD_CONFIG, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr


# --- outputs written whole --------------------------------------------------------------


def test_a_render_replaces_an_earlier_one_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["render", "--out", str(out), "--format", "json", "--no-validate"]) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(first) == RENDER_FILES
    args = ["render", "--set", "mode=v3", "--out", str(out), "--format", "json", "--no-validate"]
    assert main(args) == 0
    assert {p.name for p in out.iterdir()} == RENDER_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "staging folders were left"


def test_a_file_written_whole_keeps_the_permissions_of_the_one_it_replaces(
    tmp_path: Path,
) -> None:
    kept, fresh = tmp_path / "Pulumi.dev.yaml", tmp_path / "comment.md"
    kept.write_text("old\r\n")
    kept.chmod(0o600)
    write_file(kept, "mode: v3\r\nnäme\r\n", "--stack")
    write_file(fresh, "report\n", "--markdown")
    assert kept.read_bytes() == "mode: v3\r\nnäme\r\n".encode()  # UTF-8, line ends as given
    assert (kept.stat().st_mode & 0o777, fresh.stat().st_mode & 0o777) == (0o600, 0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.dev.yaml", "comment.md"]


def test_an_out_swapped_away_between_two_looks_reads_as_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer renames `out` aside just before its replacement lands: for that moment
    there is no folder, which is no reason to refuse (the check repeats under the lock)."""
    out = tmp_path / "out"
    out.mkdir()

    def swapped_away(self: Path) -> Iterator[Path]:
        raise FileNotFoundError(2, "No such file or directory", str(self))

    monkeypatch.setattr(Path, "iterdir", swapped_away)
    check_output_dir(out, RENDER_FILES)


def test_two_renders_into_one_out_never_mix(tmp_path: Path) -> None:
    out = tmp_path / "out"
    renders = {mode: shared_render("dev", {"mode": mode}) for mode in ("all-v1", "split50")}
    errors: list[BaseException] = []

    def write(rendered: Rendered) -> None:
        try:
            for _ in range(20):
                rendered.write(out)
        except BaseException as error:  # noqa: BLE001 reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(r,)) for r in renders.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    written = {p.name: p.read_text() for p in out.iterdir()}
    assert any(written == r.files() for r in renders.values()), "files of two renders mixed"
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "staging or old folders were left"


# --- the pull-request comment -----------------------------------------------------------

HOSTILE_USER = "a|b`c<img src=x onerror=alert(1)>"


def _outside_code_blocks(markdown: str) -> list[str]:
    lines, fence = [], None
    for line in markdown.splitlines():
        if fence is None and line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def test_a_hostile_test_user_cannot_break_the_tables_or_inject_html() -> None:
    before = shared_render("dev", {"mode": "user-v2"})
    after = shared_render("dev", {"mode": "user-v2", "testUser": HOSTILE_USER})
    markdown = diff_markdown(diff_rendered(before, after))
    text = _outside_code_blocks(markdown)
    assert not any("<img" in line or "`" in line for line in text), markdown
    columns = None
    for line in text:
        if not line.startswith("|"):
            columns = None
        elif columns is None:
            columns = line.count("|")  # the header row decides the table's width
        else:
            assert line.count("|") == columns, f"a row has another width than its header: {line}"
    assert "a&#124;b&#96;c&#60;img" in markdown, "the test user is not shown as typed"


def test_changing_the_test_user_shows_the_old_rows_leaving_and_the_new_arriving() -> None:
    before = shared_render("dev", {"mode": "user-v2"})
    after = shared_render("dev", {"mode": "user-v2", "testUser": "anonymous"})
    markdown = diff_markdown(diff_rendered(before, after))
    assert "| user jason | reviews v2, black stars | - |" in markdown, markdown
    assert "| user anonymous | - | reviews v2, black stars |" in markdown, markdown
    assert "| not logged in | reviews v1, no stars | reviews v1, no stars |" in markdown, (
        "a test user named anonymous overwrote the visitors who are not logged in"
    )


# --- exit codes other than 0 and 2, through the command line ------------------------------
def test_a_manifest_that_breaks_its_schema_fails_the_render_with_exit_1_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import components.bookinfo

    def misspelt_namespace() -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "bookinfo", "lables": {}},
        }

    monkeypatch.setattr(components.bookinfo, "namespace_manifest", misspelt_namespace)
    code = main(["render", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1, f"a schema violation exited {code}: {err}"
    assert "1 schema violation(s); nothing written:" in err, err
    assert "Namespace bookinfo: metadata.lables" in err, err
    assert not (tmp_path / "out").exists()


def commit_copy(repo: Path, edit: dict[str, str]) -> tuple[str, str]:
    """A git repository holding the project's tracked files: a commit with `edit` applied to
    some files, then one without (the files as they are). Returns (edited, clean) commits."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes((ROOT / name).read_bytes())
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    originals = {name: (repo / name).read_text() for name in edit}
    for name, text in edit.items():
        (repo / name).write_text(text)
    commits = []
    for message in ("edited", "clean"):
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", message], check=True)
        commits.append(
            subprocess.run(
                [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        for name, text in originals.items():
            (repo / name).write_text(text)
    return commits[0], commits[1]


def test_a_render_that_fails_at_a_ref_fails_the_diff_with_its_own_code_and_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = (ROOT / "Pulumi.dev.yaml").read_text().replace("mode: all-v1", "mode: nonsense")
    edited, _ = commit_copy(tmp_path / "repo", {"Pulumi.dev.yaml": stack})
    comment = tmp_path / "comment.md"
    comment.write_text("the comment of an earlier run\n")
    argv = ["pr-comment", "--project", str(tmp_path / "repo"), "--base", edited]
    assert main([*argv, "--out", str(comment)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: render at {edited[:12]} failed (exit 2):\n"), err
    assert 'bookinfo-mesh:mode = "nonsense": must be one of' in err, err
    assert comment.read_text() == "the comment of an earlier run\n", "a failed run wrote"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comment.md", "repo"], "a stray file"


def test_a_commit_differing_only_in_its_stack_file_renders_here_as_its_own_copy_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A promotion's base (the checkout but for the stack file) renders in this process; with
    anything else different (an untracked file will do), in an archived copy of the commit.
    Both are the same render."""
    stack = (ROOT / "Pulumi.dev.yaml").read_text().replace("mode: all-v1", "mode: v3")
    repo = tmp_path / "repo"
    edited, _ = commit_copy(repo, {"Pulumi.dev.yaml": stack})
    pythons: list[list[str]] = []
    real_run = rendering.subprocess.run

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        if argv[0] == sys.executable:
            pythons.append(argv)
        return real_run(argv, **kwargs)

    monkeypatch.setattr(rendering.subprocess, "run", run)
    here = rendering.render_at(edited, "dev", {}, repo)
    assert pythons == [], "the commit's program is the checkout's: no copy was needed"
    (repo / "notes.txt").write_text("untracked\n")
    in_its_copy = rendering.render_at(edited, "dev", {}, repo)
    assert len(pythons) == 1, "an untracked file might be the program's: the commit's own copy"
    assert here.summary.config["mode"] == "v3"
    assert here == in_its_copy
