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
from rich.text import Text

from bookinfo_mesh import doctor, pr_comment, promote, verify
from bookinfo_mesh.diff import diff_rendered
from bookinfo_mesh.engine import run_program
from bookinfo_mesh.outputs import OutputError, check_output_dir, write_file
from bookinfo_mesh.render import RENDER_FILES, Rendered, render_run
from bookinfo_mesh.report import diff_markdown, print_diff, print_render
from bookinfo_mesh.schemas import validate_manifests
from bookinfo_mesh.stack_files import StackFileError, parse_overrides
from stacks.config import ConfigError

EXIT_BAD_CONFIG = 2
EXIT_INVALID_MANIFESTS = 1


class CommandError(Exception):
    """A failure to report to the user as one message and an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
        violations = validate_manifests(rendered.manifests, version, rendered.istio_crds_version)
        if violations:
            lines = "\n".join(f"  - {v}" for v in violations)
            raise CommandError(
                f"{len(violations)} schema violation(s); nothing written:\n{lines}",
                EXIT_INVALID_MANIFESTS,
            )
    return rendered


def cmd_render(args: argparse.Namespace, console: Console) -> None:
    out = Path(args.out or f"out/{args.stack}")
    check_output_dir(out, RENDER_FILES)  # fail before the slow part, and again when writing
    rendered = _render(args.stack, parse_overrides(args.set), validate=not args.no_validate)
    rendered.write(out)
    if args.format == "json":
        print(json.dumps(rendered.summary, indent=2, sort_keys=True))
    else:
        print_render(rendered, console, str(out))


def _commit_of(ref: str, option: str) -> str:
    """The commit a git ref names; CommandError for an option-like or unknown ref."""
    if not ref or ref.startswith("-"):
        # git would read it as an option: --output=FILE makes `git archive` truncate FILE.
        raise CommandError(f"{option} {ref!r} is not a git ref (it starts with '-')", 2)
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise CommandError(f"{option} {ref!r} names no commit in this repository", 2)
    return result.stdout.strip()


def _render_ref(commit: str, stack: str, overrides: dict[str, str]) -> Rendered:
    """Render `stack` as it is at `commit` (a full hash), in a scratch copy of that commit."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "--"], capture_output=True, check=False
        )
        if archive.returncode != 0:
            raise CommandError(f"git archive {commit}: {archive.stderr.decode().strip()}", 2)
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
                f"render at {commit[:12]} failed:\n{result.stderr.strip()}", result.returncode
            )
        return Rendered.read(Path(tmp) / "out")


def cmd_diff(args: argparse.Namespace, console: Console) -> None:
    overrides = parse_overrides(args.set)
    if args.head is not None and args.base is None:
        raise CommandError("--head needs --base: it names the commit to compare to", 2)
    if args.markdown and args.markdown != "-":
        markdown = Path(args.markdown)
        if markdown.is_dir() or not markdown.parent.is_dir():
            write_file(markdown, "", "--markdown")  # raises the OutputError that says why
    if args.base is not None:
        base = _commit_of(args.base, "--base")
        head = _commit_of(args.head, "--head") if args.head is not None else None
        before = _render_ref(base, args.stack, overrides)
        after = (
            _render_ref(head, args.stack, overrides)
            if head
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
            write_file(Path(args.markdown), text, "--markdown")
            console.print(Text(f"wrote {args.markdown}"))
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
    _stack_arguments(
        diff,
        "the config change to preview, against the stack's current config; with --base, "
        "applied to both sides (the stack at --base and at --head or the working tree)",
    )
    diff.add_argument("--base", help="git ref to compare from (instead of current config)")
    diff.add_argument("--head", help="git ref to compare to (default: the working tree)")
    diff.add_argument("--markdown", metavar="FILE", help="also write Markdown ('-': stdout)")

    doctor.add_parser(commands)
    verify.add_parser(commands)
    promote.add_parser(commands)
    pr_comment.add_parser(commands)

    args = parser.parse_args(argv)
    console = Console(width=120)
    try:
        builtin = {"render": cmd_render, "diff": cmd_diff}
        handler = getattr(args, "func", None) or builtin[args.command]
        code = handler(args, console)
    except (CommandError, StackFileError, OutputError) as error:
        # Printed as text: a value the user typed ("[/]", "[bold]x") must show as typed.
        message = Text("error: ", style="red") + Text(str(error))
        Console(stderr=True, width=120).print(message, highlight=False, soft_wrap=True)
        return getattr(error, "exit_code", EXIT_BAD_CONFIG)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
