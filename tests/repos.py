"""Git repositories of a test's own, for the commands that read or write a project's history."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(root: Path, *argv: str) -> str:
    """What `git -C root ARGV` prints; the test fails with git's message if it fails."""
    done = subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def one_commit_repository(folder: Path, author: str, message: str) -> Path:
    """`folder` as a git repository of its own, holding what it has now in one commit by
    `author` (also the identity of later commits there)."""
    git(folder, "init", "-q")
    git(folder, "config", "user.name", author)
    git(folder, "config", "user.email", f"{author}@example.com")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", message)
    return folder
