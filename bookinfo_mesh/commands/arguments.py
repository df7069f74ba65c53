"""The arguments several commands take alike."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def add_stack_arguments(parser: argparse.ArgumentParser, set_help: str) -> None:
    """--stack and --set, as every command that reads a stack's config takes them."""
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)


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
