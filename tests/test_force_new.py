"""diff's force-new table against what the providers' sources say, as recorded with their
references in tests/data/force_new_sources.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bookinfo_mesh.diff import REPLACE_ON_CHANGE
from bookinfo_mesh.engine import run_program

RECORD = json.loads((Path(__file__).parent / "data" / "force_new_sources.json").read_text())


def _under_another(path: str, paths: set[str]) -> bool:
    """`path` lies below another listed path, which already covers it (diff matches prefixes)."""
    return any(path.startswith(f"{other}.") for other in paths if other != path)


def read_at_source(type_: str) -> set[str]:
    paths = set(RECORD["force_new"].get(type_, {}))
    paths |= set(RECORD.get("deliberate", {}).get(type_, {}))
    return {p for p in paths if not _under_another(p, paths)}


@pytest.mark.parametrize("type_", sorted(REPLACE_ON_CHANGE))
def test_each_entry_is_what_its_provider_says(type_: str) -> None:
    assert set(REPLACE_ON_CHANGE[type_]) == read_at_source(type_), (
        f"{type_}: the table and tests/data/force_new_sources.json disagree"
    )


def test_every_recorded_type_is_in_the_table() -> None:
    assert set(RECORD["force_new"]) <= set(REPLACE_ON_CHANGE)


def test_each_resource_type_the_program_registers_was_read_at_its_source() -> None:
    """A type with no entry updates in place whatever changes: that, too, is a fact read
    somewhere (a provider's source, or a component, which is never replaced itself)."""
    registered = {r.type for stack in ("dev", "prod") for r in run_program(stack).resources}
    unread = {
        t
        for t in registered
        if t not in RECORD["force_new"]
        and t not in RECORD["no_force_new"]
        and not t.startswith(("bookinfo:index:", "pulumi:providers:"))
        and not (
            t.startswith("kubernetes:")
            and t.rsplit(":", 1)[1] in RECORD["kubernetes_kinds_checked"]
        )
    }
    assert not unread, f"no source says how these replace: {sorted(unread)}"
