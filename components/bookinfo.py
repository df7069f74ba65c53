"""Bookinfo: Istio's sample application, its ingress Gateway and mesh-wide mutual TLS."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.k8s_objects import register_object
from components.options import declared_dependencies
from model.catalogue import (
    SERVICES,
    WORKLOADS,
    deployment_manifest,
    gateway_manifest,
    ingress_virtual_service_manifest,
    namespace_manifest,
    peer_authentication_manifest,
    service_account_manifest,
    service_manifest,
)


@dataclass(frozen=True)
class BookinfoArgs:
    """Bookinfo as upstream ships it, its sidecars from the istiod of `istio_version`."""

    # The release of the revision the namespace's tag points at. Sidecars are injected at pod
    # creation: a new version in the pod template rolls the pods onto that istiod's proxy.
    istio_version: str


class Bookinfo(pulumi.ComponentResource):
    """Namespace with sidecar injection, the upstream workloads, Gateway and ingress routes.

    Give it the istiods and the revision tag in `depends_on`: the tag's injection webhook
    must point at a running istiod before pods are created, or they start without sidecars,
    and the validation webhook checks the Istio objects.
    """

    namespace: pulumi.CustomResource

    def __init__(
        self, name: str, args: BookinfoArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("bookinfo:index:Bookinfo", name, None, opts)
        self.namespace = register_object(
            f"{name}-ns", namespace_manifest(), pulumi.ResourceOptions(parent=self)
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        after_mesh = pulumi.ResourceOptions(
            parent=self, depends_on=[self.namespace, *declared_dependencies(opts)]
        )
        accounts = {
            app: register_object(f"{name}-{app}-sa", service_account_manifest(app), in_namespace)
            for app in SERVICES
        }
        for app in SERVICES:
            register_object(f"{name}-{app}-svc", service_manifest(app), in_namespace)
        for workload in WORKLOADS:
            # A pod naming a missing service account is rejected, so accounts go first.
            register_object(
                f"{name}-{workload.name}",
                deployment_manifest(workload, args.istio_version),
                pulumi.ResourceOptions.merge(
                    after_mesh, pulumi.ResourceOptions(depends_on=[accounts[workload.app]])
                ),
            )
        register_object(f"{name}-gateway", gateway_manifest(), after_mesh)
        register_object(f"{name}-ingress-vs", ingress_virtual_service_manifest(), after_mesh)
        register_object(f"{name}-mtls", peer_authentication_manifest(), after_mesh)
        self.register_outputs({})
