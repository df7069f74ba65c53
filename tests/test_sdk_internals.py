"""Each Pulumi SDK internal that stacks.sdk_internals wraps still behaves as the project needs.

An SDK upgrade that moves or changes one of them fails here, by name, instead of hanging a
mocked run or silently letting a mistyped config key through.
"""

from __future__ import annotations

import pulumi
import pytest

from stacks import sdk_internals


class EchoMocks(pulumi.runtime.Mocks):
    """Every resource gets its inputs back as outputs."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


class Thing(pulumi.CustomResource):
    def __init__(self, name: str, size: int) -> None:
        super().__init__("test:index:Thing", name, {"size": size})


def start(config: dict[str, str]) -> None:
    sdk_internals.forget_root_stack()
    pulumi.runtime.set_mocks(EchoMocks(), project="proj", stack="test", preview=False)
    pulumi.runtime.set_all_config(config)
    sdk_internals.clear_pending_work()


def test_every_key_set_in_a_namespace_is_listed_even_ones_no_code_asks_for() -> None:
    start({"proj:mode": "v3", "proj:modee": "v1", "aws:region": "eu-west-1"})
    assert sdk_internals.config_keys_in_namespace("proj") == ["mode", "modee"], (
        "the typo'd key must be visible, and other namespaces' keys must not"
    )


def test_a_program_runs_to_completion_and_its_exports_can_be_read() -> None:
    start({})
    registered: list[str] = []

    def program() -> None:
        thing = Thing("t", 3)
        thing.urn.apply(registered.append)
        pulumi.export("size", pulumi.Output.from_input(thing).apply(lambda _: 3))

    sdk_internals.run_to_completion(program)
    assert len(registered) == 1, "run_to_completion returned before the registration finished"
    outputs = sdk_internals.stack_outputs()
    assert set(outputs) == {"size"}, f"exports read back: {set(outputs)}"
    assert sdk_internals.wait_for(outputs["size"].future()) == 3


def test_a_second_run_in_one_process_starts_from_a_fresh_root_stack() -> None:
    start({})
    sdk_internals.run_to_completion(lambda: pulumi.export("first", 1))
    start({})
    sdk_internals.run_to_completion(lambda: pulumi.export("second", 2))
    assert set(sdk_internals.stack_outputs()) == {"second"}, "the first run's stack survived"


@pytest.mark.parametrize(
    "method", ["SupportsFeature", "GetDeploymentInfo", "RegisterResource", "ReadResource"]
)
def test_the_mock_monitor_still_has_the_methods_the_recording_engine_overrides(
    method: str,
) -> None:
    assert callable(getattr(sdk_internals.MockMonitor, method, None)), (
        f"MockMonitor.{method} is gone: bookinfo_mesh.engine's recording monitor overrides it"
    )


def test_resource_references_are_still_a_feature_the_engine_can_switch_off() -> None:
    monitor = sdk_internals.MockMonitor(EchoMocks())
    info = monitor.GetDeploymentInfo(None)
    assert sdk_internals.RESOURCE_REFERENCES_FEATURE in info.supportedFeatures, (
        "the mock monitor no longer announces resource references; the engine's switch is moot"
    )
