"""Rendering a stack, here or as a commit left it: what render, diff and pr-comment share."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bookinfo_mesh.engine import run_program
from bookinfo_mesh.errors import EXIT_FAILED, ToolError
from bookinfo_mesh.render import Rendered, render_run
from bookinfo_mesh.schemas import validate_manifests
from stacks.config import ConfigError
from stacks.project import ROOT


def render_stack(stack: str, overrides: Mapping[str, str], validate: bool) -> Rendered:
    """Run the program under mocks and render it; ToolError on bad config or schemas."""
    run = run_program(stack, overrides)
    if isinstance(run.error, ConfigError):
        raise ToolError(str(run.error))
    if run.error is not None:
        # The program failed where `pulumi up` would fail too (a provider's error under the
        # mocks, say): its message is the finding.
        raise ToolError(f"the program failed: {run.error}")
    rendered = render_run(run)
    if validate:
        checked = validate_manifests(
            rendered.manifests, rendered.summary.kubernetes_version, rendered.istio_crds_version
        )
        if checked.unchecked:
            print(f"note: {checked.unchecked}", file=sys.stderr)
        violations = checked.violations
        if violations:
            lines = "\n".join(f"  - {v}" for v in violations)
            raise ToolError(
                f"{len(violations)} schema violation(s); nothing written:\n{lines}", EXIT_FAILED
            )
    return rendered


def commit_of(ref: str, option: str, root: Path = ROOT) -> str:
    """The commit a git ref names in the project's repository; ToolError if it names none."""
    if not ref or ref.startswith("-"):
        # git would read it as an option: --output=FILE makes `git archive` truncate FILE.
        raise ToolError(f"{option} {ref!r} is not a git ref (it is empty or starts with '-')")
    result = subprocess.run(
        [
            "git",
            "-C",
            str(root),
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
        raise ToolError(f"{option} {ref!r} names no commit in the repository at {root.name}/")
    return result.stdout.strip()


def render_at(commit: str, stack: str, overrides: Mapping[str, str], root: Path = ROOT) -> Rendered:
    """Render `stack` as it is at `commit` (a full hash), with that commit's own tools."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", "--format=tar", commit, "--"],
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise ToolError(f"git archive {commit}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        sets = [f"--set={k}={v}" for k, v in overrides.items()]
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
                *sets,
            ],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ToolError(
                f"render at {commit[:12]} failed (exit {result.returncode}):\n"
                f"{result.stderr.strip()}",
                result.returncode,
            )
        return Rendered.read(Path(tmp) / "out", f"the render at {commit[:12]}")
