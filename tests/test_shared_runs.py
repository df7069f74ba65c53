"""The session's shared program runs (tests/programs.py): one run per input, handed out as
copies, and never to a test that patches."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bookinfo_mesh import engine
from bookinfo_mesh.engine import ProgramRun
from bookinfo_mesh.stack_files import load_engine_config
from stacks.project import ROOT
from tests import programs


def dev_inputs(folder: Path = ROOT) -> tuple[Path, str, dict[str, str], tuple[str, ...]]:
    config, secret_keys = load_engine_config("dev")
    return folder, "dev", config, tuple(secret_keys)


def counted_runs() -> list[Path]:
    """Swap in a record of the runs that really happen (each one's folder); undone by
    restore_runs()."""
    calls: list[Path] = []
    real = programs._run_project

    def counting(folder: Path, *rest: object) -> ProgramRun:
        calls.append(folder)
        return real(folder, *rest)  # type: ignore[arg-type]

    programs._run_project = counting  # type: ignore[assignment]
    return calls


@pytest.fixture
def restore_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The real runner and the runs shared so far as they were before the test, which shares
    through a folder of its own."""
    real, runs, folder = programs._run_project, dict(programs._runs), programs._folder
    programs._folder = tmp_path_factory.mktemp("program-runs")
    yield
    programs._run_project, programs._folder = real, folder
    programs._runs.clear()
    programs._runs.update(runs)


def test_the_engine_runs_projects_through_the_shared_runs() -> None:
    assert engine.run_project is programs._shared_run_project


def test_the_same_inputs_run_once_and_each_caller_gets_its_own_copy(restore_runs) -> None:
    programs._runs.clear()
    calls = counted_runs()
    first = engine.run_project(*dev_inputs())
    first.resources[0].inputs["tampered"] = True  # type: ignore[index]
    second = engine.run_project(*dev_inputs())
    assert len(calls) == 1
    assert [r.urn for r in second.resources] == [r.urn for r in first.resources]
    assert "tampered" not in second.resources[0].inputs


def test_another_main_py_is_another_run(restore_runs, tmp_path: Path) -> None:
    shutil.copy(ROOT / "__main__.py", tmp_path / "__main__.py")
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    calls = counted_runs()
    engine.run_project(*dev_inputs(tmp_path))
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text() + "\n# edited\n")
    engine.run_project(*dev_inputs(tmp_path))
    assert calls == [tmp_path, tmp_path]


def test_a_test_that_patches_shares_nothing(restore_runs, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counted_runs()
    engine.run_project(*dev_inputs())
    engine.run_project(*dev_inputs())
    assert len(calls) == 2


@pytest.mark.fresh_program_runs
def test_a_test_marked_fresh_shares_nothing(restore_runs) -> None:
    calls = counted_runs()
    engine.run_project(*dev_inputs())
    engine.run_project(*dev_inputs())
    assert len(calls) == 2


def test_a_run_another_worker_left_is_read_back_whole(restore_runs) -> None:
    programs._runs.clear()
    calls = counted_runs()
    first = engine.run_project(*dev_inputs())
    programs._runs.clear()  # as a worker that never ran it sees the session
    second = engine.run_project(*dev_inputs())
    assert len(calls) == 1
    assert second == first
