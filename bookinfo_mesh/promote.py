"""`bookinfo-mesh promote`: move a stack one step by editing Pulumi.<stack>.yaml.

A traffic step (--to, --weights) changes only the `mode` and `splitWeights` lines; an Istio
step (--istio) only istioVersion, istioCanaryVersion and istioCanaryStage. Every other byte of
the file (comments, order, quoting) stays. `splitWeights` lives in the file only while the
stack is in split50: promote writes it with --weights and removes it when the stack leaves
split50, so going there and back gives the same bytes; likewise the canary keys live there
only while a canary runs. `previous` restores a step's keys as the last commit that had other
values left them, read from the git history of the stack file.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bookinfo_mesh.outputs import write_file
from bookinfo_mesh.render import cohort_routes
from bookinfo_mesh.stack_files import load_engine_config, stack_file
from model.control_plane import CanaryStage, ControlPlane, next_step
from model.istio_releases import parse_release
from model.outcomes import predict_page
from model.routing import MODES, Mode, route_table
from model.serving import program_serving
from stacks.config import PROJECT, ConfigError, StackConfig, parse_stack_config
from stacks.project import ROOT

EXIT_BAD_INPUT = 2
PREVIOUS = "previous"
MODE_KEY = "mode"
WEIGHTS_KEY = "splitWeights"
KEYS: tuple[str, ...] = (MODE_KEY, WEIGHTS_KEY)
ISTIO_KEY, CANARY_KEY, STAGE_KEY = "istioVersion", "istioCanaryVersion", "istioCanaryStage"
ISTIO_KEYS: tuple[str, ...] = (ISTIO_KEY, CANARY_KEY, STAGE_KEY)
# A stack name as `pulumi stack init` accepts it; anything else could name a path.
_STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# One `key: value  # comment` line; the value is quoted or plain (a plain value has no '#').
_VALUE_LINE = re.compile(
    r"(?P<head>[ \t]+(?P<key>[^\s:#]+(?::[^\s:#]+)?):)"
    r"(?P<value>[ \t]+(?:'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"|[^\s#](?:[^#\r\n]*[^\s#])?))?"
    r"(?P<tail>[ \t]+#[^\r\n]*|[ \t]*)(?P<eol>\r?\n?)"
)
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Values = dict[str, Any]  # key (no namespace) -> value as YAML gives it; absent keys missing


class PromoteError(Exception):
    """Bad input or a refused target: one line for the user, exit code 2."""


@dataclass(frozen=True)
class Promotion:
    """A stack file before and after, and the validated config of each."""

    path: Path
    old_text: str
    new_text: str
    before: StackConfig
    after: StackConfig


def parse_weights(text: str) -> dict[str, int]:
    """`v1=90,v3=10` -> {"v1": 90, "v3": 10}, in the order given; sums are checked later."""
    weights: dict[str, int] = {}
    for pair in text.split(","):
        subset, sep, number = pair.strip().partition("=")
        if not sep or not subset or not re.fullmatch(r"\d+", number.strip()):
            raise PromoteError(
                f"--weights takes subset=percent pairs like v1=90,v3=10, got {pair.strip()!r}"
            )
        if subset in weights:
            raise PromoteError(f"--weights names subset {subset!r} twice")
        weights[subset] = int(number)
    return weights


def _config_values(text: str) -> Values:
    """The project's config keys of a stack file, namespace removed."""
    config = (yaml.safe_load(text) or {}).get("config") or {}
    return {key.removeprefix(f"{PROJECT}:"): value for key, value in config.items()}


def _scalar(value: str) -> str:
    """A YAML scalar that reads back as `value`: plain when that is safe, else single-quoted."""
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return "'" + value.replace("'", "''") + "'"


def _format(value: Any) -> str:
    if isinstance(value, str):
        return _scalar(value)
    return _scalar(json.dumps(value))  # a map written as YAML: keep its meaning, as JSON text


def _config_block(lines: list[str]) -> tuple[int, int, str]:
    """(first line after `config:`, end of the block, indentation of its keys)."""
    start = next((i + 1 for i, line in enumerate(lines) if re.match(r"config:\s*(#.*)?$", line)))
    end, indent = len(lines), None
    for i in range(start, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not lines[i][0].isspace():
            end = i
            break
        if indent is None:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    return start, end, indent or "  "


def _key_span(lines: list[str], key: str) -> tuple[int, int] | None:
    """Lines [i, j) that hold `key` (with or without namespace): its line and deeper ones."""
    start, end, indent = _config_block(lines)
    names = {key, f"{PROJECT}:{key}"}
    for i in range(start, end):
        match = _VALUE_LINE.fullmatch(lines[i])
        if match and match["key"] in names and lines[i].startswith(indent + match["key"]):
            j = i + 1
            while j < end and lines[j].strip() and lines[j].startswith(indent + " "):
                j += 1
            return i, j
    return None


def set_key(text: str, key: str, value: Any | None, anchors: tuple[str, ...] = (MODE_KEY,)) -> str:
    """`text` with `key` set to `value` (None: removed), every other line kept byte for byte.

    A new key goes after the first of `anchors` the file has, else first in `config:`.
    """
    lines = text.splitlines(keepends=True)
    if not any(re.match(r"config:\s*(#.*)?$", line) for line in lines):
        if value is None:
            return text
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append("config:\n")
    span = _key_span(lines, key)
    eol = next((line[len(line.rstrip("\r\n")) :] for line in lines if line.endswith("\n")), "\n")
    if span is None:
        if value is None:
            return text
        start, _, indent = _config_block(lines)
        spans = (_key_span(lines, anchor) for anchor in anchors if anchor != key)
        anchor = next((span for span in spans if span is not None), None)
        at = anchor[1] if anchor else start
        lines.insert(at, f"{indent}{PROJECT}:{key}: {_format(value)}{eol}")
        return "".join(lines)
    i, j = span
    if value is None:
        del lines[i:j]
        return "".join(lines)
    match = _VALUE_LINE.fullmatch(lines[i])
    assert match is not None  # _key_span matched it
    line_eol = match["eol"] or ("" if j == len(lines) else eol)
    lines[i:j] = [f"{match['head']} {_format(value)}{match['tail']}{line_eol}"]
    return "".join(lines)


def _validate(stack: str, text: str, root: Path) -> StackConfig:
    """The config `pulumi up` would build from this stack file text, or PromoteError."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(root / "Pulumi.yaml", Path(tmp) / "Pulumi.yaml")
        stack_file(stack, Path(tmp)).write_text(text)
        config, _ = load_engine_config(stack, root=Path(tmp))
    prefix = f"{PROJECT}:"
    raw = {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
    try:
        return parse_stack_config(raw)
    except ConfigError as error:
        raise PromoteError("; ".join(str(p) for p in error.problems)) from None


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PromoteError(f"git {args[0]}: {result.stderr.strip() or 'failed'}")
    return result.stdout


def previous_values(
    path: Path, current: Values, keys: tuple[str, ...] = KEYS, option: str = "--to"
) -> Values:
    """`keys` as the newest committed version of `path` whose values of them differ."""
    root, name = path.parent, path.name
    for commit in _git(root, "log", "--format=%H", "--", name).split():
        old = _config_values(_git(root, "show", f"{commit}:./{name}"))
        values = {k: old[k] for k in keys if k in old}
        if values != current:
            return values
    raise PromoteError(
        f"{option} previous: no commit of {name} has other values of {' or '.join(keys)} "
        "than now (a shallow clone? fetch more history)"
    )


def target_values(
    current: Values, to: str | None, weights: Mapping[str, int] | None, path: Path
) -> Values:
    """The `mode` and `splitWeights` a promotion asks for (an absent key: not in the file)."""
    if to == PREVIOUS:
        if weights is not None:
            raise PromoteError("--weights cannot be combined with --to previous")
        return previous_values(path, current)
    mode = to or Mode.SPLIT50.value
    if weights is not None and mode != Mode.SPLIT50:
        raise PromoteError(f"--weights sets split50's weights; it cannot go with --to {mode}")
    if mode != Mode.SPLIT50:
        return {MODE_KEY: mode}
    if weights is not None:
        return {MODE_KEY: mode, WEIGHTS_KEY: json.dumps(dict(weights))}
    return {
        MODE_KEY: mode,
        **({WEIGHTS_KEY: current[WEIGHTS_KEY]} if WEIGHTS_KEY in current else {}),
    }


def plan_promotion(
    stack: str, to: str | None, weights: Mapping[str, int] | None, root: Path | None = None
) -> Promotion:
    """Validate a traffic promotion and compute the new file text; nothing is written."""
    return _plan(
        stack,
        KEYS,
        lambda current, before, path: target_values(current, to, weights, path),
        root,
    )


def istio_values(plane: ControlPlane) -> Values:
    """The Istio keys of a stack file that say `plane` (an absent key: not in the file)."""
    values: Values = {ISTIO_KEY: plane.current.version}
    if plane.canary is not None:
        values[CANARY_KEY] = plane.canary.version
        if plane.stage is not CanaryStage.INSTALLED:
            values[STAGE_KEY] = plane.stage.value
    return values


def istio_target(current: Values, to: str, before: StackConfig, path: Path) -> Values:
    """The Istio keys after one step toward release `to` ('previous': one step back)."""
    if to == PREVIOUS:
        return previous_values(path, current, ISTIO_KEYS, "--istio")
    try:
        target = parse_release(to)
        return istio_values(next_step(before.control_plane, target))
    except ValueError as error:
        raise PromoteError(f"--istio {to!r} {error}") from None


def plan_istio_promotion(stack: str, to: str, root: Path | None = None) -> Promotion:
    """Validate one step of the control-plane ladder toward `to`; nothing is written."""
    return _plan(
        stack,
        ISTIO_KEYS,
        lambda current, before, path: istio_target(current, to, before, path),
        root,
    )


Target = Callable[[Values, StackConfig, Path], Values]


def _plan(stack: str, keys: tuple[str, ...], target: Target, root: Path | None) -> Promotion:
    """The stack file with `keys` set as `target` says, validated before and after."""
    root = root or ROOT
    if not _STACK_NAME.fullmatch(stack):
        raise PromoteError(f"--stack {stack!r} is not a stack name (letters, digits, _ . -)")
    path = stack_file(stack, root)
    if not path.is_file():
        raise PromoteError(f"no stack file {path.name}: create it with `pulumi stack init {stack}`")
    old_text = path.read_bytes().decode()
    try:
        before = _validate(stack, old_text, root)
    except PromoteError as error:
        raise PromoteError(f"{path.name} is invalid as it is: {error}") from None
    current_all = _config_values(old_text)
    current = {k: current_all[k] for k in keys if k in current_all}
    wanted = target(current, before, path)
    new_text = old_text
    for index, key in enumerate(keys):
        if wanted.get(key) != current.get(key):
            # A new key goes after its step's keys before it, else after mode.
            anchors = (*reversed(keys[:index]), MODE_KEY)
            new_text = set_key(new_text, key, wanted.get(key), anchors)
    expected = {k: v for k, v in current_all.items() if k not in keys} | wanted
    if _config_values(new_text) != expected:
        raise RuntimeError(f"editing {path.name} would change more than {', '.join(keys)}")
    try:
        after = _validate(stack, new_text, root)
    except PromoteError as error:
        raise PromoteError(f"{path.name} left unchanged: {error}") from None
    return Promotion(path, old_text, new_text, before, after)


def _tables(config: StackConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """Routes per service and cohort, and the predicted page per cohort, as render has them."""
    table = route_table(config.mode, config.traffic)
    serving = program_serving(config.istio_version)
    pages = {p.cohort: p.describe() for p in predict_page(table, serving, config.test_user)}
    return cohort_routes(table, config.test_user), pages


def _cell(cells: dict[str, str]) -> str:
    return cells["to"] + (f"; {cells['fault']}" if "fault" in cells else "")


def print_promotion(promotion: Promotion, console: Console, written: bool) -> None:
    """The route table and the predicted pages before and after, changed rows marked."""
    old_routes, old_pages = _tables(promotion.before)
    new_routes, new_pages = _tables(promotion.after)
    routes = Table(title="Routes per service and cohort", title_justify="left")
    for column in ("", "service", "cohort", "before", "after"):
        routes.add_column(column)
    for service, by_cohort in new_routes.items():
        for cohort, cells in by_cohort.items():
            old = _cell(old_routes[service][cohort])
            new = _cell(cells)
            routes.add_row("*" if old != new else "", service, Text(cohort), old, new)
    pages = Table(title="Predicted /productpage", title_justify="left")
    for column in ("cohort", "before", "after"):
        pages.add_column(column)
    for cohort, page in new_pages.items():
        pages.add_row(Text(cohort), old_pages.get(cohort, "-"), page)
    console.print(routes)
    console.print(pages)
    name = promotion.path.name
    change = f"mode {promotion.before.mode.value} -> {promotion.after.mode.value}"
    if promotion.old_text == promotion.new_text:
        console.print(Text(f"{name} already says this; unchanged"))
    elif written:
        console.print(Text(f"wrote {name}: {change}; commit it and open a pull request"))
    else:
        console.print(Text(f"{name} not written (--dry-run): {change}"))


def _plane_rows(plane: ControlPlane) -> dict[str, str]:
    """What runs where, in words, for one side of an Istio step."""
    return {
        "istiod revisions": ", ".join(f"{r.name} ({r.version})" for r in plane.revisions),
        "CRDs (base chart)": plane.crds_from.version,
        "Bookinfo (tag stable)": plane.workloads.name,
        "ingress gateway": plane.gateway.name,
    }


def print_istio_promotion(promotion: Promotion, console: Console, written: bool) -> None:
    """The control plane before and after one step, changed rows marked, and what is next."""
    before, after = promotion.before.control_plane, promotion.after.control_plane
    table = Table(title="Control plane", title_justify="left")
    for column in ("", "", "before", "after"):
        table.add_column(column)
    old_rows = _plane_rows(before)
    for what, new in _plane_rows(after).items():
        table.add_row("*" if old_rows[what] != new else "", what, old_rows[what], new)
    console.print(table)
    name = promotion.path.name
    if promotion.old_text == promotion.new_text:
        console.print(Text(f"{name} already says this; unchanged"))
        return
    verb = f"wrote {name}" if written else f"{name} not written (--dry-run)"
    console.print(Text(f"{verb}: {_istio_step_words(before, after)}"))
    if after.canary is not None:
        console.print(Text(f"next: promote --istio {after.canary.version}"))


def _istio_step_words(before: ControlPlane, after: ControlPlane) -> str:
    if after.canary is None and before.canary is None:
        return f"istiod {before.current.name} upgraded in place to {after.current.version}"
    if after.canary is None:
        return f"revision {after.current.name} is istioVersion now; {before.current.name} goes"
    if before.canary is None:
        return f"canary {after.canary.name} ({after.canary.version}) beside {before.current.name}"
    return f"canary {after.canary.name} at stage {after.stage.value}"


def cmd_promote(args: argparse.Namespace, console: Console) -> None:
    from bookinfo_mesh.cli import CommandError  # cli imports this module

    try:
        weights = parse_weights(args.weights) if args.weights is not None else None
        if args.istio is not None and (args.to is not None or weights is not None):
            raise PromoteError("--istio is a step of its own: leave out --to and --weights")
        if args.to is None and weights is None and args.istio is None:
            raise PromoteError(
                "promote needs --to MODE, --to previous, --weights or --istio VERSION"
            )
        if args.istio is not None:
            promotion = plan_istio_promotion(args.stack, args.istio)
        else:
            promotion = plan_promotion(args.stack, args.to, weights)
    except PromoteError as error:
        raise CommandError(str(error), EXIT_BAD_INPUT) from None
    write = not args.dry_run and promotion.new_text != promotion.old_text
    if write:
        write_file(promotion.path, promotion.new_text, "--stack")
    show = print_istio_promotion if args.istio is not None else print_promotion
    show(promotion, console, written=write)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "promote", help="move a stack to a traffic mode (edits Pulumi.<stack>.yaml)"
    )
    parser.add_argument("--stack", default="dev", help="stack name: edits Pulumi.<stack>.yaml")
    parser.add_argument(
        "--to",
        choices=(*MODES, PREVIOUS),
        help="the mode to move to; 'previous' restores the last committed other mode",
    )
    parser.add_argument(
        "--weights",
        metavar="SUBSET=PERCENT,...",
        help="split50 with these reviews weights, e.g. v1=90,v3=10 (implies --to split50)",
    )
    parser.add_argument(
        "--istio",
        metavar="VERSION",
        help="one step of the control-plane upgrade toward this Istio release: a patch in "
        "place, a minor as a canary (installed, workloads, gateway, done); 'previous' steps back",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show the change, do not write the file"
    )
    parser.set_defaults(func=cmd_promote)
