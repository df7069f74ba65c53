"""`bookinfo-mesh diff`: what a config change or a commit would change, the PR's preview."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.text import Text

from bookinfo_mesh.commands.arguments import add_project_argument, add_stack_arguments
from bookinfo_mesh.diff import diff_rendered
from bookinfo_mesh.errors import EXIT_OK, ToolError
from bookinfo_mesh.outputs import check_output_file, write_file
from bookinfo_mesh.rendering import commit_of, render_at, render_stack
from bookinfo_mesh.report import diff_markdown, print_diff
from bookinfo_mesh.stack_files import check_stack_name, parse_overrides

STDOUT = "-"


def run(args: argparse.Namespace, console: Console) -> int:
    check_stack_name(args.stack)
    root = args.project
    overrides = parse_overrides(args.set, root)
    if args.head is not None and args.base is None:
        raise ToolError("--head needs --base: it names the commit to compare to")
    markdown = None if args.markdown in (None, STDOUT) else Path(args.markdown)
    if args.markdown == "":
        raise ToolError(f"--markdown needs a file name, or {STDOUT!r} for stdout")
    if markdown is not None:
        check_output_file(markdown, "--markdown")  # before the slow part
    if args.base is not None:
        base = commit_of(args.base, "--base", root)
        head = commit_of(args.head, "--head", root) if args.head is not None else None
        before = render_at(base, args.stack, overrides, root)
        after = (
            render_at(head, args.stack, overrides, root)
            if head
            else render_stack(args.stack, overrides, validate=False, root=root)
        )
    else:
        before = render_stack(args.stack, {}, validate=False, root=root)
        after = render_stack(args.stack, overrides, validate=True, root=root)
    diff = diff_rendered(before, after)
    if args.markdown == STDOUT:
        print(diff_markdown(diff), end="")
        return EXIT_OK
    if markdown is not None:
        write_file(markdown, diff_markdown(diff), "--markdown")
        console.print(Text(f"wrote {markdown}"))
    print_diff(diff, console)
    return EXIT_OK


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("diff", help="what a config change or a commit would change")
    add_stack_arguments(
        parser,
        "the config change to preview, against the stack's current config; with --base, "
        "applied to both sides (the stack at --base and at --head or the working tree)",
    )
    add_project_argument(parser)
    parser.add_argument("--base", help="git ref to compare from (instead of current config)")
    parser.add_argument("--head", help="git ref to compare to (default: the working tree)")
    parser.add_argument(
        "--markdown", metavar="FILE", help=f"also write Markdown ({STDOUT!r}: stdout)"
    )
    parser.set_defaults(run=run)
