"""Istio's Bookinfo sample as plain data: its services, workloads, images and Kubernetes objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from model.control_plane import ISTIO_IMAGE_HUB, REVISION_LABEL, REVISION_TAG

NAMESPACE = "bookinfo"
SERVICE_PORT = 9080
# Upstream samples/bookinfo/platform/kube/bookinfo.yaml at Istio 1.30.x and 1.31.0 runs these
# images from registry.istio.io/release, which Istio retires in late 2026 and tells users to
# leave for docker.io/istio (control_plane.ISTIO_IMAGE_HUB); the sample named the same
# images there until istio/istio#59364 (2026-03-24).
IMAGE_REGISTRY = ISTIO_IMAGE_HUB
IMAGE_TAG = "1.20.3"

# Order matters only for readability of rendered output: leaves first, like upstream.
SERVICES: tuple[str, ...] = ("details", "ratings", "reviews", "productpage")

# The subsets of samples/bookinfo/networking/destination-rule-all.yaml; some have no pods
# in bookinfo.yaml (ratings v2*, details v2), exactly as upstream.
DESTINATION_RULE_SUBSETS: dict[str, tuple[str, ...]] = {
    "productpage": ("v1",),
    "reviews": ("v1", "v2", "v3"),
    "ratings": ("v1", "v2", "v2-mysql", "v2-mysql-vm"),
    "details": ("v1", "v2"),
}

# Ports and labels of the Helm `gateway` chart's Service and pods when the release is named
# `istio-ingressgateway`: the chart derives `istio: ingressgateway` from the release name.
INGRESS_GATEWAY_RELEASE = "istio-ingressgateway"
INGRESS_GATEWAY_LABELS: dict[str, str] = {"istio": "ingressgateway"}
# Upstream bookinfo-gateway.yaml listens on 8080, which only matches the legacy istioctl
# gateway (Service 80 -> pod 8080). The Helm chart's Service maps 80 -> 80, so the Gateway
# must listen on 80 or the load balancer's traffic reaches a port Envoy never opened.
INGRESS_GATEWAY_PORT = 80
INGRESS_PATHS: tuple[tuple[str, str], ...] = (
    ("exact", "/productpage"),
    ("prefix", "/static"),
    ("exact", "/login"),
    ("exact", "/logout"),
    ("prefix", "/api/v1/products"),
)
GATEWAY_NAME = "bookinfo-gateway"
INGRESS_VIRTUAL_SERVICE_NAME = "bookinfo"

TEST_USER_HEADER = "end-user"
# Pod-template annotation carrying the Istio release the revision tag points at: changing it
# rolls the pods, so a patch or a moved tag re-injects sidecars from the new istiod instead
# of leaving old proxies.
ISTIO_VERSION_ANNOTATION = "bookinfo-mesh/istio-version"


@dataclass(frozen=True)
class Workload:
    """One upstream Bookinfo Deployment: an app at a version."""

    app: str
    version: str
    env: dict[str, str] = field(default_factory=dict)
    # volume name -> mount path; all emptyDir, as upstream (the images write there).
    scratch_volumes: dict[str, str] = field(default_factory=dict)
    pod_annotations: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.app}-{self.version}"

    @property
    def image(self) -> str:
        return f"{IMAGE_REGISTRY}/examples-bookinfo-{self.app}-{self.version}:{IMAGE_TAG}"

    @property
    def labels(self) -> dict[str, str]:
        return {"app": self.app, "version": self.version}


_REVIEWS_SCRATCH = {"tmp": "/tmp", "wlp-output": "/opt/ibm/wlp/output"}

WORKLOADS: tuple[Workload, ...] = (
    Workload("details", "v1"),
    Workload("ratings", "v1"),
    *(
        Workload("reviews", v, env={"LOG_DIR": "/tmp/logs"}, scratch_volumes=_REVIEWS_SCRATCH)
        for v in ("v1", "v2", "v3")
    ),
    Workload(
        "productpage",
        "v1",
        scratch_volumes={"tmp": "/tmp"},
        pod_annotations={
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(SERVICE_PORT),
            "prometheus.io/path": "/metrics",
        },
    ),
)

# Modest requests so the scheduler places pods sensibly (upstream sets none); the sidecar
# gets its own requests from istiod's injection template.
CONTAINER_REQUESTS: dict[str, str] = {"cpu": "50m", "memory": "128Mi"}


def deployed_versions(app: str) -> tuple[str, ...]:
    """Versions of `app` that have pods, in upstream order."""
    return tuple(w.version for w in WORKLOADS if w.app == app)


def service_account_name(app: str) -> str:
    return f"bookinfo-{app}"


def _metadata(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if labels:
        meta["labels"] = labels
    return meta


def namespace_manifest() -> dict[str, Any]:
    """The namespace, following the revision tag: its istiod injects every Bookinfo pod.

    Not `istio-injection: enabled`, which names no revision and would outrank the tag.
    """
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {REVISION_LABEL: REVISION_TAG}},
    }


def service_account_manifest(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(service_account_name(app), {"account": app}),
    }


def service_manifest(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(app, {"app": app, "service": app}),
        "spec": {
            "ports": [{"port": SERVICE_PORT, "name": "http"}],
            "selector": {"app": app},
        },
    }


def deployment_manifest(workload: Workload, istio_version: str) -> dict[str, Any]:
    """The workload's Deployment; its pods carry the Istio release their sidecars come from."""
    container: dict[str, Any] = {
        "name": workload.app,
        "image": workload.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": SERVICE_PORT}],
        "resources": {"requests": dict(CONTAINER_REQUESTS)},
    }
    if workload.env:
        container["env"] = [{"name": k, "value": v} for k, v in workload.env.items()]
    if workload.scratch_volumes:
        container["volumeMounts"] = [
            {"name": n, "mountPath": p} for n, p in workload.scratch_volumes.items()
        ]
    pod_metadata: dict[str, Any] = {
        "labels": workload.labels,
        "annotations": {**workload.pod_annotations, ISTIO_VERSION_ANNOTATION: istio_version},
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": service_account_name(workload.app),
        "containers": [container],
    }
    if workload.scratch_volumes:
        pod_spec["volumes"] = [{"name": n, "emptyDir": {}} for n in workload.scratch_volumes]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(workload.name, workload.labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": workload.labels},
            "template": {"metadata": pod_metadata, "spec": pod_spec},
        },
    }


def gateway_manifest() -> dict[str, Any]:
    """The Istio Gateway on the Helm-installed ingress gateway's pods."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": _metadata(GATEWAY_NAME),
        "spec": {
            "selector": dict(INGRESS_GATEWAY_LABELS),
            "servers": [
                {
                    "port": {"number": INGRESS_GATEWAY_PORT, "name": "http", "protocol": "HTTP"},
                    "hosts": ["*"],
                }
            ],
        },
    }


def ingress_virtual_service_manifest() -> dict[str, Any]:
    """Routes the public paths of the site from the gateway to productpage."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": _metadata(INGRESS_VIRTUAL_SERVICE_NAME),
        "spec": {
            "hosts": ["*"],
            "gateways": [GATEWAY_NAME],
            "http": [
                {
                    "match": [{"uri": {kind: path}} for kind, path in INGRESS_PATHS],
                    "route": [
                        {"destination": {"host": "productpage", "port": {"number": SERVICE_PORT}}}
                    ],
                }
            ],
        },
    }


def peer_authentication_manifest() -> dict[str, Any]:
    """STRICT mutual TLS for every Bookinfo workload (all of them have sidecars)."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": _metadata("default"),
        "spec": {"mtls": {"mode": "STRICT"}},
    }
