"""A stack as a cluster would hold it: the program's objects and its charts, rendered by helm,
installed on a real kube-apiserver with injected pods (`installed_stack`)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.dynamic.exceptions import ApiException

from bookinfo_mesh.render import Rendered, render_run
from model.control_plane import Revision
from model.istio_releases import parse_release
from model.routing import MODES
from tests.programs import shared_run
from tests.real_tools import (
    CHART_SOURCES,
    ApiServer,
    helm_template,
    istioctl,
    packaged_chart,
    running_apiserver,
)

CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "MutatingWebhookConfiguration",
    "Namespace",
    "ValidatingWebhookConfiguration",
}
# istioctl's lines: `Error [IST0173] (DestinationRule bookinfo/ratings) The Subset ...`.
MESSAGE = re.compile(r"^(Error|Warning|Info) \[(IST\d{4})\] \((\w+) ([\w./-]+)(?: [^)]*)?\) (.*)$")


# Production refuses fault modes unless they are allowed on purpose; they are here.
FAULT_MODES_ALLOWED = {"allowFaultInjection": "true"}


@cache
def rendered(stack: str, mode: str) -> Rendered:
    overrides = {"mode": mode} | (FAULT_MODES_ALLOWED if stack == "prod" else {})
    run = shared_run(stack, overrides)
    assert run.error is None, f"{stack} {mode}: {run.error}"
    return render_run(run)


def releases(render: Rendered) -> dict[str, dict[str, Any]]:
    """The helm.sh/v3 Releases of Istio's charts the program registers, by chart. The
    observability charts are not among them: their sources are in no repository this
    machine's proxies serve (tests/test_observability.py checks their values)."""
    return {
        r.inputs["chart"]: r.inputs
        for r in render.resources
        if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["chart"] in CHART_SOURCES
    }


def minor_of(render: Rendered) -> str:
    return parse_release(render.summary.config["istioVersion"]).minor


def revision_of(render: Rendered) -> str:
    """The istiod revision the stack's workloads use ("1-31")."""
    return Revision(parse_release(render.summary.config["istioVersion"])).name


@dataclass
class Stack:
    """A stack's charts rendered by helm, and a kube-apiserver holding everything it installs."""

    name: str
    minor: str
    revision: str
    charts: dict[str, list[dict[str, Any]]]
    api: ApiServer
    pods: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chart_objects(self) -> list[dict[str, Any]]:
        return [obj for objects in self.charts.values() for obj in objects]

    def analyze_live(self) -> list[tuple[str, str, str, str, str]]:
        """istioctl analyze of everything on the server: (level, code, kind, name, text)."""
        result = istioctl(
            self.minor, "analyze", "-A", "--revision", self.revision,
            "--kubeconfig", str(self.api.kubeconfig),
        )  # fmt: skip
        assert result.code in (0, 79), result.output  # 79: issues found, listed below
        return parsed_messages(result.stdout)


def parsed_messages(output: str) -> list[tuple[str, str, str, str, str]]:
    found = [MESSAGE.match(line) for line in output.splitlines()]
    return [m.groups() for m in found if m is not None]  # type: ignore[misc]


@cache
def chart_objects(stack: str) -> dict[str, list[dict[str, Any]]]:
    """Each Release as `helm template` renders it, namespaced objects in its namespace.

    Every mode passes the Releases the same inputs (tested by test_a_mode_switch_...).
    """
    render = rendered(stack, MODES[0])
    charts = {}
    for chart, release in releases(render).items():
        folder = packaged_chart(minor_of(render), chart)
        objects = helm_template(release, folder, render.summary.kubernetes_version)
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"].setdefault("namespace", release["namespace"])
        charts[chart] = objects
    return charts


def injected_pods(stack: Stack, deployments: list[dict[str, Any]], scratch: Path) -> list[dict]:
    """The pods the Deployments' ReplicaSets would create, injected by istioctl kube-inject with
    the istiod chart's own injection config, as istiod's webhook would inject them."""
    maps = {o["metadata"]["name"]: o for o in stack.charts["istiod"] if o["kind"] == "ConfigMap"}
    injector = maps[f"istio-sidecar-injector-{stack.revision}"]["data"]
    files = {
        "inject.yaml": injector["config"],
        "values.json": injector["values"],
        "mesh.yaml": maps[f"istio-{stack.revision}"]["data"]["mesh"],
    }
    for name, text in files.items():
        (scratch / name).write_text(text)
    result = istioctl(
        stack.minor, "kube-inject", "-f", "{file}", "--kubeconfig", str(stack.api.kubeconfig),
        "--injectConfigFile", str(scratch / "inject.yaml"),
        "--valuesFile", str(scratch / "values.json"),
        "--meshConfigFile", str(scratch / "mesh.yaml"),
        objects=deployments,
    )  # fmt: skip
    assert result.code == 0, result.output
    pods = []
    for deployment in yaml.load_all(result.stdout, Loader=yaml.CSafeLoader):
        if not isinstance(deployment, dict):
            continue
        template = deployment["spec"]["template"]
        metadata = template["metadata"]
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{deployment['metadata']['name']}-0",
                    "namespace": deployment["metadata"]["namespace"],
                    "labels": metadata.get("labels") or {},
                    "annotations": metadata.get("annotations") or {},
                },
                "spec": template["spec"],
            }
        )
    return pods


def install(api: ApiServer, objects: list[dict[str, Any]]) -> list[str]:
    """Apply `objects` for real in the order a cluster needs them; the refusals, if any.

    CRDs first (their kinds served before any custom object), then namespaces, then the rest;
    mutating webhooks last: without an istiod to answer them they would refuse every pod.
    """
    refusals = []
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    for crd in crds:
        api.apply(crd)
    api.wait_established(crds)
    first = [o for o in objects if o["kind"] == "Namespace"]
    last = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
    rest = [o for o in objects if o not in crds and o not in first and o not in last]
    for obj in [*first, *rest, *last]:
        try:
            api.apply(obj)
        except ApiException as error:
            refusals.append(f"{obj['kind']} {obj['metadata']['name']}: {error.body or error}")
    return refusals


def dry_run_refusals(api: ApiServer, objects: list[dict[str, Any]]) -> list[str]:
    """What a server-side apply with dryRun=All and strict field validation refuses."""
    refusals = []
    for obj in objects:
        try:
            api.apply(obj, dry_run=True)
        except ApiException as error:
            refusals.append(f"{obj['kind']} {obj['metadata']['name']}: {error.body or error}")
    return refusals


def installed_stack(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack's first mode installed on a fresh kube-apiserver, with injected pods (the
    session fixture `stack` of tests/conftest.py)."""
    scratch = tmp_path_factory.mktemp(f"cluster-{name}")
    render = rendered(name, MODES[0])
    charts = copy.deepcopy(chart_objects(name))
    with running_apiserver(scratch) as api:
        installed = Stack(name, minor_of(render), revision_of(render), charts, api)
        objects = [*installed.chart_objects, *render.manifests]
        without_webhooks = [o for o in objects if o["kind"] != "MutatingWebhookConfiguration"]
        assert install(api, without_webhooks) == []
        deployments = [o for o in objects if o["kind"] == "Deployment"]
        installed.pods = injected_pods(installed, deployments, scratch)
        for pod in installed.pods:
            api.apply(pod)
        assert (
            install(api, [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]) == []
        )
        yield installed
