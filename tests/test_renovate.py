"""renovate.json keeps the pins fresh only while its patterns still find them: checked here."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache

import pytest
import yaml

from stacks.project import ROOT

CONFIG = json.loads((ROOT / "renovate.json").read_text())
MANAGERS = CONFIG["customManagers"]


def python_pattern(renovate_regex: str) -> re.Pattern[str]:
    """A Renovate regex (JavaScript syntax) as Python's: named groups differ in spelling."""
    return re.compile(renovate_regex.replace("(?<", "(?P<"))


@cache
def tracked_files() -> tuple[str, ...]:
    """What Renovate sees: the repository's files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return tuple(name for name in listed.split("\0") if name)


def files_of(manager: dict) -> list[str]:
    (pattern,) = manager["managerFilePatterns"]
    assert pattern.startswith("/") and pattern.endswith("/"), f"not a regex pattern: {pattern}"
    found = python_pattern(pattern[1:-1])
    return sorted(name for name in tracked_files() if found.fullmatch(name))


def found_values(manager: dict) -> dict[str, list[str]]:
    """File -> the current values the manager's match strings extract from it."""
    values = {}
    for name in files_of(manager):
        text = (ROOT / name).read_text()
        values[name] = [
            match["currentValue"]
            for pattern in manager["matchStrings"]
            for match in python_pattern(pattern).finditer(text)
        ]
    return values


def manager(description_start: str) -> dict:
    (found,) = (m for m in MANAGERS if m["description"].startswith(description_start))
    return found


def test_the_istio_default_of_pulumi_yaml_is_found_where_it_is() -> None:
    default = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["istioVersion"]
    assert found_values(manager("The Istio release a new stack gets")) == {
        "Pulumi.yaml": [str(default["default"])]
    }


def test_every_stack_file_that_pins_istio_is_found_and_none_other() -> None:
    pins = {}
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        config = yaml.safe_load(path.read_text())["config"]
        if "bookinfo-mesh:istioVersion" in config:
            pins[path.name] = [str(config["bookinfo-mesh:istioVersion"])]
        else:
            pins[path.name] = []
    assert pins["Pulumi.prod.yaml"], "prod pins its Istio release; the test expects one pin"
    assert found_values(manager("The Istio release a stack runs")) == pins


@pytest.mark.parametrize(
    ("description", "file", "pin"),
    [
        ("The uv that make installs", "Makefile", r"\nUV_VERSION := (\S+)\n"),
        (
            "The renovate-config-validator",
            "scripts/check_renovate.py",
            r'\nRENOVATE_VERSION = "(\S+)"\n',
        ),
        ("The helm that scripts/tools.py", "scripts/tools.py", r'\nHELM_VERSION = "(\S+)"\n'),
    ],
)
def test_the_tool_pins_are_found(description: str, file: str, pin: str) -> None:
    (expected,) = re.findall(pin, (ROOT / file).read_text())
    assert found_values(manager(description)) == {file: [expected]}


def test_the_observability_chart_pins_are_found() -> None:
    from model.observability import CHARTS

    text = (ROOT / "model" / "observability.py").read_text()
    (found,) = (m for m in MANAGERS if "observability charts" in m["description"])
    (pattern,) = found["matchStrings"]
    matches = [m.groupdict() for m in python_pattern(pattern).finditer(text)]
    assert matches == [
        {"depName": c.name, "currentValue": c.version, "registryUrl": c.repository} for c in CHARTS
    ]


def test_istio_minors_reach_stacks_only_through_the_canary_ladder() -> None:
    stack_rule = next(
        r for r in CONFIG["packageRules"] if r.get("matchFileNames") == ["Pulumi.*.yaml"]
    )
    assert stack_rule["matchUpdateTypes"] == ["major", "minor"] and stack_rule["enabled"] is False
