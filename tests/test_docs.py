"""Every output sample in the docs is what its command prints now (scripts/docs.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_docs() -> ModuleType:
    path = ROOT / "scripts" / "docs.py"
    spec = importlib.util.spec_from_file_location("docs_samples", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DOCS = load_docs()


@pytest.mark.parametrize("path", DOCS.DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_sample_is_what_its_command_prints_now(path: Path) -> None:
    text = path.read_text()
    assert DOCS.rewrite(text) == text, f"{path.name} has a stale sample: run `make docs`"


def test_every_sample_has_a_block_in_the_docs_and_no_block_names_an_unknown_one() -> None:
    named = [m["name"] for path in DOCS.DOCS for m in DOCS.SAMPLE.finditer(path.read_text())]
    assert sorted(set(named)) == sorted(DOCS.SAMPLES), "samples and docs blocks disagree"


def test_a_stale_sample_is_rewritten_whole() -> None:
    stale = "x\n<!-- sample: istio-ladder-keys -->\n```yaml\nold\n```\ny\n"
    fresh = DOCS.rewrite(stale)
    assert fresh.startswith("x\n<!-- sample: istio-ladder-keys -->\n```yaml\n# before\n")
    assert fresh.endswith("```\ny\n") and "old" not in fresh
