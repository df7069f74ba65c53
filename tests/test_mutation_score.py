"""scripts/mutation.py's arithmetic: what counts as caught, and the line it ends with."""

from __future__ import annotations

import importlib.util
from collections import Counter
from types import ModuleType

from stacks.project import ROOT


def mutation_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation", ROOT / "scripts" / "mutation.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_survivors_timeouts_and_untested_mutants_count_against_the_score() -> None:
    script = mutation_script()
    by_module = {
        "model/a.py": Counter({"killed": 90, "survived": 4, "timeout": 2}),
        "model/b.py": Counter({"killed": 5, "caught by type check": 1, "no tests": 1}),
        "model/c.py": Counter({"skipped": 7}),  # not a mutant at all
    }
    assert script.score(by_module) == (96, 103)
    assert script.score_line(96, 103) == "mutation score: 96/103 killed (93.2 %)"


def test_no_mutants_is_a_score_of_zero_not_a_division_by_zero() -> None:
    assert mutation_script().score_line(0, 0) == "mutation score: 0/0 killed (0.0 %)"
