"""An EKS managed add-on at the newest version EKS offers for the cluster's Kubernetes."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws


def eks_addon(
    resource_name: str,
    addon: str,
    cluster_name: pulumi.Input[str],
    kubernetes_version: str,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    roles: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
    preserve: bool | None = None,
) -> aws.eks.Addon:
    """`addon` taking over whatever the cluster already runs of it (conflicts resolved in the
    add-on's favour), its version looked up under the same parent as the add-on."""
    version = aws.eks.get_addon_version_output(
        addon_name=addon,
        kubernetes_version=kubernetes_version,
        most_recent=True,
        opts=pulumi.InvokeOutputOptions(parent=opts.parent),
    )
    return aws.eks.Addon(
        resource_name,
        cluster_name=cluster_name,
        addon_name=addon,
        addon_version=version.version,
        pod_identity_associations=roles,
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        preserve=preserve,
        tags=dict(tags),
        opts=opts,
    )
