"""`bookinfo-mesh render`: what `pulumi up` would create, as files and as a summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from bookinfo_mesh.commands.arguments import add_project_argument, add_stack_arguments
from bookinfo_mesh.errors import EXIT_OK, ToolError
from bookinfo_mesh.outputs import check_output_dir
from bookinfo_mesh.render import RENDER_FILES
from bookinfo_mesh.rendering import render_stack
from bookinfo_mesh.report import print_render
from bookinfo_mesh.stack_files import check_stack_name, parse_overrides


def run(args: argparse.Namespace, console: Console) -> int:
    check_stack_name(args.stack)
    if args.out == "":
        raise ToolError("--out needs a folder name")
    out = Path(args.out or f"out/{args.stack}")
    check_output_dir(out, RENDER_FILES)  # fail before the slow part, and again when writing
    rendered = render_stack(
        args.stack,
        parse_overrides(args.set, args.project),
        validate=not args.no_validate,
        root=args.project,
    )
    rendered.write(out)
    if args.format == "json":
        print(rendered.files()["summary.json"], end="")
    else:
        print_render(rendered, console, str(out))
    return EXIT_OK


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("render", help="what `pulumi up` would create, as files")
    add_stack_arguments(parser, "override a config key, like `pulumi config set`")
    add_project_argument(parser)
    parser.add_argument("--out", help="output folder (default out/<stack>)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="skip schema validation (used when rendering old commits)",
    )
    parser.set_defaults(run=run)
