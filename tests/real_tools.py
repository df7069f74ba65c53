"""The real tools the tests judge rendered objects with: istioctl, helm and a kube-apiserver.

`make tools` (scripts/tools.py) puts them in .tools/bin; a test that needs one and does not
find it fails, naming the command that obtains it. Istio's charts are read from the release's
own source, istio.io/istio on the Go module proxy at the pin of model/istio_releases.py.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, dynamic

from model.control_plane import ISTIO_IMAGE_HUB
from model.istio_releases import ISTIO_MINORS

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "bin"
# Where each chart the program installs lives in istio.io/istio's tree.
CHART_SOURCES = {
    "base": "manifests/charts/base",
    "istiod": "manifests/charts/istio-control/istio-discovery",
    "gateway": "manifests/charts/gateway",
}


def tool(name: str) -> Path:
    """.tools/bin/<name>; the test fails if it was never obtained."""
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{name} is not obtained: run `make tools` (scripts/tools.py ensure {name})")
    return path


@functools.cache
def istio_source(minor: str) -> Path:
    """istio.io/istio at the pinned release of `minor`, from the Go module cache."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not on PATH: Istio's chart sources come from the Go module proxy")
    version = ISTIO_MINORS[minor].module_version
    with tempfile.TemporaryDirectory() as outside_any_module:
        done = subprocess.run(
            [go, "mod", "download", "-json", f"istio.io/istio@{version}"],
            cwd=outside_any_module,
            capture_output=True,
            text=True,
            check=False,
            env=os.environ | {"GOFLAGS": "-mod=mod"},
        )
    if done.returncode != 0:
        pytest.fail(f"go mod download istio.io/istio@{version}: {done.stdout}{done.stderr}")
    return Path(json.loads(done.stdout)["Dir"])


# Packaged charts for the whole test run, removed when it ends.
_PACKAGED = tempfile.TemporaryDirectory(prefix="istio-charts-")


@functools.cache
def packaged_chart(minor: str, chart: str) -> Path:
    """The chart as Istio's release ships it: its source with the release's version and images.

    istio/release-builder stamps Chart.yaml's version and appVersion and sets the images'
    hub and tag in values.yaml (the source says registry.istio.io/testing and latest).
    """
    release = ISTIO_MINORS[minor].files_read_at
    folder = Path(_PACKAGED.name) / f"{chart}-{release}"
    shutil.copytree(istio_source(minor) / CHART_SOURCES[chart], folder)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the module cache is read-only
    chart_file = folder / "Chart.yaml"
    text = re.sub(r"(?m)^(version|appVersion): 1\.0\.0$", rf"\1: {release}", chart_file.read_text())
    chart_file.write_text(text)
    values = folder / "values.yaml"
    text = re.sub(
        r"(?m)^(\s+hub:) registry\.istio\.io/testing$", rf"\1 {ISTIO_IMAGE_HUB}", values.read_text()
    )
    values.write_text(re.sub(r"(?m)^(\s+tag:) latest$", rf"\1 {release}", text))
    return folder


def helm_template(
    release: dict[str, Any], chart_dir: Path, kube_version: str
) -> list[dict[str, Any]]:
    """`helm template` of a helm.sh/v3 Release's inputs, with exactly the values it passes."""
    with tempfile.TemporaryDirectory() as scratch:
        values = Path(scratch) / "values.json"
        values.write_text(json.dumps(release.get("values") or {}))
        done = subprocess.run(
            [
                str(tool("helm")),
                "template",
                release["name"],
                str(chart_dir),
                "--namespace",
                release["namespace"],
                "--values",
                str(values),
                "--kube-version",
                kube_version,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 0, f"helm template {release['name']}: {done.stderr}"
    return [doc for doc in yaml.load_all(done.stdout, Loader=yaml.CSafeLoader) if doc]


@dataclass(frozen=True)
class IstioctlResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def istioctl(minor: str, *args: str, objects: Iterable[dict[str, Any]] = ()) -> IstioctlResult:
    """istioctl of `minor`; `{file}` in `args` is `objects` written as one YAML file."""
    with tempfile.TemporaryDirectory() as scratch:
        file = Path(scratch) / "objects.yaml"
        file.write_text(yaml.dump_all(list(objects), Dumper=yaml.CSafeDumper, sort_keys=False))
        command = [str(tool(f"istioctl-{minor}")), *(a.replace("{file}", str(file)) for a in args)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    shown = str(file)
    return IstioctlResult(
        done.returncode,
        done.stdout.replace(shown, "<objects>"),
        done.stderr.replace(shown, "<objects>"),
    )


@dataclass
class ApiServer:
    """A running kube-apiserver harness and a dynamic client logged in as cluster admin."""

    kubeconfig: Path
    client: Any  # kubernetes.dynamic.DynamicClient

    def resource(self, obj: dict[str, Any]) -> Any:
        return self.client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply with strict field validation (and `dryRun=All` when asked)."""
        extra = {"dry_run": "All"} if dry_run else {}
        namespace = obj["metadata"].get("namespace")
        applied = self.resource(obj).server_side_apply(
            body=obj,
            name=obj["metadata"]["name"],
            namespace=namespace,
            field_manager="bookinfo-mesh-tests",
            force_conflicts=True,
            query_params=[("fieldValidation", "Strict")],
            **extra,
        )
        return applied.to_dict()

    def get(self, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj["metadata"].get("namespace")
        return self.resource(obj).get(name=obj["metadata"]["name"], namespace=namespace).to_dict()

    def wait_established(self, crds: Iterable[dict[str, Any]]) -> None:
        """Until every CRD's API is served (its Established condition), or fail."""
        api = client.ApiextensionsV1Api(self.client.client)
        pending = {crd["metadata"]["name"] for crd in crds}
        for _ in range(200):
            for name in sorted(pending):
                status = api.read_custom_resource_definition(name).status
                if any(
                    c.type == "Established" and c.status == "True" for c in status.conditions or ()
                ):
                    pending.discard(name)
            if not pending:
                self.client.resources.invalidate_cache()  # discovery learns the new kinds
                return
            time.sleep(0.05)
        pytest.fail(f"CRDs never established: {sorted(pending)}")


# One client and no controllers: reads go straight to etcd, and no request waits in a priority
# queue. Together they made start-up cheaper (3.7 CPU-s to 2.8).
APISERVER_FLAGS = ("--watch-cache=false", "--enable-priority-and-fairness=false")


@contextmanager
def running_apiserver(folder: Path) -> Iterator[ApiServer]:
    """The harness started on loopback; stopped (stdin closed) afterwards."""
    kubeconfig = folder / "kubeconfig"
    log = folder / "apiserver.log"
    harness = [str(tool("apiserver")), "-kubeconfig", str(kubeconfig), "-log-file", str(log)]
    process = subprocess.Popen(
        [*harness, "--", *APISERVER_FLAGS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("ready "):
            pytest.fail(f"the apiserver harness did not start: {line!r}; log: {log}")
        api = config.new_client_from_config(str(kubeconfig))
        yield ApiServer(kubeconfig, dynamic.DynamicClient(api))
        api.close()
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
