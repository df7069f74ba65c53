"""Writing outputs whole or not at all: a render's folder and a single report file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from bookinfo_mesh.errors import ToolError


class OutputError(ToolError):
    """An output place that cannot take the output (a file, a missing or read-only folder)."""


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder` itself, so two writers of one output take turns."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _names_in(out: Path) -> list[str] | None:
    """The names in folder `out`, or None when there is no `out`.

    Read in one go: another writer may swap `out` for its own between two looks, and for a
    moment there is none; that is an absent folder, not an error.
    """
    try:
        return [p.name for p in out.iterdir()]
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise OutputError(f"--out {out} is an existing file, not a folder") from None
    except OSError as error:
        raise OutputError(f"--out {out}: {error.strerror or error}") from None


def check_output_dir(out: Path, expected: frozenset[str]) -> None:
    """Refuse, before any work, an `out` that write_dir could not replace safely."""
    names = _names_in(out)
    if names is not None:
        strangers = sorted(name for name in names if name not in expected)
        if strangers:
            raise OutputError(
                f"--out {out} holds files a render did not write ({', '.join(strangers[:3])}); "
                "it would be replaced whole, so name an empty or a render's folder"
            )
    parent = _existing_ancestor(out.parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out}: cannot write in {parent}")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def write_dir(out: Path, files: Mapping[str, str], expected: frozenset[str]) -> None:
    """Make `out` hold exactly `files`, all at once: readers see the old set or the new one.

    The files are written to a sibling temporary folder, then swapped in by renames under a
    lock on the parent; an existing `out` is renamed aside first and removed after.
    """
    check_output_dir(out, expected)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the render from other users
    except OSError as error:
        raise OutputError(f"--out {out}: {error.strerror or error}") from None
    try:
        for name, text in files.items():
            (staging / name).write_text(text)
        with _locked(out.parent):
            check_output_dir(out, expected)  # another render may have changed it meanwhile
            old = None
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
                out.rename(old / "out")
            staging.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except OSError as error:
        raise OutputError(f"--out {out}: {error.strerror or error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_output_file(path: Path, option: str) -> None:
    """Refuse, before any work, a place write_file could not write a file to."""
    if not str(path) or path.name in ("", ".", ".."):
        raise OutputError(f"{option} needs a file name, got {str(path)!r}")
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder, not a file")
    if not path.parent.is_dir():
        raise OutputError(f"{option} {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot write in {path.parent}")


def write_file(path: Path, text: str, option: str) -> None:
    """Write `path` (UTF-8, text as given) by renaming a finished sibling temporary file over
    it: readers see the old file or the new one. A file it replaces keeps its permissions."""
    check_output_file(path, option)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise OutputError(f"{option} {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode())
        if path.exists():
            shutil.copymode(path, tmp)
        else:
            Path(tmp).chmod(0o644)  # mkstemp's 0600 is for secrets; a report is not one
        Path(tmp).replace(path)
    except OSError as error:
        raise OutputError(f"{option} {path}: {error.strerror or error}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
