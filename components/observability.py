"""Observability: Prometheus, Grafana with Istio's dashboards, and Kiali, in a namespace of
their own, each a pinned Helm release reached only by port-forward (model/observability.py).

With `persistent` (production stacks), Prometheus and Grafana keep their data on EBS: the EBS
CSI driver add-on, its IAM role through EKS Pod Identity (its agent add-on too), and an
encrypted gp3 StorageClass. EKS provisions no EBS volume without that driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.eks_addons import eks_addon
from components.k8s_objects import register_object
from components.options import declared_dependencies
from model.access import trust_policy
from model.observability import (
    GRAFANA,
    KIALI,
    NAMESPACE,
    PROMETHEUS,
    Chart,
    grafana_values,
    kiali_values,
    namespace_manifest,
    prometheus_values,
    storage_class_manifest,
)

EBS_CSI_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"  # the add-on's controller runs as this


@dataclass(frozen=True)
class ObservabilityArgs:
    cluster_name: pulumi.Input[str]
    kubernetes_version: str  # picks the add-ons' versions
    istio_release: str  # the release whose dashboards Grafana shows
    persistent: bool
    tags: Mapping[str, str] = field(default_factory=dict)


class Observability(pulumi.ComponentResource):
    """The three releases; give it the istiods in `depends_on` (Kiali reads their config)."""

    releases: list[k8s.helm.v3.Release]

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("bookinfo:index:Observability", name, None, opts)
        self._name, self._args = name, args
        after = declared_dependencies(opts)
        namespace = register_object(
            f"{name}-ns",
            namespace_manifest(),
            pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        storage = self._storage(after) if args.persistent else []

        def release(chart: Chart, values: dict) -> k8s.helm.v3.Release:
            return k8s.helm.v3.Release(
                f"{name}-{chart.release}",
                name=chart.release,
                chart=chart.name,
                version=chart.version,
                namespace=NAMESPACE,
                repository_opts={"repo": chart.repository},
                values=values,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *storage, *after]),
            )

        self.releases = [
            release(PROMETHEUS, prometheus_values(args.persistent)),
            release(GRAFANA, grafana_values(args.persistent, args.istio_release)),
            release(KIALI, kiali_values()),
        ]
        self.register_outputs({})

    def _addon(
        self,
        addon: str,
        after: list[pulumi.Resource],
        roles: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
    ) -> aws.eks.Addon:
        return eks_addon(
            f"{self._name}-{addon}",
            addon,
            self._args.cluster_name,
            self._args.kubernetes_version,
            self._args.tags,
            pulumi.ResourceOptions(parent=self, depends_on=after),
            roles,
        )

    def _storage(self, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """The EBS CSI driver with a role of its own, and the StorageClass the charts claim."""
        agent = self._addon("eks-pod-identity-agent", after)
        role = aws.iam.Role(
            f"{self._name}-ebs-csi-role",
            assume_role_policy=trust_policy(
                "pods.eks.amazonaws.com", ("sts:AssumeRole", "sts:TagSession")
            ),
            tags=dict(self._args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{self._name}-ebs-csi-policy",
            role=role.name,
            policy_arn=EBS_CSI_POLICY_ARN,
            opts=pulumi.ResourceOptions(parent=self),
        )
        association = aws.eks.AddonPodIdentityAssociationArgs(
            role_arn=role.arn, service_account=EBS_CSI_SERVICE_ACCOUNT
        )
        driver = self._addon("aws-ebs-csi-driver", [*after, agent, attachment], [association])
        manifest = storage_class_manifest()
        storage_class = k8s.storage.v1.StorageClass(
            f"{self._name}-storage-class",
            metadata=manifest["metadata"],
            provisioner=manifest["provisioner"],
            parameters=manifest["parameters"],
            volume_binding_mode=manifest["volumeBindingMode"],
            reclaim_policy=manifest["reclaimPolicy"],
            allow_volume_expansion=manifest["allowVolumeExpansion"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[driver]),
        )
        return [driver, storage_class]
