"""Git, as the commands that read a project's history or commit to it run it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bookinfo_mesh.errors import ToolError


def git(root: Path, *argv: str, error: type[ToolError] = ToolError, where: str = "") -> str:
    """What `git -C root ARGV` prints; `error` with git's own message, on one line, if it
    fails (`where` is said after the subcommand: " in <folder>")."""
    done = subprocess.run(
        ["git", "-C", str(root), *argv], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise error(f"git {argv[0]}{where}: {done.stderr.strip() or 'failed'}")
    return done.stdout
