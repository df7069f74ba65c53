"""Program runs shared by a whole test session: each stack and config is run once per worker.

For tests that only read a run. A test that patches the program, its components or the mocks
calls bookinfo_mesh.engine.run_program itself, so nothing it sees is cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from bookinfo_mesh.engine import ProgramRun, run_program
from bookinfo_mesh.render import Rendered, render_run


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
