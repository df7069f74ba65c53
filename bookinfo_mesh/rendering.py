"""Rendering a stack, here or as a commit left it: what render, diff and pr-comment share."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bookinfo_mesh.engine import run_program
from bookinfo_mesh.errors import EXIT_FAILED, ToolError
from bookinfo_mesh.git import git
from bookinfo_mesh.render import Rendered, render_run
from bookinfo_mesh.schemas import validate_manifests
from bookinfo_mesh.stack_files import stack_file
from stacks.config import PROJECT, ConfigError
from stacks.project import ROOT, project_file, project_name


def render_stack(
    stack: str,
    overrides: Mapping[str, str],
    validate: bool,
    root: Path | None = None,
    stack_text: str | None = None,
) -> Rendered:
    """Run the program of the project at `root` (this one if None) under mocks, with
    `stack_text` as its stack file if given, and render it; ToolError on bad config or
    schemas."""
    run = run_program(stack, overrides, root, stack_text)
    if isinstance(run.error, ConfigError):
        raise ToolError(str(run.error))
    if run.error is not None:
        # The program failed where `pulumi up` would fail too (a provider's error under the
        # mocks, say): its message is the finding.
        raise ToolError(f"the program failed: {run.error}")
    rendered = render_run(run, project_name(root or ROOT))
    if validate:
        kubernetes, istio = checked_versions(rendered)
        checked = validate_manifests(rendered.manifests, kubernetes, istio)
        if checked.unchecked:
            print(f"note: {checked.unchecked}", file=sys.stderr)
        violations = checked.violations
        if violations:
            lines = "\n".join(f"  - {v}" for v in violations)
            raise ToolError(
                f"{len(violations)} schema violation(s); nothing written:\n{lines}", EXIT_FAILED
            )
    return rendered


def checked_versions(rendered: Rendered) -> tuple[str, str]:
    """The Kubernetes and Istio releases the objects are checked against: the stack's own, or
    for another project, whose program installs neither, what this one installs by default."""
    if rendered.summary.project == PROJECT:
        return rendered.summary.kubernetes_version, rendered.istio_crds_version
    defaults = project_file()["config"]
    kubernetes, istio = (str(defaults[k]["default"]) for k in ("kubernetesVersion", "istioVersion"))
    print(
        f"note: checked against Kubernetes {kubernetes} and Istio {istio}, what bookinfo-mesh "
        f"deploys by default: project {rendered.summary.project} installs neither",
        file=sys.stderr,
    )
    return kubernetes, istio


def commit_of(ref: str, option: str, root: Path | None = None) -> str:
    """The commit a git ref names in the project's repository; ToolError if it names none."""
    if not ref or ref.startswith("-"):
        # git would read it as an option: --output=FILE makes `git archive` truncate FILE.
        raise ToolError(f"{option} {ref!r} is not a git ref (it is empty or starts with '-')")
    result = subprocess.run(
        [
            "git",
            "-C",
            str(root or ROOT),
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{ref}^{{commit}}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ToolError(
            f"{option} {ref!r} names no commit in the repository at {(root or ROOT).name}/"
        )
    return result.stdout.strip()


def _git_text(root: Path, *argv: str) -> str:
    return git(root, *argv, where=f" in {root}").strip()


def render_at(
    commit: str, stack: str, overrides: Mapping[str, str], root: Path | None = None
) -> Rendered:
    """Render `stack` of the project at `root` (this one if None) as it is at `commit` (a
    full hash). In this repository, with that commit's own tools; in another one, with
    these. Where the commit's files are the checkout's but for the stack file (a promotion's
    base), the program here is the commit's program, and it renders here, with the commit's
    stack file."""
    where = root or ROOT
    top = Path(_git_text(where, "rev-parse", "--show-toplevel"))
    folder = _git_text(where, "rev-parse", "--show-prefix").rstrip("/")
    stack_path = f"{folder}/{stack_file(stack).name}".lstrip("/")
    stack_text = _text_if_only_it_differs(top, commit, stack_path)
    if stack_text is not None:
        try:
            return render_stack(stack, overrides, False, root, stack_text)
        except ToolError as error:
            raise _failed_at(commit, error.exit_code, f"error: {error}") from None
    own = top.resolve() == Path(_git_text(ROOT, "rev-parse", "--show-toplevel")).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(top), "archive", "--format=tar", commit, "--"],
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise ToolError(f"git archive {commit}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        sets = [f"--set={k}={v}" for k, v in overrides.items()]
        # This project at an old commit is rendered without --project, which it may predate.
        project = (
            ([] if not folder else ["--project", folder])
            if own
            else ["--project", str(Path(tmp) / folder)]
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bookinfo_mesh",
                "render",
                "--stack",
                stack,
                "--out",
                f"{tmp}/out",
                "--format",
                "json",
                "--no-validate",
                *project,
                *sets,
            ],
            cwd=tmp if own else ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise _failed_at(commit, result.returncode, result.stderr.strip())
        return Rendered.read(Path(tmp) / "out", f"the render at {commit[:12]}")


def _failed_at(commit: str, exit_code: int, stderr: str) -> ToolError:
    return ToolError(f"render at {commit[:12]} failed (exit {exit_code}):\n{stderr}", exit_code)


def _text_if_only_it_differs(top: Path, commit: str, stack_path: str) -> str | None:
    """The stack file's text at `commit` if every other file of the repository at `top` is
    as `commit` has it (nothing changed, nothing untracked, no attribute that makes git
    archive rewrite a file); None where a render must run the commit's own copy."""
    changed = subprocess.run(
        ["git", "-C", str(top), "diff", "--quiet", commit, "--", ".", f":(exclude){stack_path}"],
        capture_output=True,
        check=False,
    )
    if changed.returncode != 0:
        return None
    untracked = _git_text(top, "ls-files", "--others", "--exclude-standard", "--", ".")
    attributes = _git_text(top, "ls-files", "--", ":(glob)**/.gitattributes")
    if untracked or attributes:
        return None
    shown = subprocess.run(
        ["git", "-C", str(top), "show", f"{commit}:{stack_path}"],
        capture_output=True,
        check=False,
    )
    if shown.returncode != 0:
        return None  # no such stack at the commit: its own render says so
    try:
        return shown.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return None  # its own render reads it and says what is wrong
