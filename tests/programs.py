"""Program runs shared by a whole test session: each project, stack and config runs once.

A run depends only on the project's __main__.py and name, the stack and its engine config
(what `bookinfo_mesh.engine.run_project` takes), so every test that reads a run, or runs a
command that renders, shares the one run of its inputs: from memory in its worker, and from the
session's folder when another worker ran it first (a failed run stays in its worker). A test
that patches code or the mocks (it uses `monkeypatch`) or is about running itself (marked
`fresh_program_runs`) runs every program afresh, and mutation runs never share: each mutant
must run its own code.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import hashlib
import pickle
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from bookinfo_mesh import engine
from bookinfo_mesh.engine import ProgramRun, run_program
from bookinfo_mesh.render import Rendered, render_run
from stacks.project import project_name

FRESH_MARKER = "fresh_program_runs"  # declared in pyproject.toml
_RunKey = tuple[str, str, str, str, tuple[tuple[str, str], ...], tuple[str, ...]]
_runs: dict[_RunKey, ProgramRun] = {}
_sharing = False
_run_project = engine.run_project
_folder: Path | None = None  # where the session's workers leave their runs for each other


def _shared_run_project(
    folder: Path, stack: str, config: Mapping[str, str], secret_keys: tuple[str, ...]
) -> ProgramRun:
    """engine.run_project, answered from an earlier run of the same inputs where the
    running test may share one. A copy: no test can change what another one reads."""
    if not _sharing:
        return _run_project(folder, stack, config, secret_keys)
    program = (folder / "__main__.py").read_bytes()
    key = (
        str(folder.resolve()),
        hashlib.sha256(program).hexdigest(),
        project_name(folder),
        stack,
        tuple(sorted(config.items())),
        tuple(secret_keys),
    )
    if key not in _runs:
        _runs[key] = _from_other_workers(key) or _on_a_thread_of_its_own(
            lambda: _run_project(folder, stack, config, secret_keys)
        )
        _leave_for_other_workers(key, _runs[key])
    run = _runs[key]
    return dataclasses.replace(
        run,
        config=dict(run.config),
        resources=copy.deepcopy(run.resources),
        outputs=copy.deepcopy(run.outputs),
    )


def _on_a_thread_of_its_own(run: Callable[[], ProgramRun]) -> ProgramRun:
    """`run()` on a new thread, with an event loop of its own.

    The SDK records where each resource is declared by walking the whole stack, the test's
    pytest and xdist frames too. A new thread's stack starts at the run.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="program-run") as thread:
        return thread.submit(_with_a_loop_of_its_own, run).result()


def _with_a_loop_of_its_own(run: Callable[[], ProgramRun]) -> ProgramRun:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return run()
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def _path_of(key: _RunKey) -> Path | None:
    if _folder is None:
        return None
    return _folder / f"{hashlib.sha256(repr(key).encode()).hexdigest()}.pickle"


def _from_other_workers(key: _RunKey) -> ProgramRun | None:
    path = _path_of(key)
    if path is None or not path.exists():
        return None
    run: ProgramRun = pickle.loads(path.read_bytes())
    return run


def _leave_for_other_workers(key: _RunKey, run: ProgramRun) -> None:
    """Written whole (a rename) or not at all, so a reader never sees half a run."""
    path = _path_of(key)
    if path is None or run.error is not None or path.exists():
        return
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as partial:
        pickle.dump(run, partial)
    Path(partial.name).replace(path)


def share_runs_in(item: pytest.Item) -> None:
    """Let the test `item` share runs, unless it patches or is about running itself."""
    global _sharing
    _sharing = "monkeypatch" not in item.fixturenames and not item.get_closest_marker(FRESH_MARKER)


def stop_sharing() -> None:
    global _sharing
    _sharing = False


def install(session_folder: Path) -> None:
    """Route the engine's project runs through the shared ones, kept for the session's
    other workers in `session_folder`."""
    global _folder
    _folder = session_folder / "program-runs"
    _folder.mkdir(exist_ok=True)
    engine.run_project = _shared_run_project


@cache
def _program(stack: str, overrides: tuple[tuple[str, str], ...]) -> ProgramRun:
    return run_program(stack, dict(overrides))


@cache
def _rendered(stack: str, overrides: tuple[tuple[str, str], ...]) -> Rendered:
    return render_run(_program(stack, overrides))


def shared_run(stack: str, overrides: Mapping[str, str] | None = None) -> ProgramRun:
    """`run_program(stack, overrides)`, run once per session."""
    return _program(stack, tuple(sorted((overrides or {}).items())))


def shared_render(stack: str, overrides: Mapping[str, str] | None = None) -> Rendered:
    """`render_run(run_program(stack, overrides))`, rendered once per session."""
    return _rendered(stack, tuple(sorted((overrides or {}).items())))
