"""Mutation testing: run mutmut over the modules [tool.mutmut] names, then print the score.

mutmut 3 copies the project into mutants/, plants every mutant of the named modules' functions
behind a trampoline, records which tests reach each function, and runs only those tests per
mutant. The score is read back from mutmut's own result files (mutants/**/*.py.meta), so it
is exactly what mutmut measured: `mutation score: K/N killed (P %)`.

Usage: python scripts/mutation.py [mutmut run arguments, e.g. mutant names or globs]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
# A mutant counts as caught when a test failed on it or it could not even load; one that
# timed out is counted apart (an infinite loop is a bug the tests would hang on, not catch).
CAUGHT = {"killed", "caught by type check"}
NOT_A_MUTANT = {"skipped"}
MINIMUM_PERCENT = 90.0  # the suite's goal: a run below it fails


def statuses(mutants_dir: Path) -> dict[str, Counter[str]]:
    """module path -> how many of its mutants ended in each mutmut status."""
    by_module: dict[str, Counter[str]] = {}
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        if exit_codes:
            module = str(meta.relative_to(mutants_dir)).removesuffix(".meta")
            by_module[module] = Counter(status_by_exit_code[c] for c in exit_codes.values())
    return by_module


def score(by_module: dict[str, Counter[str]]) -> tuple[int, int]:
    """(caught, counted): every mutant counts, survived, untested and timed-out ones too."""
    total = sum(by_module.values(), Counter())
    counted = sum(n for status, n in total.items() if status not in NOT_A_MUTANT)
    return sum(total[status] for status in CAUGHT), counted


def percent(caught: int, counted: int) -> float:
    return 100 * caught / counted if counted else 0.0


def score_line(caught: int, counted: int) -> str:
    return f"mutation score: {caught}/{counted} killed ({percent(caught, counted):.1f} %)"


def main(argv: list[str]) -> int:
    jobs = str(len(os.sched_getaffinity(0)))
    mutmut = Path(sys.executable).with_name("mutmut")
    run = subprocess.run([str(mutmut), "run", "--max-children", jobs, *argv], cwd=ROOT)
    by_module = statuses(ROOT / "mutants")
    if not by_module:
        print("mutmut produced no results", file=sys.stderr)
        return run.returncode or 1
    for module, counts in by_module.items():
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        print(f"{module}: {detail}")
    print("survivors: .venv/bin/mutmut results; one mutant's diff: .venv/bin/mutmut show NAME")
    caught, counted = score(by_module)
    print(score_line(caught, counted))
    if percent(caught, counted) < MINIMUM_PERCENT:
        print(f"below the {MINIMUM_PERCENT:g} % the suite aims for", file=sys.stderr)
        return 1
    return run.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
