"""Every Bookinfo object, field by field, against upstream bookinfo.yaml as the facts file
restates it (Istio 1.30.3 samples/bookinfo/platform/kube/bookinfo.yaml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model import catalogue

ALL_FACTS = json.loads(
    (Path(__file__).resolve().parent / "data" / "istio_bookinfo_facts.json").read_text()
)
FACTS = ALL_FACTS["bookinfo_app"]
UPSTREAM_DEPLOYMENTS = {d["name"]: d for d in FACTS["deployments"]}
# The one field this project adds to upstream's containers, on purpose (see
# CONTAINER_REQUESTS): requests let the scheduler place them; upstream sets none.
ADDED_BY_THIS_PROJECT = "resources"
# And the one pod annotation it adds: an Istio upgrade changes it, which rolls the pods onto
# sidecars of the new release.
ISTIO_VERSION = "1.30.3"
ADDED_POD_ANNOTATION = ("bookinfo-mesh/istio-version", ISTIO_VERSION)
# The registry upstream's sample names is retired; the same images run from Docker Hub.
MOVES = ALL_FACTS["infrastructure_moves"]


def moved_image(upstream_image: str) -> str:
    """Upstream's image reference, from the registry Istio now publishes to."""
    old, new = MOVES["images"]["old"], MOVES["images"]["new"]
    assert upstream_image.startswith(f"{old}/"), f"upstream names {upstream_image}, not {old}"
    return f"{new}/{upstream_image.removeprefix(f'{old}/')}"


def upstream_deployment(facts: dict[str, Any]) -> dict[str, Any]:
    """The Deployment upstream's bookinfo.yaml declares, rebuilt from the facts alone."""
    extras = facts["extras"] or {}
    container: dict[str, Any] = {
        "name": facts["container"],
        "image": moved_image(facts["image"]),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": facts["containerPort"]}],
    }
    if "env" in extras:
        container["env"] = [{"name": k, "value": v} for k, v in extras["env"].items()]
    volumes = extras.get("emptyDir_volumes", {})
    if volumes:
        container["volumeMounts"] = [{"name": n, "mountPath": p} for n, p in volumes.items()]
    annotation, value = ADDED_POD_ANNOTATION
    pod_meta: dict[str, Any] = {
        "labels": facts["labels"],
        "annotations": {**extras.get("pod_annotations", {}), annotation: value},
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": facts["serviceAccount"],
        "containers": [container],
    }
    if volumes:
        pod_spec["volumes"] = [{"name": n, "emptyDir": {}} for n in volumes]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": facts["name"], "namespace": "bookinfo", "labels": facts["labels"]},
        "spec": {
            "replicas": facts["replicas"],
            "selector": {"matchLabels": facts["labels"]},
            "template": {"metadata": pod_meta, "spec": pod_spec},
        },
    }


def test_the_workloads_are_exactly_upstreams_deployments() -> None:
    assert {w.name for w in catalogue.WORKLOADS} == set(UPSTREAM_DEPLOYMENTS)


@pytest.mark.parametrize("name", sorted(UPSTREAM_DEPLOYMENTS))
def test_each_deployment_is_upstreams_in_every_field(name: str) -> None:
    (workload,) = (w for w in catalogue.WORKLOADS if w.name == name)
    ours = catalogue.deployment_manifest(workload, ISTIO_VERSION)
    containers = ours["spec"]["template"]["spec"]["containers"]
    requests = [c.pop(ADDED_BY_THIS_PROJECT, None) for c in containers]
    assert ours == upstream_deployment(UPSTREAM_DEPLOYMENTS[name]), f"{name} differs from upstream"
    for request in requests:
        assert request is not None and set(request["requests"]) == {"cpu", "memory"}, (
            f"{name}: every container requests cpu and memory, got {request}"
        )


def test_no_pod_runs_with_a_security_context_or_probes_upstream_does_not_set() -> None:
    for workload in catalogue.WORKLOADS:
        pod = catalogue.deployment_manifest(workload, ISTIO_VERSION)["spec"]["template"]["spec"]
        extra = {"securityContext"} & set(pod) | {
            key
            for c in pod["containers"]
            for key in ("securityContext", "livenessProbe", "readinessProbe", "startupProbe")
            if key in c
        }
        assert not extra, f"{workload.name} sets {extra}, which upstream does not"


@pytest.mark.parametrize("facts", FACTS["services"], ids=lambda s: s["name"])
def test_each_service_is_upstreams(facts: dict[str, Any]) -> None:
    assert catalogue.service_manifest(facts["name"]) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": facts["name"], "namespace": "bookinfo", "labels": facts["labels"]},
        "spec": {
            "ports": [{"port": facts["port"], "name": facts["port_name"]}],
            "selector": facts["selector"],
        },
    }


@pytest.mark.parametrize("facts", FACTS["service_accounts"], ids=lambda s: s["name"])
def test_each_service_account_is_upstreams(facts: dict[str, Any]) -> None:
    app = facts["labels"]["account"]
    assert catalogue.service_account_manifest(app) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": facts["name"], "namespace": "bookinfo", "labels": facts["labels"]},
    }


GATEWAY_FACTS = ALL_FACTS["gateway"]


def test_the_gateway_is_upstreams_on_the_helm_charts_port_and_labels() -> None:
    """bookinfo-gateway.yaml's Gateway, with two deliberate differences: the selector is the
    labels of this project's Helm-installed gateway pods (istio: ingressgateway, which its
    chart values set), and the server port is 80, the Helm gateway Service's target port
    (upstream's 8080 matches only istioctl's gateway; see PORT_PITFALL in the facts)."""
    upstream = GATEWAY_FACTS["gateway"]
    (server,) = upstream["servers"]
    assert catalogue.gateway_manifest() == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": upstream["name"], "namespace": "bookinfo"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [{"port": {**server["port"], "number": 80}, "hosts": server["hosts"]}],
        },
    }


def test_the_ingress_virtual_service_is_upstreams() -> None:
    """One rule: the five OR-ed URI matches of bookinfo-gateway.yaml, to productpage:9080."""
    upstream = GATEWAY_FACTS["virtual_service"]
    (rule,) = upstream["http"]
    assert catalogue.ingress_virtual_service_manifest() == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": upstream["name"], "namespace": "bookinfo"},
        "spec": {
            "hosts": upstream["hosts"],
            "gateways": upstream["gateways"],
            "http": [{"match": rule["match_any_of"], "route": rule["route"]}],
        },
    }


def test_the_namespace_follows_the_revision_tag_whose_istiod_injects_sidecars() -> None:
    # Subsets and client-side faults only work through sidecars, injected at pod creation.
    # Upstream's docs label the namespace istio-injection=enabled, which names no revision;
    # a canary upgrade moves the tag instead (istio.io docs/setup/upgrade/helm).
    assert catalogue.namespace_manifest() == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "bookinfo", "labels": {"istio.io/rev": "stable"}},
    }


def test_the_bookinfo_images_are_upstreams_from_the_registry_istio_now_uses() -> None:
    assert MOVES["bookinfo_images"]["sample_registry_before"] == MOVES["images"]["new"], (
        "the sample named Docker Hub before #59364: the same images live there"
    )
    assert MOVES["images"]["new"] == catalogue.IMAGE_REGISTRY


def test_mutual_tls_is_strict_for_the_whole_namespace() -> None:
    # Istio's PeerAuthentication named "default" with no selector covers its namespace.
    assert catalogue.peer_authentication_manifest() == {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "bookinfo"},
        "spec": {"mtls": {"mode": "STRICT"}},
    }
