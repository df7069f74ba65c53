"""Runs the real program under Pulumi's mock engine and records every registration."""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format

from bookinfo_mesh.stack_files import engine_config, load_engine_config, stack_file
from stacks import sdk_internals
from stacks.project import ROOT as PROJECT_ROOT
from stacks.project import project_name

SECRET = "[secret]"
UNKNOWN = "[unknown]"
_SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")
_UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# How many zones a region has is AWS's to say when `pulumi up` asks; offline every region
# answers with six, the most any region has, so no azCount that AWS may accept is refused
# here (the program still checks it against the real answer before creating anything).
MOCK_ZONE_LETTERS = "abcdef"
# Clearly not an address anyone can reach: the mock's answer for the gateway's NLB.
MOCK_LB_HOSTNAME = "mock-istio-ingressgateway.elb.{region}.amazonaws.com"


@dataclass(frozen=True)
class RegisteredResource:
    """One resource as the engine saw it: type, name, parent, dependencies and inputs."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    remote: bool
    read: bool  # a `.get()` of an existing object, not something the program creates
    protect: bool
    provider: str | None
    dependencies: tuple[str, ...]
    inputs: Mapping[str, Any]  # secrets replaced by "[secret]"


@dataclass(frozen=True)
class ProgramRun:
    """What one mocked `pulumi up` of a stack registered and exported."""

    stack: str
    config: Mapping[str, str]
    resources: tuple[RegisteredResource, ...]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def of_type(self, type_: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> RegisteredResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]


def _plain(value: Any) -> Any:
    """Protobuf Struct JSON -> plain data: whole floats back to ints, secrets masked."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG[0]) == _SECRET_SIG[1]:
            return SECRET
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == _UNKNOWN_VALUE:
        return UNKNOWN
    return value


class UnknownRegionError(ValueError):
    """aws:region names no AWS region: the AWS provider refuses to configure itself."""


@cache
def aws_regions() -> frozenset[str]:
    """Every region of every AWS partition, from botocore's endpoint data (AWS's own model)."""
    import botocore.session  # the tools' dependency; `pulumi up` never imports the engine

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


def check_region(region: str) -> None:
    """UnknownRegionError unless `region` is one AWS has."""
    if region not in aws_regions():
        raise UnknownRegionError(
            f"aws:region {region!r} is not an AWS region (botocore's endpoint data has "
            f"{len(aws_regions())}, e.g. ap-northeast-2, us-east-1); the AWS provider refuses it"
        )


def mock_id(name: str) -> str:
    """The id the mocks give a created resource; inputs that refer to it hold this value."""
    return f"{name}-id"


class _Mocks(pulumi.runtime.Mocks):
    """Answers what the program really asks of its providers, deterministically."""

    def __init__(self, region: str) -> None:
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        outputs = dict(args.inputs)
        if args.typ == "eks:index:Cluster":
            # A remote component: only it is registered; its kubeconfig feeds the provider.
            kubeconfig = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": args.inputs.get("name", args.name),
                        "cluster": {"server": "https://mock.eks.amazonaws.com"},
                    }
                ],
            }
            outputs |= {"kubeconfig": kubeconfig, "kubeconfigJson": json.dumps(kubeconfig)}
        elif args.typ == "kubernetes:helm.sh/v3:Release":
            outputs["status"] = {
                "name": args.inputs.get("name"),
                "namespace": args.inputs.get("namespace"),
                "chart": args.inputs.get("chart"),
                "version": args.inputs.get("version"),
                "status": "deployed",
            }
        elif args.typ == "kubernetes:core/v1:Service" and args.resource_id:
            namespace, _, name = args.resource_id.partition("/")
            outputs = {
                "metadata": {"name": name, "namespace": namespace},
                "status": {
                    "loadBalancer": {
                        "ingress": [{"hostname": MOCK_LB_HOSTNAME.format(region=self.region)}]
                    }
                },
            }
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            outputs["latestVersion"] = 1
        if args.typ.startswith("aws:"):
            outputs.setdefault("arn", f"arn:aws:mock:{self.region}::{args.name}")
        return args.resource_id or mock_id(args.name), outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            check_region(self.region)
            letters = MOCK_ZONE_LETTERS
            return {
                "id": self.region,
                "names": [f"{self.region}{c}" for c in letters],
                "zoneIds": [f"{self.region}-az{i + 1}" for i in range(len(letters))],
            }
        if args.token == "aws:eks/getAddonVersion:getAddonVersion":
            # Obviously not a real version, but one that follows the Kubernetes version.
            kubernetes = args.args.get("kubernetesVersion")
            return {"version": f"mock-{args.args.get('addonName')}-for-{kubernetes}"}
        return {}


class _RecordingMonitor(sdk_internals.MockMonitor):
    """The stock mock monitor, plus a record of parents, dependencies and options.

    Resource references are turned off: with them, a resource passed as an input
    (ManagedNodeGroup(cluster=...)) is rehydrated on another thread and the run hangs.
    """

    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.records: list[RegisteredResource] = []

    def SupportsFeature(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.id == "resourceReferences":
            return type("SupportsFeatureResponse", (object,), {"hasSupport": False})
        return super().SupportsFeature(request)

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802
        info = super().GetDeploymentInfo(request)
        features = [
            f for f in info.supportedFeatures if f != sdk_internals.RESOURCE_REFERENCES_FEATURE
        ]
        return type(info)(supportedFeatures=features)

    def _record(self, request: Any, urn: str, read: bool, inputs: Any) -> None:
        self.records.append(
            RegisteredResource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=read or bool(request.custom),
                remote=not read and bool(request.remote),
                read=read,
                protect=not read and bool(request.protect),
                provider=request.provider or None,
                dependencies=tuple(sorted(set(getattr(request, "dependencies", ())))),
                inputs=_plain(json_format.MessageToDict(inputs)),
            )
        )

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, response.urn, read=False, inputs=request.object)
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802
        response = super().ReadResource(request)
        self._record(request, response.urn, read=True, inputs=request.properties)
        return response


async def _resolve(value: Any) -> Any:
    output = pulumi.Output.from_input(value)
    resolved = await output.future()
    return SECRET if await output.is_secret() else resolved


def run_under_mocks(
    func: Callable[[], object],
    stack: str = "test",
    config: Mapping[str, str] | None = None,
    secret_keys: Sequence[str] = (),
    project: str | None = None,
) -> ProgramRun:
    """Run `func` as a Pulumi program (of `project`, this one by default) under recording
    mocks and wait for every registration."""
    config = dict(config or {})
    mocks = _Mocks(config.get("aws:region", "ap-northeast-2"))
    monitor = _RecordingMonitor(mocks)
    sdk_internals.forget_root_stack()
    pulumi.runtime.set_mocks(
        mocks, project=project or project_name(), stack=stack, preview=False, monitor=monitor
    )
    pulumi.runtime.set_all_config(config, list(secret_keys))
    sdk_internals.clear_pending_work()
    try:
        sdk_internals.run_to_completion(func)
    except Exception as error:  # noqa: BLE001 the caller decides what a failed run means
        return ProgramRun(stack, config, tuple(monitor.records), error=error)
    exported = sdk_internals.stack_outputs()
    outputs = {k: sdk_internals.wait_for(_resolve(v)) for k, v in sorted(exported.items())}
    records = tuple(sorted(monitor.records, key=lambda r: r.urn))
    return ProgramRun(stack, config, records, outputs=outputs)


def run_program(
    stack: str,
    overrides: Mapping[str, str] | None = None,
    root: Path | None = None,
    stack_text: str | None = None,
) -> ProgramRun:
    """Run the __main__.py of the project at `root` (this one by default) for `stack`, with
    its config as `pulumi up` would see it (from `stack_text` instead of the stack file if
    given: a candidate edit), under mocks."""
    if stack_text is None:
        config, secret_keys = load_engine_config(stack, overrides, root)
    else:
        config, secret_keys = engine_config(
            stack_text, stack_file(stack, root).name, overrides, root
        )
    return run_project(root or PROJECT_ROOT, stack, config, tuple(secret_keys))


def run_project(
    folder: Path, stack: str, config: Mapping[str, str], secret_keys: tuple[str, ...]
) -> ProgramRun:
    """Run the __main__.py of the project in `folder` for `stack` under mocks, with the
    engine config `config` (every key qualified, as `pulumi up` hands it over): the run
    depends on nothing else."""
    return run_under_mocks(
        lambda: _run_main(folder), stack, config, secret_keys, project_name(folder)
    )


def _run_main(folder: Path) -> None:
    """Execute the project's __main__.py as the main module, as Pulumi's Python language
    host does."""
    runpy.run_path(str(folder / "__main__.py"), run_name="__main__")
