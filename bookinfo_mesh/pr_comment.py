"""`bookinfo-mesh pr-comment`: the pull request's offline diff, one section per touched stack.

The comment starts with MARKER, so the job that posts it can find and update its own earlier
comment instead of adding another.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console

from stacks.project import ROOT

MARKER = "<!-- bookinfo-mesh:offline-diff -->"
_STACK_FILE = re.compile(r"Pulumi\.([A-Za-z0-9][A-Za-z0-9_.-]*)\.yaml")


def stacks_in(root: Path) -> list[str]:
    """The stacks that have a Pulumi.<stack>.yaml, sorted."""
    return sorted(m[1] for p in root.iterdir() if (m := _STACK_FILE.fullmatch(p.name)))


def touched_stacks(changed_files: Iterable[str], stacks: Iterable[str]) -> list[str]:
    """The stacks a change can alter: a stack file touches its stack, anything else all."""
    known = sorted(stacks)
    touched: set[str] = set()
    for name in changed_files:
        match = _STACK_FILE.fullmatch(name)
        if not match:
            return known
        if match[1] in known:
            touched.add(match[1])
    return sorted(touched)


def changed_files(base: str, root: Path) -> list[str]:
    """Paths that differ between `base` and the working tree's HEAD."""
    if base.startswith("-"):
        raise ValueError(f"--base {base!r} is not a git ref")
    result = subprocess.run(
        ["git", "-C", str(root), "diff", "--name-only", "-z", base, "HEAD", "--"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ValueError(f"git diff {base}: {result.stderr.strip()}")
    return [name for name in result.stdout.split("\0") if name]


def comment_text(base: str, root: Path) -> str:
    """MARKER, then the Markdown diff of each touched stack from `base` to the working tree."""
    from bookinfo_mesh.cli import _render, _render_ref  # cli imports this module
    from bookinfo_mesh.diff import diff_rendered
    from bookinfo_mesh.report import diff_markdown

    stacks = touched_stacks(changed_files(base, root), stacks_in(root))
    sections = [MARKER, "## Offline preview", ""]
    if not stacks:
        sections.append("This change touches no stack.\n")
    for stack in stacks:
        diff = diff_rendered(_render_ref(base, stack, {}), _render(stack, {}, validate=False))
        sections.append(diff_markdown(diff))
    return "\n".join(sections)


def cmd_pr_comment(args: argparse.Namespace, console: Console) -> None:
    from bookinfo_mesh.cli import CommandError

    try:
        text = comment_text(args.base, ROOT)
    except ValueError as error:
        raise CommandError(str(error), 2) from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(out)
    console.print(f"wrote {out}", markup=False)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "pr-comment", help="the offline diff of every stack a change touches, as one comment"
    )
    parser.add_argument("--base", required=True, help="git ref the pull request merges into")
    parser.add_argument("--out", required=True, help="Markdown file to write")
    parser.set_defaults(func=cmd_pr_comment)
