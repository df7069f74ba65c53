"""Planning a promotion: the stack file one step on, validated as `pulumi up` would read it.

A traffic step (--to, --weights) changes only the `mode` and `splitWeights` lines; an Istio
step (--istio) only istioVersion, istioCanaryVersion and istioCanaryStage. Every other byte of
the file (comments, order, quoting) stays. `splitWeights` lives in the file only while the
stack is in split50, and the canary keys only while a canary runs, so going there and back
gives the same bytes. `previous` restores a step's keys as the last commit that had other
values left them, read from the git history of the stack file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from bookinfo_mesh.errors import ToolError
from bookinfo_mesh.git import git
from bookinfo_mesh.pulumi_config import BOM
from bookinfo_mesh.pulumi_yaml import go_json
from bookinfo_mesh.render import Rendered
from bookinfo_mesh.rendering import render_stack
from bookinfo_mesh.stack_edit import set_key
from bookinfo_mesh.stack_files import (
    StackFileError,
    existing_stack_file,
    project_values,
    read_stack_text,
    stack_config_of_text,
)
from model.control_plane import CanaryStage, ControlPlane, next_step
from model.http_policy import Destination, HttpRule
from model.istio_releases import parse_release
from model.policy_manifests import http_route, routes_of
from model.routing import Mode
from stacks.config import PROJECT, StackConfig
from stacks.project import ROOT, project_name

PREVIOUS = "previous"
MODE_KEY = "mode"
WEIGHTS_KEY = "splitWeights"
KEYS: tuple[str, ...] = (MODE_KEY, WEIGHTS_KEY)
ISTIO_KEY, CANARY_KEY, STAGE_KEY = "istioVersion", "istioCanaryVersion", "istioCanaryStage"
ISTIO_KEYS: tuple[str, ...] = (ISTIO_KEY, CANARY_KEY, STAGE_KEY)
ROUTES_KEY = "routes"
# Keys Pulumi.yaml declares objects: written as a flow mapping (JSON), which YAML reads as one.
OBJECT_KEYS = frozenset({ROUTES_KEY})
# A weight as --weights takes it: a percentage in ASCII digits.
_PERCENT = re.compile(r"[0-9]{1,3}")

Values = dict[str, str]  # key (no namespace) -> its string, as Pulumi reads it; absent: missing


class PromoteError(ToolError):
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
        if not sep or not subset or not _PERCENT.fullmatch(number.strip()):
            raise PromoteError(
                "--weights takes subset=percent pairs like v1=90,v3=10 (percentages in ASCII "
                f"digits, 0 to 100), got {pair.strip()[:40]!r}"
            )
        if subset in weights:
            raise PromoteError(f"--weights names subset {subset!r} twice")
        weights[subset] = int(number)
    return weights


def _git(root: Path, *args: str) -> str:
    return git(root, *args, error=PromoteError)


def previous_values(
    path: Path,
    current: Values,
    keys: tuple[str, ...] = KEYS,
    option: str = "--to",
    project: str = PROJECT,
) -> Values:
    """`keys` as the newest committed version of `path` whose values of them differ."""
    root, name = path.parent, path.name
    for commit in _git(root, "log", "--format=%H", "--", name).split():
        shown = _git(root, "show", f"{commit}:./{name}")
        old = project_values(shown, f"{name} at {commit[:12]}", project)
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


def service_target(
    current: Values,
    table: Mapping[str, tuple[HttpRule, ...]],
    service: str,
    to: str | None,
    weights: Mapping[str, int] | None,
    path: Path,
    project: str = PROJECT,
) -> Values:
    """The `routes` key with `service`'s catch-all rule sending `weights` (or as before);
    `table` is every service's rules as the stack routes them now."""
    if to == PREVIOUS:
        if weights is not None:
            raise PromoteError("--weights cannot be combined with --to previous")
        return previous_values(path, current, (ROUTES_KEY,), "--service", project)
    if to is not None or weights is None:
        raise PromoteError("--service takes --weights (or --to previous), not a mode")
    rules = table.get(service)
    if rules is None:
        raise PromoteError(
            f"--service {service!r} is not routed here; services: {', '.join(table) or 'none'}"
        )
    catch_all = next((i for i in reversed(range(len(rules))) if not rules[i].matches), None)
    if catch_all is None:
        raise PromoteError(
            f"--service {service}: no rule of it matches everyone, so none takes --weights"
        )
    destinations = tuple(Destination(s, w) for s, w in weights.items() if w > 0)
    stepped = (
        *rules[:catch_all],
        replace(rules[catch_all], destinations=destinations),
        *rules[catch_all + 1 :],
    )
    routes = json.loads(current.get(ROUTES_KEY, "{}"))
    routes[service] = {"http": [http_route(service, rule) for rule in stepped]}
    return {ROUTES_KEY: go_json(routes)}


def plan_service_promotion(
    stack: str,
    service: str,
    to: str | None,
    weights: Mapping[str, int] | None,
    root: Path | None = None,
) -> Promotion:
    """Validate a step of one service's weights (the `routes` key); nothing is written."""
    return _plan(
        stack,
        (ROUTES_KEY,),
        lambda current, before, path: service_target(
            current, before.route_table, service, to, weights, path
        ),
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
    path = existing_stack_file(stack, root)
    old_text = read_stack_text(path)
    try:
        before = stack_config_of_text(old_text, path.name, root)
    except StackFileError as error:
        raise PromoteError(f"{path.name} is invalid as it is: {error}") from None
    current_all = project_values(old_text, path.name)
    current = {k: current_all[k] for k in keys if k in current_all}
    new_text = _edited(old_text, path.name, current_all, keys, target(current, before, path))
    try:
        after = stack_config_of_text(new_text, path.name, root)
    except StackFileError as error:
        raise PromoteError(f"{path.name} left unchanged: {error}") from None
    return Promotion(path, old_text, new_text, before, after)


def _edited(
    old_text: str,
    name: str,
    current_all: Values,
    keys: tuple[str, ...],
    wanted: Values,
    project: str = PROJECT,
) -> str:
    """`old_text` with `keys` as `wanted` has them, line by line; PromoteError if the file's
    form does not allow that."""
    current = {k: current_all[k] for k in keys if k in current_all}
    # A byte order mark stays where it was; the lines after it are edited.
    body = old_text.removeprefix(BOM)
    for index, key in enumerate(keys):
        if wanted.get(key) != current.get(key):
            # A new key goes after its step's keys before it, else after mode.
            anchors = (*reversed(keys[:index]), MODE_KEY)
            body = set_key(
                body, key, wanted.get(key), anchors, flow=key in OBJECT_KEYS, project=project
            )
    new_text = old_text[: len(old_text) - len(old_text.removeprefix(BOM))] + body
    expected = {k: v for k, v in current_all.items() if k not in keys} | wanted
    try:
        edited_as_meant = project_values(new_text, name, project) == expected
    except StackFileError:
        edited_as_meant = False
    if not edited_as_meant:
        raise PromoteError(
            f"{name} holds its config in a form promote cannot edit line by line (a flow "
            "mapping `config: {...}`, say); write one key per line, or use `pulumi config set`"
        )
    return new_text


@dataclass(frozen=True)
class ProjectPromotion:
    """A step of another project's stack file, and its program's renders before and after."""

    path: Path
    old_text: str
    new_text: str
    before: Rendered
    after: Rendered


def plan_project_promotion(
    stack: str,
    service: str,
    to: str | None,
    weights: Mapping[str, int] | None,
    root: Path,
) -> ProjectPromotion:
    """promote --service for another project than this one: its routes as its own program
    registers them (a render under mocks), the `routes` key stepped as for this project, and
    the program run again on the edited file, which it must accept."""
    project = project_name(root)
    path = existing_stack_file(stack, root)
    old_text = read_stack_text(path)
    before = _project_render(stack, root, old_text, f"{path.name} does not render as it is")
    current_all = project_values(old_text, path.name, project)
    current = {ROUTES_KEY: current_all[ROUTES_KEY]} if ROUTES_KEY in current_all else {}
    table = routes_of([m for m in before.manifests if m["kind"] == "VirtualService"])
    wanted = service_target(current, table, service, to, weights, path, project)
    new_text = _edited(old_text, path.name, current_all, (ROUTES_KEY,), wanted, project)
    after = _project_render(stack, root, new_text, f"{path.name} left unchanged")
    return ProjectPromotion(path, old_text, new_text, before, after)


def _project_render(stack: str, root: Path, text: str, failing: str) -> Rendered:
    try:
        return render_stack(stack, {}, validate=False, root=root, stack_text=text)
    except ToolError as error:
        raise PromoteError(f"{failing}: {error}") from None
