"""`bookinfo-mesh`: the operator's commands (render, diff), offline."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bookinfo_mesh import pr_comment, promote
from bookinfo_mesh.diff import diff_rendered
from bookinfo_mesh.engine import run_program
from bookinfo_mesh.render import Rendered, render_run
from bookinfo_mesh.report import diff_markdown, print_diff, print_render
from bookinfo_mesh.schemas import validate_manifests
from stacks.config import PROJECT, ConfigError

EXIT_BAD_CONFIG = 2
EXIT_INVALID_MANIFESTS = 1


class CommandError(Exception):
    """A failure to report to the user as one message and an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--set takes key=value, got {pair!r}", EXIT_BAD_CONFIG)
        result[key.removeprefix(f"{PROJECT}:")] = value
    return result


def _render(stack: str, overrides: dict[str, str], validate: bool) -> Rendered:
    """Run the program under mocks and render it; CommandError on bad config or schemas."""
    run = run_program(stack, overrides)
    if isinstance(run.error, ConfigError):
        raise CommandError(str(run.error), EXIT_BAD_CONFIG)
    if run.error is not None:
        raise run.error
    rendered = render_run(run)
    if validate:
        version = rendered.summary["config"]["kubernetesVersion"]
        violations = validate_manifests(rendered.manifests, version)
        if violations:
            lines = "\n".join(f"  - {v}" for v in violations)
            raise CommandError(
                f"{len(violations)} schema violation(s); nothing written:\n{lines}",
                EXIT_INVALID_MANIFESTS,
            )
    return rendered


def cmd_render(args: argparse.Namespace, console: Console) -> None:
    rendered = _render(args.stack, _overrides(args.set), validate=not args.no_validate)
    out = Path(args.out or f"out/{args.stack}")
    rendered.write(out)
    if args.format == "json":
        print(json.dumps(rendered.summary, indent=2, sort_keys=True))
    else:
        print_render(rendered, console, str(out))


def _render_ref(ref: str, stack: str, overrides: dict[str, str]) -> Rendered:
    """Render `stack` as it is at git `ref`, in a scratch copy of that commit."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", ref], capture_output=True, check=False)
        if archive.returncode != 0:
            raise CommandError(f"git archive {ref}: {archive.stderr.decode().strip()}", 1)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        sets = [f"--set={k}={v}" for k, v in overrides.items()]
        # Each commit renders with its own tools; commits before the operator tools had
        # their own package ran them as `python -m stacks`.
        tools = "bookinfo_mesh" if (Path(tmp) / "bookinfo_mesh").is_dir() else "stacks"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                tools,
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
            raise CommandError(
                f"render at {ref} failed:\n{result.stderr.strip()}", result.returncode
            )
        return Rendered.read(Path(tmp) / "out")


def cmd_diff(args: argparse.Namespace, console: Console) -> None:
    overrides = _overrides(args.set)
    if args.base:
        before = _render_ref(args.base, args.stack, overrides)
        after = (
            _render_ref(args.head, args.stack, overrides)
            if args.head
            else _render(args.stack, overrides, validate=False)
        )
    else:
        before = _render(args.stack, {}, validate=False)
        after = _render(args.stack, overrides, validate=True)
    diff = diff_rendered(before, after)
    if args.markdown:
        text = diff_markdown(diff)
        if args.markdown == "-":
            print(text, end="")
        else:
            Path(args.markdown).write_text(text)
            console.print(f"wrote {args.markdown}")
    if args.markdown != "-":
        print_diff(diff, console)


def _stack_arguments(parser: argparse.ArgumentParser, set_help: str) -> None:
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bookinfo-mesh", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    render = commands.add_parser("render", help="what `pulumi up` would create, as files")
    _stack_arguments(render, "override a config key, like `pulumi config set`")
    render.add_argument("--out", help="output folder (default out/<stack>)")
    render.add_argument("--format", choices=("text", "json"), default="text")
    render.add_argument(
        "--no-validate",
        action="store_true",
        help="skip schema validation (used when rendering old commits)",
    )

    diff = commands.add_parser("diff", help="what a config change or a commit would change")
    _stack_arguments(diff, "the config change to preview, against the stack's current config")
    diff.add_argument("--base", help="git ref to compare from (instead of current config)")
    diff.add_argument("--head", help="git ref to compare to (default: the working tree)")
    diff.add_argument("--markdown", metavar="FILE", help="also write Markdown ('-': stdout)")

    promote.add_parser(commands)
    pr_comment.add_parser(commands)

    args = parser.parse_args(argv)
    console = Console(width=120)
    try:
        handler = (
            getattr(args, "func", None) or {"render": cmd_render, "diff": cmd_diff}[args.command]
        )
        handler(args, console)
    except CommandError as error:
        # Config values reach the message: escape them; soft_wrap keeps a line one line.
        Console(stderr=True, width=120, soft_wrap=True).print(
            f"[red]error:[/] {escape(str(error))}", markup=True, highlight=False
        )
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
