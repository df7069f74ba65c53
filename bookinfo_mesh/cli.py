"""`bookinfo-mesh`: the operator's commands. This module only dispatches to them."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from rich.console import Console
from rich.text import Text

from bookinfo_mesh.commands import (
    analyze,
    diff,
    doctor,
    ladder,
    pr_comment,
    promote,
    render,
    verify,
)
from bookinfo_mesh.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, ToolError

COMMANDS = (render, diff, promote, verify, analyze, ladder, doctor, pr_comment)
WIDTH = 120


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (with where to look), never a usage block."""

    def error(self, message: str) -> NoReturn:
        raise ToolError(f"{message} (see `{self.prog} --help`)", EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bookinfo-mesh",
        description="Operator tools for the bookinfo-mesh stacks: one command each to look at a "
        "change before it lands, make it, and check what it did (`bookinfo-mesh COMMAND -h`).",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _say(message: str) -> None:
    """An error on stderr as typed: a value like "[bold]x" must not read as markup."""
    text = Text("error: ", style="red") + Text(message)
    Console(stderr=True, width=WIDTH).print(text, highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C interrupts even where a parent started us with SIGINT ignored (nohup, CI).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        args = build_parser().parse_args(argv)
        return args.run(args, Console(width=WIDTH))
    except ToolError as error:
        _say(str(error))
        return error.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
