"""IstioMesh: Istio's base chart, an istiod revision per minor, the revision tag, the gateway."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s_objects import register_object
from components.options import declared_dependencies
from model.catalogue import INGRESS_GATEWAY_PORT, INGRESS_GATEWAY_RELEASE
from model.control_plane import (
    BASE_CHART,
    GATEWAY_CHART,
    ISTIO_CHART_REPO,
    ISTIO_IMAGE_HUB,
    ISTIO_NAMESPACE,
    ISTIOD_CHART,
    REVISION_TAG,
    ControlPlane,
    revision_tag_manifests,
)

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
# log errors; fixed replicas instead (README, "Working as a team"). istiod's image and the
# proxies it injects (the gateway's too) come from ISTIO_IMAGE_HUB.
ISTIOD_VALUES: dict[str, object] = {
    "autoscaleEnabled": False,
    "hub": ISTIO_IMAGE_HUB,
    "global": {"hub": ISTIO_IMAGE_HUB},
}


def _load_balancer_hostname(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
    """The NLB's DNS name, or "" until AWS has assigned one."""
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    return (ingress[0].hostname or "") if ingress else ""


@dataclass(frozen=True)
class IstioMeshArgs:
    """Which istiod revisions to run, and which one the tag and the gateway follow."""

    control_plane: ControlPlane


class IstioMesh(pulumi.ComponentResource):
    """Istio control plane revisions and an ingress gateway behind an AWS NLB.

    Give it the node group in `depends_on`: the charts wait for their pods to be ready.
    """

    istiods: list[k8s.helm.v3.Release]
    revision_tag: list[pulumi.CustomResource]
    gateway: k8s.helm.v3.Release
    ingress_hostname: pulumi.Output[str]

    def __init__(
        self, name: str, args: IstioMeshArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("bookinfo:index:IstioMesh", name, None, opts)
        prerequisites = declared_dependencies(opts)
        plane = args.control_plane

        def chart(
            role: str,
            release: str,
            chart_name: str,
            version: str,
            namespace: k8s.core.v1.Namespace,
            after: Sequence[pulumi.Resource],
            values: dict,
        ) -> k8s.helm.v3.Release:
            return k8s.helm.v3.Release(
                f"{name}-{role}",
                # An explicit name: Pulumi would otherwise add a random suffix, and the
                # gateway chart derives its pods' `istio` label from the release name.
                name=release,
                chart=chart_name,
                version=version,
                namespace=namespace.metadata["name"],
                repository_opts={"repo": ISTIO_CHART_REPO},
                values=values,
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
        # The CRDs every revision shares, from the newest release; its default validator
        # is served by the current revision until the canary takes its place.
        base = chart(
            "base",
            "istio-base",
            BASE_CHART,
            plane.crds_from.version,
            system_ns,
            prerequisites,
            {"defaultRevision": plane.current.name},
        )
        # One release per minor, named by its revision: a patch upgrades it in place, a
        # minor is a canary beside it. istiod expects the CRDs that only base installs.
        by_revision = {
            revision.name: chart(
                f"istiod-{revision.name}",
                f"istiod-{revision.name}",
                ISTIOD_CHART,
                revision.version,
                system_ns,
                [base],
                {"revision": revision.name, **ISTIOD_VALUES},
            )
            for revision in plane.revisions
        }
        self.istiods = list(by_revision.values())
        # The tag's webhook sends pods to its revision's istiod, which must be running.
        self.revision_tag = [
            register_object(
                f"{name}-tag-{REVISION_TAG}-{manifest['kind'].lower()}",
                manifest,
                pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[system_ns, by_revision[plane.workloads.name]],
                ),
            )
            for manifest in revision_tag_manifests(REVISION_TAG, plane.workloads)
        ]
        # The gateway's image is "auto": its revision's injection webhook fills it in.
        self.gateway = chart(
            "gateway",
            INGRESS_GATEWAY_RELEASE,
            GATEWAY_CHART,
            plane.gateway.version,
            ingress_ns,
            [by_revision[plane.gateway.name]],
            {
                "revision": plane.gateway.name,
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
