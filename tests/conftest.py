"""Test-wide settings: hypothesis runs the same examples everywhere, program runs are shared
(tests/programs.py), one cluster per stack; mutation runs' needs.

The SDKs and the Kubernetes client are imported where a hook or fixture first needs them,
never here: xdist's controller loads this file before it starts the workers, and needs none.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from tests.cluster_stacks import STACKS

if TYPE_CHECKING:
    from tests.mesh_cluster import Stack


# A per-example deadline would make timing, not behaviour, fail a test; a fixed seed makes
# a failure reproduce on every run.
settings.register_profile("bookinfo", deadline=None, derandomize=True)
settings.load_profile("bookinfo")
# `make mutation` runs the suite once per mutant and selects this profile on its command line
# (pyproject's [tool.mutmut]): fewer examples per property keep a run in minutes, and a weaker
# suite can only lower the score, never inflate it.
settings.register_profile("mutation", parent=settings.get_profile("bookinfo"), max_examples=25)


def _new_event_loop_in_child() -> None:
    """Give a forked child its own event loop.

    The Pulumi SDK sends every RPC through the event loop's default thread pool. A child of
    fork() (mutmut forks a worker per mutant) inherits the parent's loop and pool but not the
    pool's threads, so its first RPC would wait forever.
    """
    asyncio.set_event_loop(asyncio.new_event_loop())


os.register_at_fork(after_in_child=_new_event_loop_in_child)


def _exec_main(folder: Path) -> None:
    """__main__.py compiled and executed here rather than by runpy, whose frames are frozen
    modules without a file that mutmut's test-to-function tracking cannot resolve."""
    program = folder / "__main__.py"
    code = compile(program.read_text(), str(program), "exec")
    exec(code, {"__name__": "__main__", "__file__": str(program), "__builtins__": __builtins__})


def pytest_configure(config: pytest.Config) -> None:
    # mutmut sets MUTANT_UNDER_TEST in every run it makes of the suite.
    if "MUTANT_UNDER_TEST" in os.environ:
        from bookinfo_mesh import engine

        engine._run_main = _exec_main


@pytest.fixture(scope="session", autouse=True)
def shared_program_runs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test's project runs go through tests/programs.py, except in mutation runs: mutmut
    forks its workers from one process, which would hand them runs of the code unmutated."""
    if "MUTANT_UNDER_TEST" in os.environ:
        return
    from tests import programs

    # A worker's base folder is popen-gwN inside the session's; without xdist, the session's.
    base = tmp_path_factory.getbasetemp()
    programs.install(base.parent if "PYTEST_XDIST_WORKER" in os.environ else base)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep the collector off what every test shares: the SDKs' modules and classes, a quarter
    of a million objects, and the collected tests. Rarer young collections too. A run of
    the program spent a fifth of its time in collections that found nothing to free."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


@pytest.hookimpl(wrapper=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Generator[None, int, int]:
    """`-n auto`: one worker more than the cores xdist counts, unless
    PYTEST_XDIST_AUTO_NUM_WORKERS sets the number. A part of the suite waits on servers
    (Prometheus's first scrapes, the verify doubles' delays, the kube-apiservers), and the
    extra worker keeps the cores busy meanwhile: 39 s against 45 s on 2 cores, warm."""
    cores = yield
    # xdist reads an empty value as unset, and so does this.
    return cores if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") else cores + 1


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    from tests import programs

    programs.share_runs_in(item)
    try:
        return (yield)
    finally:
        programs.stop_sharing()


# Each stack's tests go to one worker, which starts that stack's kube-apiserver once.
@pytest.fixture(
    scope="session",
    params=[pytest.param(s, marks=pytest.mark.xdist_group(f"cluster-{s}")) for s in STACKS],
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack's first mode installed on a fresh kube-apiserver, with injected pods."""
    from tests.mesh_cluster import installed_stack

    yield from installed_stack(request.param, tmp_path_factory)
