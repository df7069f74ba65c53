"""Ask Pulumi's own code again what each case of tests/data/pulumi_stack_config.json means.

    python scripts/pulumi_config_corpus.py .tools/bin/stackconfig [--check]

.tools/bin/stackconfig is tests/harness/stackconfig built (`make tools`). Each case's
Pulumi.yaml and Pulumi.dev.yaml go into a folder of their own; Pulumi's answer replaces the
case's `pulumi` entry, or with --check, a differing answer is printed and exits 1. Every case
is answered several times: where Pulumi's answer depends on Go's random map order, the
answers differ, and the case is marked nondeterministic.
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
RUNS = 40  # a key written twice comes out either way within tens of runs (Go map order)


def write_case(folder: Path, case: dict[str, Any]) -> None:
    """The case's Pulumi.yaml and Pulumi.dev.yaml, byte for byte, into `folder`."""
    folder.mkdir(parents=True)
    for label, name in (("project", "Pulumi.yaml"), ("stack", "Pulumi.dev.yaml")):
        if f"{label}_base64" in case:
            (folder / name).write_bytes(base64.b64decode(case[f"{label}_base64"]))
        elif case.get(label) is not None:
            (folder / name).write_bytes(case[label].encode())


def _normalised(folder: Path, result: dict[str, Any]) -> dict[str, Any]:
    """An answer as the data file records it: no machine paths, no empty warnings."""
    if "error" in result:
        return {"error": result["error"].replace(f"{folder}/", ""), "stage": result["stage"]}
    answer = {"config": result["config"], "secrets": result["secrets"]}
    if result["warnings"]:
        answer["warnings"] = result["warnings"]
    return answer


def pulumi_answers(stackconfig: Path, cases: list[dict[str, Any]], runs: int) -> list[dict]:
    """Each case's answer from `runs` runs of Pulumi's loader over all cases at once."""
    with tempfile.TemporaryDirectory() as scratch:
        folders = [Path(scratch) / str(index) for index in range(len(cases))]
        for folder, case in zip(folders, cases, strict=True):
            write_case(folder, case)
        seen: list[set[str]] = [set() for _ in cases]
        for _ in range(runs):
            done = subprocess.run(
                [str(stackconfig), "-stack", "dev", *map(str, folders)],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if done.returncode != 0:
                raise SystemExit(f"stackconfig exited {done.returncode}: {done.stderr[-300:]}")
            results = json.loads(done.stdout)
            for answers, folder in zip(seen, folders, strict=True):
                answers.add(json.dumps(_normalised(folder, results[str(folder)]), sort_keys=True))
    return [
        {"nondeterministic": True} if len(answers) > 1 else json.loads(answers.pop())
        for answers in seen
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stackconfig", type=Path)
    parser.add_argument("--check", action="store_true", help="compare only; write nothing")
    args = parser.parse_args()
    data = json.loads(DATA.read_text())
    differing = []
    answers = pulumi_answers(args.stackconfig, data["cases"], RUNS)
    for case, answer in zip(data["cases"], answers, strict=True):
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
