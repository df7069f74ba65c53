"""IstioMesh: Istio's base, istiod and gateway Helm charts, in that order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.options import declared_dependencies
from model.catalogue import INGRESS_GATEWAY_PORT, INGRESS_GATEWAY_RELEASE

ISTIO_CHART_REPO = "https://istio-release.storage.googleapis.com/charts"
ISTIO_NAMESPACE = "istio-system"
INGRESS_NAMESPACE = "istio-ingress"
# The in-tree AWS cloud provider (the only load balancer controller on this cluster) reads
# this and makes an NLB, internet-facing by default. It ignores
# aws-load-balancer-scheme, which only the AWS Load Balancer Controller reads.
NLB_ANNOTATIONS: dict[str, str] = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
# The gateway Service's ports: only what a Gateway serves. The chart's default also opens
# 443, where nothing listens, and 15021, Envoy's readiness port: kubelet probes it on the pod,
# and the in-tree NLB health-checks each listener's own NodePort (externalTrafficPolicy
# Cluster), so neither belongs on the load balancer.
GATEWAY_SERVICE_PORTS: tuple[dict[str, object], ...] = (
    {
        "name": "http2",
        "port": INGRESS_GATEWAY_PORT,
        "protocol": "TCP",
        "targetPort": INGRESS_GATEWAY_PORT,
    },
)
# No metrics-server runs, so HorizontalPodAutoscalers could never read CPU and would only
# log errors; fixed replicas instead (README, "Working as a team").
ISTIOD_VALUES: dict[str, object] = {"autoscaleEnabled": False}


def _load_balancer_hostname(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
    """The NLB's DNS name, or "" until AWS has assigned one."""
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    return (ingress[0].hostname or "") if ingress else ""


@dataclass(frozen=True)
class IstioMeshArgs:
    """Which Istio release to install."""

    istio_version: str


class IstioMesh(pulumi.ComponentResource):
    """Istio control plane and an ingress gateway behind an AWS NLB.

    Give it the node group in `depends_on`: the charts wait for their pods to be ready.
    """

    istiod: k8s.helm.v3.Release
    gateway: k8s.helm.v3.Release
    ingress_hostname: pulumi.Output[str]

    def __init__(
        self, name: str, args: IstioMeshArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("bookinfo:index:IstioMesh", name, None, opts)
        prerequisites = declared_dependencies(opts)

        def chart(
            role: str,
            release: str,
            chart_name: str,
            namespace: k8s.core.v1.Namespace,
            after: Sequence[pulumi.Resource],
            values: dict | None = None,
        ) -> k8s.helm.v3.Release:
            return k8s.helm.v3.Release(
                f"{name}-{role}",
                # An explicit name: Pulumi would otherwise add a random suffix, and the
                # gateway chart derives its pods' `istio` label from the release name.
                name=release,
                chart=chart_name,
                version=args.istio_version,
                namespace=namespace.metadata["name"],
                repository_opts={"repo": ISTIO_CHART_REPO},
                values=values or {},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *after]),
            )

        system_ns = k8s.core.v1.Namespace(
            f"{name}-system-ns",
            metadata={"name": ISTIO_NAMESPACE},
            opts=pulumi.ResourceOptions(parent=self, depends_on=prerequisites),
        )
        ingress_ns = k8s.core.v1.Namespace(
            f"{name}-ingress-ns",
            metadata={"name": INGRESS_NAMESPACE},
            opts=pulumi.ResourceOptions(parent=self, depends_on=prerequisites),
        )
        base = chart(
            "base", "istio-base", "base", system_ns, prerequisites, {"defaultRevision": "default"}
        )
        # istiod's chart expects the CRDs that only the base chart installs.
        self.istiod = chart("istiod", "istiod", "istiod", system_ns, [base], dict(ISTIOD_VALUES))
        # The gateway's image is "auto": istiod's injection webhook fills it in.
        self.gateway = chart(
            "gateway",
            INGRESS_GATEWAY_RELEASE,
            "gateway",
            ingress_ns,
            [self.istiod],
            {
                "service": {
                    "annotations": dict(NLB_ANNOTATIONS),
                    "ports": [dict(p) for p in GATEWAY_SERVICE_PORTS],
                },
                "autoscaling": {"enabled": False},
            },
        )
        # Helm waits for the LoadBalancer Service to get its address; read it back.
        service = k8s.core.v1.Service.get(
            f"{name}-gateway-service",
            pulumi.Output.concat(self.gateway.status.namespace, "/", self.gateway.status.name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway]),
        )
        self.ingress_hostname = service.status.apply(_load_balancer_hostname)
        self.register_outputs({"ingressHostname": self.ingress_hostname})
