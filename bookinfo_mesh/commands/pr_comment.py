"""`bookinfo-mesh pr-comment`: the pull request's offline diff, one section per touched stack.

The comment starts with MARKER, so the job that posts it can find and update its own earlier
comment instead of adding another.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.text import Text

from bookinfo_mesh.commands.arguments import add_project_argument
from bookinfo_mesh.diff import diff_rendered
from bookinfo_mesh.errors import EXIT_OK, ToolError
from bookinfo_mesh.outputs import check_output_file, write_file
from bookinfo_mesh.rendering import commit_of, render_at, render_stack
from bookinfo_mesh.report import diff_markdown
from bookinfo_mesh.stack_files import stack_of_file, stacks_in
from stacks.project import ROOT

MARKER = "<!-- bookinfo-mesh:offline-diff -->"


def touched_stacks(changed_files: Iterable[str], stacks: Iterable[str]) -> list[str]:
    """The stacks a change can alter: a stack file touches its stack, anything else all."""
    known = sorted(stacks)
    touched: set[str] = set()
    for name in changed_files:
        stack = stack_of_file(name)
        if stack is None:
            return known
        if stack in known:
            touched.add(stack)
    return sorted(touched)


def changed_files(base: str, root: Path) -> list[str]:
    """Paths that differ between commit `base` and the working tree's HEAD."""
    result = subprocess.run(
        ["git", "-C", str(root), "diff", "--name-only", "-z", base, "HEAD", "--"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ToolError(f"git diff {base}: {result.stderr.strip()}")
    return [name for name in result.stdout.split("\0") if name]


def comment_text(base: str, root: Path | None = None) -> str:
    """MARKER, then the Markdown diff of each touched stack from `base` to the working tree."""
    commit = commit_of(base, "--base", root)
    stacks = touched_stacks(changed_files(commit, root or ROOT), stacks_in(root))
    sections = [MARKER, "## Offline preview", ""]
    if not stacks:
        sections.append("This change touches no stack.\n")
    for stack in stacks:
        before = render_at(commit, stack, {}, root)
        diff = diff_rendered(before, render_stack(stack, {}, validate=False, root=root))
        sections.append(diff_markdown(diff))
    return "\n".join(sections)


def run(args: argparse.Namespace, console: Console) -> int:
    out = Path(args.out)
    check_output_file(out, "--out")  # a bad place fails before the slow part
    write_file(out, comment_text(args.base, args.project), "--out")
    console.print(Text(f"wrote {out}"))
    return EXIT_OK


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "pr-comment", help="the offline diff of every stack a change touches, as one comment"
    )
    add_project_argument(parser)
    parser.add_argument("--base", required=True, help="git ref the pull request merges into")
    parser.add_argument("--out", required=True, help="Markdown file to write")
    parser.set_defaults(run=run)
