"""Observability built alone under recording mocks: pinned charts, requests, persistence on
production only, and nothing reachable from outside the cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest

from bookinfo_mesh.engine import ProgramRun, run_under_mocks
from components.observability import EBS_CSI_POLICY_ARN, Observability, ObservabilityArgs
from model.observability import (
    CHARTS,
    GRAFANA_PORT,
    ISTIO_DASHBOARDS,
    KIALI_PORT,
    NAMESPACE,
    PROMETHEUS_PORT,
    PROMETHEUS_URL,
    STORAGE_CLASS,
    grafana_values,
    kiali_values,
    namespace_manifest,
    prometheus_values,
)

RELEASE = "kubernetes:helm.sh/v3:Release"
ADDON = "aws:eks/addon:Addon"
# Chart versions as Helm takes them: exact semver, so a release never drifts.
EXACT = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")


def build(persistent: bool) -> ProgramRun:
    def program() -> None:
        Observability(
            "observability",
            ObservabilityArgs(
                cluster_name=pulumi.Output.from_input("bookinfo-test"),
                kubernetes_version="1.35",
                istio_release="1.31.0",
                persistent=persistent,
            ),
        )

    run = run_under_mocks(program)
    assert run.error is None, f"building the component failed: {run.error!r}"
    return run


def releases(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: dict(r.inputs) for r in run.of_type(RELEASE)}


@pytest.mark.parametrize("persistent", [False, True], ids=["dev", "prod"])
def test_three_pinned_releases_in_their_own_namespace(persistent: bool) -> None:
    found = releases(build(persistent))
    assert set(found) == {c.release for c in CHARTS}
    for chart in CHARTS:
        release = found[chart.release]
        assert (release["chart"], release["version"]) == (chart.name, chart.version)
        assert EXACT.fullmatch(chart.version), chart
        assert release["repositoryOpts"]["repo"] == chart.repository
        assert release["namespace"] == NAMESPACE


CHECKED = json.loads((Path(__file__).parent / "data" / "observability_charts.json").read_text())
PORTS = {"prometheus": PROMETHEUS_PORT, "grafana": GRAFANA_PORT, "kiali": KIALI_PORT}


def _value_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths of a chart's values down to each scalar or list (one value to Helm)."""
    if not isinstance(value, dict):
        return [path]
    return [p for k, v in value.items() for p in _value_paths(v, f"{path}.{k}" if path else k)]


@pytest.mark.parametrize("production", [False, True], ids=["dev", "prod"])
def test_every_value_is_one_its_chart_was_found_to_read(production: bool) -> None:
    """Helm ignores a key no template reads: each path must be among those checked against
    the chart's source at its pinned version (tests/data/observability_charts.json)."""
    values = {
        "prometheus": prometheus_values(production),
        "grafana": grafana_values(production, "1.31.0"),
        "kiali-server": kiali_values(),
    }
    for chart in CHARTS:
        checked = CHECKED["charts"][chart.name]
        assert checked["version"] == chart.version, f"{chart.name}: pin moved; check it again"
        assert (checked["service"]["name"], checked["service"]["port"]) == (
            chart.release,
            PORTS[chart.release],
        )
        paths = {
            re.sub(r"^dashboards\.istio\.[^.]+\.url$", "dashboards.istio.*.url", p)
            for p in _value_paths(values[chart.name])
        }
        unchecked = paths - set(checked["valuePaths"])
        assert not unchecked, f"{chart.name}: values not checked against the chart: {unchecked}"


def test_the_namespace_says_it_has_no_sidecars() -> None:
    """istioctl analyze's IST0102 asks for an explicit choice; the scrapers run outside."""
    labels = namespace_manifest()["metadata"]["labels"]
    assert labels == {"istio-injection": "disabled"}


def test_grafana_on_one_volume_is_replaced_not_rolled() -> None:
    """A ReadWriteOnce volume cannot be attached to the new pod while the old one holds it."""
    assert grafana_values(True, "1.31.0")["deploymentStrategy"] == {"type": "Recreate"}
    assert grafana_values(False, "1.31.0")["deploymentStrategy"] == {"type": "RollingUpdate"}


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _walk(v, f"{path}[{i}]")]
    return [(path, value)]


@pytest.mark.parametrize("production", [False, True], ids=["dev", "prod"])
def test_nothing_is_exposed_and_everything_asks_for_resources(production: bool) -> None:
    values = {
        "prometheus": prometheus_values(production),
        "grafana": grafana_values(production, "1.31.0"),
        "kiali": kiali_values(),
    }
    for chart, chart_values in values.items():
        leaves = dict(_walk(chart_values))
        types = {v for k, v in leaves.items() if k.endswith(("service.type", "service_type"))}
        assert types == {"ClusterIP"}, f"{chart}: {types}"
        ingress = [k for k, v in leaves.items() if "ingress.enabled" in k and v is not False]
        assert not ingress, f"{chart} enables an ingress: {ingress}"
        requests = [
            k for k in leaves if ".resources.requests." in k or k.startswith(".resources.requests.")
        ]
        assert requests, f"{chart} asks for no resources"
    assert kiali_values()["auth"]["strategy"] == "token", "Kiali would open without signing in"


def test_persistence_only_on_production() -> None:
    for production in (False, True):
        server = prometheus_values(production)["server"]["persistentVolume"]
        grafana = grafana_values(production, "1.31.0")["persistence"]
        assert server["enabled"] is grafana["enabled"] is production
        if production:
            assert server["storageClass"] == grafana["storageClassName"] == STORAGE_CLASS


def test_grafana_reads_prometheus_and_istios_dashboards_of_the_running_release() -> None:
    values = grafana_values(False, "1.31.2")
    (source,) = values["datasources"]["datasources.yaml"]["datasources"]
    assert (source["url"], source["isDefault"]) == (PROMETHEUS_URL, True)
    urls = [d["url"] for d in values["dashboards"]["istio"].values()]
    assert len(urls) == len(ISTIO_DASHBOARDS)
    assert all("/istio/istio/1.31.2/manifests/addons/dashboards/" in u for u in urls), urls
    assert kiali_values()["external_services"]["prometheus"]["url"] == PROMETHEUS_URL


def test_production_gets_the_ebs_driver_its_role_and_a_storage_class_before_the_charts() -> None:
    run = build(True)
    addons = {r.inputs["addonName"]: r for r in run.of_type(ADDON)}
    assert set(addons) == {"aws-ebs-csi-driver", "eks-pod-identity-agent"}
    (association,) = addons["aws-ebs-csi-driver"].inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "ebs-csi-controller-sa"
    (attachment,) = run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["policyArn"] == EBS_CSI_POLICY_ARN
    (storage,) = run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert storage.inputs["provisioner"] == "ebs.csi.aws.com"
    assert storage.inputs["parameters"] == {"type": "gp3", "encrypted": "true"}
    for release in run.of_type(RELEASE):
        assert storage.urn in release.dependencies, f"{release.name} may claim before the class"


def test_dev_makes_no_aws_resource() -> None:
    run = build(False)
    assert [r.type for r in run.resources if r.type.startswith("aws:")] == []
