"""The mesh's observability, as data: which charts, at which versions, with which values.

Prometheus scrapes Istio's standard metrics, Grafana shows Istio's dashboards, Kiali draws the
mesh; each from its own project's Helm chart, pinned. Istio's samples/addons are the same three
charts rendered once with demo values ("not suitable for production", their README says):
no resource requests, no persistence, a version a release behind. The charts themselves take
this program's values and move by Renovate. Nothing here is exposed: every Service is
ClusterIP, reached by `kubectl port-forward` (docs/monitoring.md).

The pins were read in each chart repository's published index or history on 2026-12-02:
prometheus 29.27.0 (prometheus-community/helm-charts, charts/prometheus/Chart.yaml at
ca06aae, Prometheus v3.14.0; the gh-pages index.yaml could not be read here), grafana 12.11.1
(grafana-community/helm-charts's gh-pages index.yaml, generated 2026-08-20, Grafana 13.2.0;
the chart moved there from grafana/helm-charts in January 2026), kiali-server 2.29.0
(kiali/helm-charts's docs/index.yaml, generated 2026-07-13). None was pulled from its
repository URL from here; `pulumi preview` does, and fails on a version that is not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAMESPACE = "observability"
STORAGE_CLASS = "gp3-observability"
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 80
KIALI_PORT = 20001


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repository: str
    release: str  # the Helm release, which names its Service


PROMETHEUS = Chart(
    "prometheus", "29.27.0", "https://prometheus-community.github.io/helm-charts", "prometheus"
)
GRAFANA = Chart("grafana", "12.11.1", "https://grafana-community.github.io/helm-charts", "grafana")
KIALI = Chart("kiali-server", "2.29.0", "https://kiali.org/helm-charts", "kiali")
CHARTS: tuple[Chart, ...] = (PROMETHEUS, GRAFANA, KIALI)

PROMETHEUS_URL = f"http://prometheus.{NAMESPACE}:{PROMETHEUS_PORT}"
GRAFANA_URL = f"http://grafana.{NAMESPACE}:{GRAFANA_PORT}"
# Istio's dashboards, from the release the control plane runs (manifests/addons/dashboards,
# the files samples/addons/grafana.yaml bundles; names read at 1.30.3 and 1.31.0-rc.0). Each
# picks its Prometheus through a `datasource` variable, so the default data source serves.
ISTIO_DASHBOARDS: dict[str, str] = {
    "istio-mesh": "istio-mesh-dashboard.gen.json",
    "istio-service": "istio-service-dashboard.json",
    "istio-workload": "istio-workload-dashboard.json",
    "istio-performance": "istio-performance-dashboard.json",
    "istio-control-plane": "pilot-dashboard.gen.json",
    "istio-extension": "istio-extension-dashboard.json",
}
DASHBOARD_SOURCE = (
    "https://raw.githubusercontent.com/istio/istio/{release}/manifests/addons/dashboards/{file}"
)
# Istio's recommendation for its metrics (istio.io, "Prometheus" integration): every 15 s.
SCRAPE_INTERVAL = "15s"


@dataclass(frozen=True)
class Sizing:
    """How much each part asks for, and keeps, on a stack of one kind."""

    retention: str
    prometheus_disk: str
    grafana_disk: str


DEVELOPMENT = Sizing(retention="2d", prometheus_disk="", grafana_disk="")
PRODUCTION = Sizing(retention="15d", prometheus_disk="50Gi", grafana_disk="10Gi")


def sizing(production: bool) -> Sizing:
    """Production keeps its metrics and dashboards on EBS volumes; dev keeps two days in
    memory-backed emptyDirs, lost with the pod."""
    return PRODUCTION if production else DEVELOPMENT


def prometheus_values(production: bool) -> dict[str, Any]:
    """The server alone: Istio's metrics come from the pods' prometheus.io annotations (every
    sidecar's and gateway's merged /stats/prometheus, istiod's :15014), which the chart's
    kubernetes-pods job follows; node and cluster exporters are not installed."""
    size = sizing(production)
    return {
        "alertmanager": {"enabled": False},
        "kube-state-metrics": {"enabled": False},
        "prometheus-node-exporter": {"enabled": False},
        "prometheus-pushgateway": {"enabled": False},
        "server": {
            "fullnameOverride": PROMETHEUS.release,
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "retention": size.retention,
            "persistentVolume": (
                {"enabled": True, "size": size.prometheus_disk, "storageClass": STORAGE_CLASS}
                if production
                else {"enabled": False}
            ),
            "resources": {
                "requests": {"cpu": "250m", "memory": "1Gi"},
                "limits": {"memory": "2Gi"},
            },
            "service": {"type": "ClusterIP", "servicePort": PROMETHEUS_PORT},
            "ingress": {"enabled": False},
        },
    }


def grafana_values(production: bool, istio_release: str) -> dict[str, Any]:
    """Grafana with Prometheus as its default data source and Istio's dashboards of
    `istio_release`; its admin password is the chart's random one, in Secret grafana."""
    size = sizing(production)
    return {
        "fullnameOverride": GRAFANA.release,
        # One ReadWriteOnce volume on prod: the old pod lets go of it before the new one starts.
        "deploymentStrategy": {"type": "Recreate" if production else "RollingUpdate"},
        "service": {"type": "ClusterIP", "port": GRAFANA_PORT},
        "ingress": {"enabled": False},
        "persistence": (
            {"enabled": True, "size": size.grafana_disk, "storageClassName": STORAGE_CLASS}
            if production
            else {"enabled": False}
        ),
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "datasources": {
            "datasources.yaml": {
                "apiVersion": 1,
                "datasources": [
                    {
                        "name": "Prometheus",
                        "type": "prometheus",
                        "uid": "prometheus",
                        "url": PROMETHEUS_URL,
                        "access": "proxy",
                        "isDefault": True,
                    }
                ],
            }
        },
        "dashboardProviders": {
            "dashboardproviders.yaml": {
                "apiVersion": 1,
                "providers": [
                    {
                        "name": "istio",
                        "orgId": 1,
                        "folder": "Istio",
                        "type": "file",
                        "disableDeletion": True,
                        "options": {"path": "/var/lib/grafana/dashboards/istio"},
                    }
                ],
            }
        },
        "dashboards": {
            "istio": {
                name: {"url": DASHBOARD_SOURCE.format(release=istio_release, file=file)}
                for name, file in ISTIO_DASHBOARDS.items()
            }
        },
    }


def kiali_values() -> dict[str, Any]:
    """Kiali reading the same Prometheus, linking to Grafana; sign-in by a Kubernetes token
    (`kubectl -n observability create token kiali`), so a port-forward alone opens nothing."""
    return {
        "auth": {"strategy": "token"},
        "deployment": {
            "cluster_wide_access": True,
            "service_type": "ClusterIP",
            "ingress": {"enabled": False},
            "resources": {
                "requests": {"cpu": "50m", "memory": "128Mi"},
                "limits": {"memory": "1Gi"},
            },
        },
        # Kiali finds Istio's root namespace itself (istiod's); the chart's
        # external_services.istio.root_namespace no longer reaches it (kiali/kiali#8679).
        "external_services": {
            "prometheus": {"url": PROMETHEUS_URL},
            "grafana": {
                "enabled": True,
                "internal_url": GRAFANA_URL,
                "external_url": "http://127.0.0.1:3000",  # the port-forward docs/monitoring.md uses
            },
        },
    }


def namespace_manifest() -> dict[str, Any]:
    """Marked as meaning no sidecars: the scrapers read the mesh from outside it."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"istio-injection": "disabled"}},
    }


def storage_class_manifest() -> dict[str, Any]:
    """Encrypted gp3 volumes from the EBS CSI driver, made in the zone of the pod that claims
    them, kept when their claim goes (a reinstall finds its metrics again)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": True,
    }
