"""The arguments several commands take alike."""

from __future__ import annotations

import argparse


def add_stack_arguments(parser: argparse.ArgumentParser, set_help: str) -> None:
    """--stack and --set, as every command that reads a stack's config takes them."""
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
