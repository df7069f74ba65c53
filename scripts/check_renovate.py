"""Checks renovate.json with Renovate's own validator, or its JSON schema where npm is missing.

The validator (npm package renovate, pinned) is installed once per machine into a cache
outside the checkout, since it is 340 MB and 40 s to install. Prints which check ran; exits
non-zero with the validator's findings when the config is wrong.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

RENOVATE_VERSION = "44.121.2"
ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "renovate.json"


def tools_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bookinfo-mesh"


def validator() -> Path | None:
    """renovate-config-validator at RENOVATE_VERSION, installed if needed; None without npm."""
    home = tools_cache() / f"renovate-{RENOVATE_VERSION}"
    binary = home / "node_modules" / ".bin" / "renovate-config-validator"
    if binary.exists():
        return binary
    if shutil.which("npm") is None:
        return None
    staging = home.with_name(f"{home.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    done = subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(staging),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"renovate@{RENOVATE_VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"npm could not install renovate@{RENOVATE_VERSION}:\n{done.stderr.strip()}")
    staging.rename(home)  # whole or not at all: a broken install is never reused
    return binary


def main() -> int:
    binary = validator()
    if binary is None:
        print("renovate.json: no npm here; checked against Renovate's JSON schema instead")
        command = [
            str(Path(sys.executable).with_name("check-jsonschema")),
            "--builtin-schema",
            "vendor.renovate",
            str(CONFIG),
        ]
    else:
        print(f"renovate.json: renovate-config-validator {RENOVATE_VERSION} --strict")
        command = [str(binary), "--strict", "--no-global", str(CONFIG)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
