"""The canary ladder: the canary's share stepped up, each step gated on the mesh's metrics.

Each step is a commit of the stack file (promote's own planning, so `pulumi up` would accept
it), applied, given time to gather traffic, then judged by the gate:
- pass: on to the next step;
- fail: the stack file goes back, byte for byte, to what it was when the ladder started (all
  traffic where it was before the canary), is committed and applied, and the ladder stops;
- inconclusive: the gate is asked again after a wait, at most `retries` times; then the
  ladder stops where it is, promoting nothing further.
A step of 100 leaves the baseline no traffic to be compared with: it is the promotion itself,
applied after the last gate passed, with no gate of its own.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from bookinfo_mesh.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ToolError,
)
from bookinfo_mesh.git import git
from bookinfo_mesh.metrics import GateReport, Target, Verdict, VersionStats
from bookinfo_mesh.outputs import write_file
from bookinfo_mesh.prometheus import run_gate
from bookinfo_mesh.promotion import Promotion, plan_promotion, plan_service_promotion
from bookinfo_mesh.stack_files import existing_stack_file, read_stack_text, stack_config_of_text
from model.canary_gate import GateThresholds
from model.routing import CANARY_SERVICE
from stacks.project import ROOT

MAX_RETRIES = 100


class LadderError(ToolError):
    """Bad steps, or a step that could not be taken: one line, exit 2."""


class Outcome(StrEnum):
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled back"
    HELD = "held"
    STOPPED = "stopped"  # a step could not be taken: a deploy failed, Prometheus went away
    INTERRUPTED = "interrupted"  # Ctrl-C: the stack file is as the last step left it


EXIT_CODES = {
    Outcome.PROMOTED: EXIT_OK,
    Outcome.ROLLED_BACK: EXIT_FAILED,
    Outcome.HELD: EXIT_INCONCLUSIVE,
    Outcome.STOPPED: EXIT_BAD_INPUT,
    Outcome.INTERRUPTED: EXIT_INTERRUPTED,
}


def parse_steps(text: str) -> tuple[int, ...]:
    """`10,25,50,100` -> (10, 25, 50, 100): canary percentages, rising, 1 to 100."""
    steps = []
    for part in text.split(","):
        digits = part.strip()
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 3):
            raise LadderError(
                f"--steps takes percentages like 10,25,50,100, got {part.strip()[:20]!r}"
            )
        steps.append(int(digits))
    if any(not 1 <= s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise LadderError(f"--steps must rise, each 1 to 100, once: got {text[:40]!r}")
    return tuple(steps)


@dataclass(frozen=True)
class LadderPlan:
    steps: tuple[int, ...]
    wait_s: float  # after each apply, before the gate: at least the gate's window
    retries: int  # further asks of an inconclusive gate
    retry_wait_s: float


@dataclass
class Step:
    """One step: its share, and the gate's answers (none for the promotion at 100)."""

    percent: int
    reports: list[GateReport] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict | None:
        return self.reports[-1].verdict if self.reports else None


@dataclass
class LadderResult:
    outcome: Outcome
    steps: list[Step]
    error: str | None = None  # why it stopped

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


class Rig(Protocol):
    """What the ladder acts through: the stack file, the deploy, the clock and the gate."""

    def set_canary(self, percent: int) -> None: ...
    def roll_back(self) -> None: ...
    def apply(self) -> None: ...
    def sleep(self, seconds: float) -> None: ...
    def gate(self) -> GateReport: ...


def walk(plan: LadderPlan, rig: Rig, say: Callable[[str], None]) -> LadderResult:
    """Climb the ladder: each step set, applied, waited for and gated. A step that cannot be
    taken (ToolError: a deploy failed, Prometheus went away) stops it where it is, and so
    does Ctrl-C; either way the steps so far are in the result."""
    steps: list[Step] = []
    try:
        return _climb(plan, rig, say, steps)
    except ToolError as error:
        say(f"stopped: {error}")
        return LadderResult(Outcome.STOPPED, steps, str(error))
    except KeyboardInterrupt:
        say("interrupted: the stack file is as the last step left it")
        return LadderResult(Outcome.INTERRUPTED, steps, "interrupted (Ctrl-C)")


def _climb(
    plan: LadderPlan, rig: Rig, say: Callable[[str], None], steps: list[Step]
) -> LadderResult:
    for percent in plan.steps:
        step = Step(percent)
        steps.append(step)
        rig.set_canary(percent)
        rig.apply()
        if percent == 100:
            say("100 %: promoted, with no baseline traffic left to compare with")
            return LadderResult(Outcome.PROMOTED, steps)
        for attempt in range(plan.retries + 1):
            rig.sleep(plan.wait_s if attempt == 0 else plan.retry_wait_s)
            report = rig.gate()
            step.reports.append(report)
            say(f"{percent} %: gate {report.verdict.value}: " + "; ".join(report.reasons))
            if report.verdict is not Verdict.INCONCLUSIVE:
                break
        if step.verdict is Verdict.FAIL:
            rig.roll_back()
            rig.apply()
            say(f"{percent} %: rolled back to the stack file as the ladder found it")
            return LadderResult(Outcome.ROLLED_BACK, steps)
        if step.verdict is Verdict.INCONCLUSIVE:
            say(f"{percent} %: still inconclusive after {plan.retries} retries: held here")
            return LadderResult(Outcome.HELD, steps)
    return LadderResult(Outcome.PROMOTED, steps)


# --- the real rig: a stack file in git, a deploy command, Prometheus -------------------------


def weights_at(target: Target, percent: int) -> dict[str, int]:
    return {target.baseline: 100 - percent, target.canary: percent}


def plan_step(stack: str, service: str, weights: dict[str, int], root: Path) -> Promotion:
    """The stack file with everyone's requests to `service` sent `weights`, as `promote`
    writes it: Bookinfo's canary service by `splitWeights` (mode split50), unless the
    `routes` key rules it; then, and for any other service, its catch-all rule in `routes`."""
    path = existing_stack_file(stack, root)
    routes = stack_config_of_text(read_stack_text(path), path.name, root).routes
    if service == CANARY_SERVICE and service not in routes:
        return plan_promotion(stack, None, weights, root)
    return plan_service_promotion(stack, service, None, weights, root)


@dataclass
class StackRig:
    """Steps as commits of Pulumi.<stack>.yaml (pushed if `push`), `deploy` to apply them,
    and the gate against Prometheus at `prometheus`."""

    stack: str
    target: Target
    prometheus: str
    thresholds: GateThresholds
    deploy: Callable[[], None]
    push: bool = False
    root: Path = field(default_factory=lambda: ROOT)
    say: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.path = existing_stack_file(self.stack, self.root)
        self.start_text = read_stack_text(self.path)

    def _git(self, *argv: str) -> str:
        return git(self.root, *argv, error=LadderError).strip()

    def _commit(self, text: str, message: str) -> None:
        if text == read_stack_text(self.path):
            self.say(f"{self.path.name} already says this; nothing to commit")
            return
        write_file(self.path, text, "--stack")
        self._git("commit", "-q", "-m", message, "--", self.path.name)
        if self.push:
            self._git("push", "-q", "origin", "HEAD")
        self.say(f"committed {self._git('rev-parse', '--short', 'HEAD')}: {message}")

    def set_canary(self, percent: int) -> None:
        weights = weights_at(self.target, percent)
        promotion = plan_step(self.stack, self.target.service, weights, self.root)
        split = ", ".join(f"{v} {w} %" for v, w in weights.items())
        self._commit(
            promotion.new_text, f"{self.stack}: {self.target.service} {split} (canary ladder)"
        )

    def roll_back(self) -> None:
        message = (
            f"{self.stack}: {self.target.service} {self.target.canary} rolled back (canary ladder)"
        )
        self._commit(self.start_text, message)

    def apply(self) -> None:
        self.deploy()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def gate(self) -> GateReport:
        return run_gate(self.prometheus, self.target, self.thresholds, time.time())


def run_deploy(argv: list[str], root: Path) -> None:
    """The deploy command (`pulumi up --yes --stack dev`, say) in the project; exit 2 if it
    fails, since the stack's state is then for a person to look at."""
    try:
        done = subprocess.run(argv, cwd=root, check=False)
    except OSError as error:
        raise LadderError(f"--apply {argv[0]}: {error.strerror or error}") from None
    if done.returncode != 0:
        raise LadderError(
            f"--apply {' '.join(argv)[:80]} exited {done.returncode}; the ladder stopped"
        )


# --- the run's summary, as Markdown -----------------------------------------------------------

# What can start markup inside a line; every line here starts with "- ", "| " or "## ", so
# list, heading and numbering marks at a line's start cannot arise.
_MARKDOWN_SPECIAL = set("\\`*_[]<>|~")


def escape_markdown(text: str) -> str:
    """`text` shown as typed in Markdown: every character with a meaning there escaped."""
    return "".join(f"\\{c}" if c in _MARKDOWN_SPECIAL else c for c in text)


def _version_cell(stats: VersionStats) -> str:
    rate = "-" if stats.error_rate is None else f"{1 - stats.error_rate:.2%}"
    p99 = "-" if stats.p99_ms is None else f"{stats.p99_ms:.3g} ms"
    return f"{escape_markdown(stats.version)}: {stats.requests} requests, {rate} ok, p99 {p99}"


def summary_markdown(stack: str, target: Target, result: LadderResult) -> str:
    """The run for $GITHUB_STEP_SUMMARY: each step, the gate's numbers, the outcome."""
    head = (
        f"## Canary ladder: {escape_markdown(stack)}, {escape_markdown(target.service)} "
        f"{escape_markdown(target.canary)} against {escape_markdown(target.baseline)}: "
        f"**{result.outcome.value}**"
    )
    lines = [head, "", "| step | gate | asked | canary | baseline |", "|---|---|---|---|---|"]
    for step in result.steps:
        if not step.reports:
            lines.append(f"| {step.percent} % | (promotion) | 0 | | |")
            continue
        report = step.reports[-1]
        canary, baseline = _version_cell(report.canary), _version_cell(report.baseline)
        asked = len(step.reports)
        lines.append(f"| {step.percent} % | {report.verdict} | {asked} | {canary} | {baseline} |")
    if result.error:
        lines += ["", f"Stopped: {escape_markdown(result.error)}"]
    last = next((s.reports[-1] for s in reversed(result.steps) if s.reports), None)
    if last is not None:
        lines += ["", f"Last gate ({escape_markdown(last.window)} to the query):", ""]
        lines += [f"- {escape_markdown(reason)}" for reason in last.reasons]
    return "\n".join(lines) + "\n"
