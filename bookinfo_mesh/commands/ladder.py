"""`bookinfo-mesh ladder`: walk a canary up its steps, each one committed, applied and gated,
and roll it back when a gate fails (bookinfo_mesh/ladder.py says how).

Exit codes: 0 promoted (every gate passed), 1 a gate failed and the rollback was applied,
3 held (a gate stayed inconclusive through its retries; nothing further promoted), 2 bad
input or a step that could not be taken (a deploy failed, Prometheus went away), 130
interrupted with Ctrl-C (the summary has the steps so far).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
from pathlib import Path

from rich.console import Console
from rich.text import Text

from bookinfo_mesh.commands.arguments import add_stack_arguments, seconds, whole_number
from bookinfo_mesh.errors import ToolError
from bookinfo_mesh.gate import add_target_arguments, stack_thresholds
from bookinfo_mesh.ladder import (
    MAX_RETRIES,
    LadderError,
    LadderPlan,
    Outcome,
    StackRig,
    parse_steps,
    run_deploy,
    summary_markdown,
    walk,
)
from bookinfo_mesh.metrics import Target, window_seconds
from bookinfo_mesh.outputs import check_output_file, write_file
from bookinfo_mesh.prometheus import check_url
from bookinfo_mesh.stack_files import parse_overrides
from stacks.project import ROOT

DEFAULT_STEPS = "10,25,50,100"
DEFAULT_WAIT_S = 600.0
DEFAULT_RETRIES = 3
DEFAULT_RETRY_WAIT_S = 120.0


def run(args: argparse.Namespace, console: Console) -> int:
    steps = parse_steps(args.steps)
    root = ROOT
    thresholds = stack_thresholds(args.stack, parse_overrides(args.set), root)
    target = Target(args.service, args.namespace, args.baseline, args.canary, args.window)
    check_url(args.prometheus)
    window = window_seconds(target.window) or 0
    if args.wait < window:
        raise LadderError(
            f"--wait {args.wait:g} s is shorter than --window {target.window}: the gate would "
            "count traffic from before the step"
        )
    try:
        deploy = shlex.split(args.apply)
    except ValueError as error:  # an unclosed quote, a trailing backslash
        raise LadderError(f"--apply {args.apply[:60]!r}: {error}") from None
    if not deploy or shutil.which(deploy[0]) is None:
        raise LadderError(f"--apply {args.apply[:60]!r}: no such command on PATH")
    if args.summary is not None:
        check_output_file(args.summary, "--summary")

    def say(line: str) -> None:
        console.print(Text(line), soft_wrap=True)

    rig = StackRig(
        args.stack,
        target,
        args.prometheus,
        thresholds,
        deploy=lambda: run_deploy(deploy, root),
        push=args.push,
        root=root,
        say=say,
    )
    plan = LadderPlan(steps, args.wait, args.retries, args.retry_wait)
    result = walk(plan, rig, say)
    if args.summary is not None:
        write_file(args.summary, summary_markdown(args.stack, target, result), "--summary")
    if result.outcome is Outcome.STOPPED:
        raise ToolError(f"the ladder stopped: {result.error}")
    where = result.steps[-1].percent if result.steps else 0
    console.print(Text(f"{result.outcome.value.upper()} at {where} %", style="bold"))
    return result.exit_code


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ladder", help="walk a canary up its steps, each gated on its metrics; roll back on a fail"
    )
    add_stack_arguments(parser, "use this gate threshold instead of the stack's (canary* keys)")
    add_target_arguments(parser)
    parser.add_argument(
        "--steps",
        default=DEFAULT_STEPS,
        help=f"the canary's percentages, rising (default {DEFAULT_STEPS}; 100 is the promotion)",
    )
    parser.add_argument(
        "--apply",
        required=True,
        metavar="COMMAND",
        help="what applies a step, run in the project: e.g. 'pulumi up --yes --stack dev'",
    )
    parser.add_argument(
        "--wait",
        type=seconds,
        default=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help=f"after each apply, before the gate; at least --window (default {DEFAULT_WAIT_S:g})",
    )
    parser.add_argument(
        "--retries",
        type=whole_number(0, MAX_RETRIES),
        default=DEFAULT_RETRIES,
        help=f"asks again of an inconclusive gate before holding (default {DEFAULT_RETRIES})",
    )
    parser.add_argument(
        "--retry-wait",
        type=seconds,
        default=DEFAULT_RETRY_WAIT_S,
        metavar="SECONDS",
        help=f"between those asks (default {DEFAULT_RETRY_WAIT_S:g})",
    )
    parser.add_argument("--push", action="store_true", help="git push each commit (CI)")
    parser.add_argument(
        "--summary",
        type=Path,
        metavar="PATH",
        help="write the run as Markdown there (CI: $GITHUB_STEP_SUMMARY)",
    )
    parser.set_defaults(run=run)
