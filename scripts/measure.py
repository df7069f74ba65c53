"""Measure what the docs quote as figures, and record it in docs/measurements.json.

    .venv/bin/python scripts/measure.py suite        # a fresh clone's `make test`
    .venv/bin/python scripts/measure.py tools-cold   # every tool built with empty Go caches
    .venv/bin/python scripts/measure.py tools-cached # `make tools` once they are cached

`suite` clones the committed HEAD into a temporary folder and times `make test` there, as CI
runs it (uv's package cache and the machine's tool cache as they are). The docs' blocks of
these very figures are left out of that run: they show the measurement it is taking.
`tools-cold` runs `scripts/tools.py ensure` with empty Go module and build caches and an
empty tool cache, and records what each tool took. The docs show these figures through
scripts/docs.py's samples, with the date and commit they were measured at.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "docs" / "measurements.json"
PASSED = re.compile(r"(\d+) passed(?:, \d+ \w+)* in ([\d.]+)s")
# The docs blocks that show these figures (page:sample, as tests/test_docs.py names them).
MEASURED_BLOCKS = ("README.md:suite-figures", "docs/testing.md:tool-costs")
TOOL_LINE = re.compile(
    r"^(?P<label>.+?): (?P<how>built with go \S+|downloaded \S+) in (?P<took>\S+)$"
)


def _machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def measure_suite() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fresh-clone-") as scratch:
        clone = Path(scratch) / "bookinfo-mesh"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        measured_blocks = " ".join(
            f"--deselect=tests/test_docs.py::test_every_sample_is_what_its_command_prints_now[{b}]"
            for b in MEASURED_BLOCKS
        )
        env = os.environ | {"PYTEST_ADDOPTS": measured_blocks}
        start = time.monotonic()
        done = subprocess.run(["make", "test"], cwd=clone, capture_output=True, text=True, env=env)
        seconds = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"make test failed in the fresh clone:\n{done.stdout[-3000:]}")
    found = PASSED.findall(done.stdout)
    if not found:
        raise SystemExit("make test printed no pytest summary line")
    passed, pytest_seconds = found[-1]
    return {
        "make_test_seconds": round(seconds, 1),
        "pytest_seconds": float(pytest_seconds),
        "tests_passed": int(passed),
    }


def measure_tools_cold() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cold-tools-") as scratch:
        empty = Path(scratch)
        env = os.environ | {
            "GOMODCACHE": str(empty / "mod"),
            "GOCACHE": str(empty / "build"),
            "XDG_CACHE_HOME": str(empty / "cache"),
        }
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "tools.py"), "ensure"],
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - start
        sizes = {
            name: _size(empty / folder)
            for name, folder in (("module_cache_mb", "mod"), ("build_cache_mb", "build"))
        }
    # The tools now point into the emptied cache: link the machine's own again.
    subprocess.run([sys.executable, str(ROOT / "scripts" / "tools.py"), "ensure"], check=True)
    if done.returncode != 0:
        raise SystemExit(f"tools.py ensure failed with cold caches:\n{done.stderr}")
    tools = {
        m["label"]: m["took"] for line in done.stdout.splitlines() if (m := TOOL_LINE.match(line))
    }
    return {"seconds": round(seconds, 1), "tools": tools, **sizes}


def measure_tools_cached(runs: int = 5) -> dict[str, Any]:
    """`scripts/tools.py ensure` as every later `make test` runs it: the median of `runs`."""
    took = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "tools.py"), "ensure"],
            check=True,
            capture_output=True,
        )
        took.append(time.monotonic() - start)
    return {"median_seconds": round(sorted(took)[runs // 2], 2), "runs": runs}


def _size(folder: Path) -> int:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return round(total / 2**20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    measures = {
        "suite": measure_suite,
        "tools-cold": measure_tools_cold,
        "tools-cached": measure_tools_cached,
    }
    parser.add_argument("what", choices=tuple(measures))
    args = parser.parse_args()
    figures = measures[args.what]()
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    record[args.what] = {
        **figures,
        "measured": datetime.date.today().isoformat(),
        "commit": _commit(),
        "machine": _machine(),
    }
    RECORD.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(json.dumps(record[args.what], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
