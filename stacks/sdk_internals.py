"""The one module that reaches into Pulumi SDK internals; tests/test_sdk_internals.py pins them.

Two needs have no public API. The program must see every key set in its namespace, and
`pulumi.Config` reads one named key at a time, so a mistyped key (`modee`) would go
unnoticed. The offline tools must run a program under mocks to completion, start each run
afresh, and read the stack's exports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pulumi.runtime import config as runtime_config
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import ROOT, SETTINGS, get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

T = TypeVar("T")

__all__ = [
    "RESOURCE_REFERENCES_FEATURE",
    "MockMonitor",
    "clear_pending_work",
    "config_keys_in_namespace",
    "forget_root_stack",
    "run_to_completion",
    "stack_outputs",
    "wait_for",
]

RESOURCE_REFERENCES_FEATURE = resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES


def config_keys_in_namespace(namespace: str) -> list[str]:
    """Every config key set for the stack in `namespace`, without the "namespace:" prefix."""
    prefix = f"{namespace}:"
    every_key = {*runtime_config.get_config_env(), *runtime_config.CONFIG.get()}
    return sorted(key.removeprefix(prefix) for key in every_key if key.startswith(prefix))


def forget_root_stack() -> None:
    """The root stack survives between mocked runs in one process; a new run needs none."""
    ROOT.set(None)


def clear_pending_work() -> None:
    """Drop RPCs and outputs a previous mocked run in this process left behind."""
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()


def run_to_completion(program: Callable[[], object]) -> None:
    """Run `program` as a Pulumi program and wait until every registration has finished."""
    _sync_await(run_pulumi_func(program))


def wait_for(awaitable: Awaitable[T]) -> T:
    """The result of `awaitable`, awaited on the SDK's own event loop."""
    return _sync_await(awaitable)


def stack_outputs() -> Mapping[str, Any]:
    """What the program exported with `pulumi.export`, as Outputs."""
    return dict(getattr(get_root_resource(), "outputs", None) or {})
