"""Bookinfo's modes as presets of the generic policy give exactly the objects they gave before.

tests/data/preset_manifests.json holds the DestinationRules and VirtualServices the program
registered for every stack, mode and knob setting before TrafficPolicy took a generic model.
The whole program is run for each mode with the stack's own knobs; the other knob settings go
through the same config parsing and manifests, without the program around them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model.policy_manifests import traffic_manifests
from stacks.config import parse_stack_config
from tests.programs import shared_render
from tests.test_config import project_config

RECORDED = json.loads((Path(__file__).parent / "data" / "preset_manifests.json").read_text())
RENDERS: dict[str, dict[str, Any]] = RECORDED["renders"]
WHOLE_PROGRAM = sorted(name for name in RENDERS if name.endswith("/defaults"))
CONFIG_ONLY = sorted(name for name in RENDERS if not name.endswith("/defaults"))


def by_name(objects: list[dict[str, Any]], annotations: bool = True) -> dict[tuple, Any]:
    """(kind, name) -> object; without metadata.annotations when asked (the component adds
    those)."""
    return {
        (o["kind"], o["metadata"]["name"]): o
        if annotations
        else {**o, "metadata": {k: v for k, v in o["metadata"].items() if k != "annotations"}}
        for o in objects
    }


@pytest.mark.parametrize("name", WHOLE_PROGRAM)
def test_each_mode_of_each_stack_gives_todays_objects_field_for_field(name: str) -> None:
    recorded = RENDERS[name]
    rendered = shared_render(name.split("/")[0], recorded["overrides"])
    objects = [m for m in rendered.manifests if m["kind"] in ("DestinationRule", "VirtualService")]
    assert objects == recorded["objects"]


@pytest.mark.parametrize("name", CONFIG_ONLY)
def test_each_knob_setting_gives_todays_objects_field_for_field(name: str) -> None:
    recorded = RENDERS[name]
    config = parse_stack_config(project_config(name.split("/")[0], recorded["overrides"]))
    objects = traffic_manifests(config.traffic_policy)
    # The ingress gateway's VirtualService is Bookinfo's, not the policy's.
    policys = [o for o in recorded["objects"] if "gateways" not in o["spec"]]
    assert by_name(objects) == by_name(policys, annotations=False)


def test_the_record_covers_every_mode_of_both_stacks() -> None:
    modes = {tuple(name.split("/")[:2]) for name in WHOLE_PROGRAM}
    assert len(modes) == 12 and {stack for stack, _ in modes} == {"dev", "prod"}
