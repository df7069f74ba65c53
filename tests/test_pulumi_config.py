"""The stack files are read as the Pulumi CLI reads them, judged by Pulumi's own answers.

tests/data/pulumi_stack_config.json holds, for each case, a Pulumi.yaml, a Pulumi.dev.yaml
and what Pulumi's Go code made of the pair (see its `about`). The reader here must give the
same strings, the same secret keys, and refuse what Pulumi refuses.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bookinfo_mesh.pulumi_config import (
    PulumiConfigError,
    merged_config,
    read_project,
    read_stack,
)
from bookinfo_mesh.pulumi_yaml import go_float, resolve_plain
from bookinfo_mesh.stack_edit import set_key
from tests.real_tools import tool

DATA = json.loads(Path(__file__).with_name("data").joinpath("pulumi_stack_config.json").read_text())


@dataclass(frozen=True)
class Case:
    name: str
    project: str
    stack: bytes | None
    pulumi: dict[str, Any]


def _bytes(case: dict[str, Any], label: str) -> bytes | None:
    if f"{label}_base64" in case:
        return base64.b64decode(case[f"{label}_base64"])
    text = case.get(label)
    return None if text is None else text.encode()


CASES = [
    Case(c["name"], (_bytes(c, "project") or b"").decode(), _bytes(c, "stack"), c["pulumi"])
    for c in DATA["cases"]
]


def read_as_this_project_does(case: Case) -> tuple[dict[str, str], list[str]]:
    """The pair read by bookinfo_mesh's reader: UTF-8 first, as stack_files reads a file."""
    project = read_project(case.project)
    if case.stack is None:  # Pulumi reads a missing stack file as an empty one
        values = {}
    else:
        try:
            text = case.stack.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PulumiConfigError(f"not UTF-8: {error}") from None
        values = read_stack(text, "Pulumi.dev.yaml", project.name)
    merged = merged_config(project, values, "dev")
    return merged.values, list(merged.secrets)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_stack_file_reads_as_pulumi_reads_it(case: Case) -> None:
    expected = case.pulumi
    if "config" in expected:
        config, secrets = read_as_this_project_does(case)
        assert config == expected["config"]
        assert secrets == expected["secrets"]
        return
    with pytest.raises(PulumiConfigError) as refused:
        read_as_this_project_does(case)
    if expected.get("stage") == "validate":
        # Pulumi's sentence, and then the value it refused where there is one.
        assert str(refused.value).startswith(expected["error"]), str(refused.value)


def test_the_corpus_covers_each_way_pulumi_answers() -> None:
    """Strings, secrets, and refusals at each stage of Pulumi's loading are all in the data."""
    stages = {case.pulumi.get("stage") for case in CASES}
    assert stages >= {None, "project", "stack", "validate"}
    assert any(case.pulumi.get("secrets") for case in CASES)
    assert any(case.pulumi.get("nondeterministic") for case in CASES)


@pytest.mark.parametrize(
    ("plain", "pulumi_reads"),
    [
        ("010", 8),  # YAML 1.2 core via Go's ParseInt base 0: a leading 0 is octal
        ("0o10", 8),
        ("0x3", 3),
        ("1_0", 10),
        ("3:00", "3:00"),  # no sexagesimal numbers in yaml.v3
        ("yes", "yes"),  # YAML 1.1's booleans are text
        ("True", True),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("~", None),
        ("1.30", 1.3),
    ],
)
def test_plain_scalars_resolve_as_yaml_v3_resolves_them(plain: str, pulumi_reads: Any) -> None:
    assert resolve_plain(plain) == pulumi_reads
    assert type(resolve_plain(plain)) is type(pulumi_reads)


@pytest.mark.parametrize(
    ("number", "go_writes"),
    [(1.0, "1"), (1e20, "100000000000000000000"), (1e21, "1e+21"), (1.5e-7, "1.5e-7"), (-0.0, "0")],
)
def test_floats_are_written_as_gos_json_writes_them(number: float, go_writes: str) -> None:
    assert go_float(number) == go_writes


@pytest.mark.parametrize("value", ["0o10", "yes", "1_0", "010", "v3", "1.30", "null", "2024-01-02"])
def test_an_edited_value_reads_back_as_the_string_it_was_set_to(value: str) -> None:
    """promote's writer quotes what Pulumi would read as anything but this exact string."""
    project = read_project("name: bookinfo-mesh\nruntime: python\n")
    text = set_key("config:\n  bookinfo-mesh:mode: all-v1\n", "mode", value)
    values = read_stack(text, "Pulumi.dev.yaml", project.name)
    assert merged_config(project, values, "dev").values["bookinfo-mesh:mode"] == value


def load_corpus_script() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "scripts" / "pulumi_config_corpus.py"
    spec = importlib.util.spec_from_file_location("pulumi_config_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pulumis_own_loader_still_gives_the_recorded_answers() -> None:
    """tests/harness/stackconfig (Pulumi's Go SDK at its pin) answers each case once; where
    Pulumi's answer is its own random choice, either answer is Pulumi's."""
    corpus = load_corpus_script()
    cases = DATA["cases"]
    answers = corpus.pulumi_answers(tool("stackconfig"), cases, runs=1)
    differing = [
        case["name"]
        for case, answer in zip(cases, answers, strict=True)
        if not case["pulumi"].get("nondeterministic") and answer != case["pulumi"]
    ]
    assert differing == [], "re-record with scripts/pulumi_config_corpus.py"
