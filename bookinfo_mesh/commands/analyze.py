"""`bookinfo-mesh analyze`: judge a canary against its baseline on the mesh's own metrics.

Reads Prometheus's HTTP API for one service's two versions over a window: the success rate
(non-5xx share of istio_requests_total) and the p99 latency (from
istio_request_duration_milliseconds_bucket), and tests the canary with exact binomial tests
(bookinfo_mesh/metrics.py says how). Thresholds come from the stack's config.

Exit codes: 0 pass, 1 fail (named), 3 inconclusive (too few requests, or evidence neither
way: hold, promote nothing), 2 bad input or Prometheus unreachable or erroring (one line),
130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console

from bookinfo_mesh.commands.arguments import add_stack_arguments
from bookinfo_mesh.gate import (
    add_target_arguments,
    check_json_output,
    parse_instant,
    print_gate_report,
    stack_thresholds,
    write_json,
)
from bookinfo_mesh.metrics import Target
from bookinfo_mesh.prometheus import check_url, run_gate
from bookinfo_mesh.stack_files import parse_overrides


def run(args: argparse.Namespace, console: Console) -> int:
    thresholds = stack_thresholds(args.stack, parse_overrides(args.set))
    target = Target(args.service, args.namespace, args.baseline, args.canary, args.window)
    check_url(args.prometheus)
    check_json_output(args.json)
    at = time.time() if args.at is None else parse_instant(args.at)
    report = run_gate(args.prometheus, target, thresholds, at)
    if args.json is not None:
        text = write_json(report, args.json)
        if args.json == "-":
            print(text, end="")
            return report.exit_code
    print_gate_report(report, console)
    return report.exit_code


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "analyze", help="judge a canary against its baseline on Prometheus's Istio metrics"
    )
    add_stack_arguments(parser, "use this gate threshold instead of the stack's (canary* keys)")
    add_target_arguments(parser)
    parser.add_argument(
        "--at",
        metavar="TIME",
        help="judge the window ending then: Unix seconds or ISO 8601 with a zone (default now)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="write the report as JSON to PATH ('-': print only it)"
    )
    parser.set_defaults(run=run)
