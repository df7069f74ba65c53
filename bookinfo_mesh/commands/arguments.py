"""The arguments several commands take alike."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from bookinfo_mesh.pulumi_config import PulumiConfigError, read_project
from bookinfo_mesh.stack_files import StackFileError, read_stack_text
from stacks.project import ROOT


def add_stack_arguments(parser: argparse.ArgumentParser, set_help: str) -> None:
    """--stack and --set, as every command that reads a stack's config takes them."""
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)


def add_project_argument(parser: argparse.ArgumentParser) -> None:
    """--project, for the commands that work on any Pulumi program that uses TrafficPolicy."""
    parser.add_argument(
        "--project",
        type=project_folder,
        default=None,
        metavar="DIR",
        help="the Pulumi project (Pulumi.yaml and __main__.py) to work on (default: this one)",
    )


def project_folder(text: str) -> Path | None:
    """An argparse type: a folder holding a Pulumi project with a Python __main__.py; None
    for this project's own."""
    folder = Path(text)
    missing = [n for n in ("Pulumi.yaml", "__main__.py") if not (folder / n).is_file()]
    if missing:
        raise argparse.ArgumentTypeError(
            f"{text[:80]!r} is not a Pulumi Python project: no {' or '.join(missing)} there"
        )
    try:
        read_project(read_stack_text(folder / "Pulumi.yaml"))
    except (PulumiConfigError, StackFileError) as error:
        raise argparse.ArgumentTypeError(f"{text[:80]}: {error}") from None
    return None if folder.resolve() == ROOT.resolve() else folder.resolve()


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number of ASCII digits from `low` to `high`."""

    def parse(text: str) -> int:
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit() and len(digits) <= len(str(high))):
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, got {text[:20]!r}")
        number = int(digits)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, got {number}")
        return number

    return parse


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text[:20]!r}")
    return value
