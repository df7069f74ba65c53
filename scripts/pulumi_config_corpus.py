"""Ask Pulumi's own code again what each case of tests/data/pulumi_stack_config.json means.

    python scripts/pulumi_config_corpus.py ORACLE [--check]

ORACLE is tests/harness/stackconfig built (`scripts/tools.py path stackconfig`). Each case's
Pulumi.yaml and Pulumi.dev.yaml go into a folder of their own; the oracle's answer replaces
the case's `pulumi` entry, or with --check, a differing answer is printed and exits 1. A case
is run several times: where Pulumi's answer depends on Go's random map order, the answers
differ, and the case is marked nondeterministic.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "pulumi_stack_config.json"
RUNS = 12  # a key written twice comes out either way within a few runs (2 orders)


def _write(folder: Path, case: dict[str, Any]) -> None:
    for label, name in (("project", "Pulumi.yaml"), ("stack", "Pulumi.dev.yaml")):
        if f"{label}_base64" in case:
            (folder / name).write_bytes(base64.b64decode(case[f"{label}_base64"]))
        elif case.get(label) is not None:
            (folder / name).write_text(case[label], encoding="utf-8")


def _answer(oracle: Path, folder: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(oracle), "-stack", "dev", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"oracle exited {done.returncode} on {folder.name}: {done.stderr[-300:]}")
    result = json.loads(done.stdout)
    if "error" in result:
        return {"error": result["error"].replace(f"{folder}/", ""), "stage": result["stage"]}
    answer = {"config": result["config"], "secrets": result["secrets"]}
    if result["warnings"]:
        answer["warnings"] = result["warnings"]
    return answer


def pulumi_answer(oracle: Path, case: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        _write(folder, case)
        answers = {json.dumps(_answer(oracle, folder), sort_keys=True) for _ in range(RUNS)}
    if len(answers) > 1:
        return {"nondeterministic": True}
    return json.loads(answers.pop())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("oracle", type=Path)
    parser.add_argument("--check", action="store_true", help="compare only; write nothing")
    args = parser.parse_args()
    data = json.loads(DATA.read_text())
    differing = []
    for case in data["cases"]:
        answer = pulumi_answer(args.oracle, case)
        if answer != case["pulumi"]:
            differing.append(case["name"])
            print(f"{case['name']}: recorded {case['pulumi']}, Pulumi now says {answer}")
        case["pulumi"] = answer
    if args.check:
        print(f"{len(data['cases']) - len(differing)}/{len(data['cases'])} cases as recorded")
        return 1 if differing else 0
    DATA.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
