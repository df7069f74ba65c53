"""Which istiod revisions run and who follows which: Istio's canary upgrade as plain data.

Each minor runs as its own revision (istiod-1-30). Bookinfo's namespace follows the revision
tag REVISION_TAG; the ingress gateway names its revision directly. A minor upgrade walks the
stages of CanaryStage, one config change each, as istio.io's "Upgrade with Helm" does by hand:
the base chart (CRDs) from the newer release and its istiod beside the old one; the tag moved
(the workloads roll onto the new sidecars); the gateway moved; the old revision removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from model.istio_releases import IstioRelease

ISTIO_NAMESPACE = "istio-system"
# Istio's Helm chart repository: Helm looks each chart version up in its index.yaml. Istio
# moved it here from istio-release.storage.googleapis.com, which has no 1.31 charts and
# loses all of them in December 2026 (istio.io blog "An update on our move to AWS").
ISTIO_CHART_REPO = "https://blob.istio.io/istio-release/charts"
# Where Istio's images live: 1.30's charts default to registry.istio.io/release, which Istio
# retires in late 2026 ("An Update on Our Container Registry Migration"); set as that post
# says for Helm (hub and global.hub), for every revision alike.
ISTIO_IMAGE_HUB = "docker.io/istio"
BASE_CHART, ISTIOD_CHART, GATEWAY_CHART = "base", "istiod", "gateway"
ISTIO_CHARTS: tuple[str, ...] = (BASE_CHART, ISTIOD_CHART, GATEWAY_CHART)
# The tag Bookinfo's namespace follows (label istio.io/rev); moving it moves the workloads.
REVISION_TAG = "stable"
REVISION_LABEL = "istio.io/rev"
TAG_LABEL = "istio.io/tag"
# istio-discovery's values: sidecarInjectorWebhook.reinvocationPolicy and
# istiodRemote.injectionPath, the defaults that revision-tags-mwc.yaml renders.
_INJECTION_PATH = "/inject"
_REINVOCATION_POLICY = "Never"


class CanaryStage(StrEnum):
    """How far a canary revision has taken over, in the order an upgrade walks."""

    INSTALLED = "installed"  # runs beside the current revision; nothing uses it yet
    WORKLOADS = "workloads"  # the revision tag points at it: Bookinfo's pods run its proxies
    GATEWAY = "gateway"  # the ingress gateway too; next, it becomes istioVersion


CANARY_STAGES: tuple[str, ...] = tuple(s.value for s in CanaryStage)


@dataclass(frozen=True)
class Revision:
    """One istiod control plane: its revision name and the exact release it runs."""

    release: IstioRelease

    @property
    def name(self) -> str:
        return self.release.revision

    @property
    def version(self) -> str:
        return str(self.release)


@dataclass(frozen=True)
class ControlPlane:
    """The revisions installed at one step of the ladder, and which one each part follows."""

    current: Revision
    canary: Revision | None = None
    stage: CanaryStage = CanaryStage.INSTALLED

    @property
    def revisions(self) -> tuple[Revision, ...]:
        return (self.current,) if self.canary is None else (self.current, self.canary)

    @property
    def crds_from(self) -> Revision:
        """The base chart (CRDs, shared by every revision) comes from the newest release."""
        return self.canary or self.current

    @property
    def workloads(self) -> Revision:
        """The revision the tag points at, which injects Bookinfo's sidecars."""
        if self.canary is not None and self.stage is not CanaryStage.INSTALLED:
            return self.canary
        return self.current

    @property
    def gateway(self) -> Revision:
        """The revision whose proxy the ingress gateway runs."""
        if self.canary is not None and self.stage is CanaryStage.GATEWAY:
            return self.canary
        return self.current


def revision_tag_manifests(tag: str, revision: Revision) -> list[dict[str, Any]]:
    """The revision tag's objects, as istio-discovery renders them for `revisionTags: [tag]`.

    Restated from templates/revision-tags-mwc.yaml and revision-tags-svc.yaml (istio/istio
    manifests/charts/istio-control/istio-discovery, 1.30 and 1.31), which istio.io's Helm
    upgrade guide applies with `helm template -s ... | kubectl apply`: objects no Helm
    release owns. Here they are plain resources, so moving the tag is one in-place update,
    with no moment where no webhook injects the tag's pods. istiod patches the webhooks'
    caBundle, finding them by the istio.io/rev label.
    """
    labels = {
        TAG_LABEL: tag,
        REVISION_LABEL: revision.name,
        "app.kubernetes.io/name": "istiod",
        "app.kubernetes.io/part-of": "istio",
    }
    client = {
        "service": {
            "name": f"istiod-{revision.name}",
            "namespace": ISTIO_NAMESPACE,
            "path": _INJECTION_PATH,
            "port": 443,
        }
    }

    def webhook(prefix: str, namespace_match: list[dict], object_match: list[dict]) -> dict:
        return {
            "name": f"{prefix}sidecar-injector.istio.io",
            "clientConfig": client,
            "sideEffects": "None",
            "rules": [
                {
                    "operations": ["CREATE"],
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["pods"],
                }
            ],
            "failurePolicy": "Fail",
            "reinvocationPolicy": _REINVOCATION_POLICY,
            "admissionReviewVersions": ["v1"],
            "namespaceSelector": {"matchExpressions": namespace_match},
            "objectSelector": {"matchExpressions": object_match},
        }

    not_opted_out = {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}
    no_injection_label = {"key": "istio-injection", "operator": "DoesNotExist"}
    webhook_configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": f"istio-revision-tag-{tag}",
            "labels": {**labels, "app": "sidecar-injector"},
        },
        "webhooks": [
            # A namespace labelled istio.io/rev=<tag>...
            webhook(
                "rev.namespace.",
                [
                    {"key": REVISION_LABEL, "operator": "In", "values": [tag]},
                    no_injection_label,
                ],
                [not_opted_out],
            ),
            # ...or a pod labelled so, in a namespace with no label of its own.
            webhook(
                "rev.object.",
                [{"key": REVISION_LABEL, "operator": "DoesNotExist"}, no_injection_label],
                [not_opted_out, {"key": REVISION_LABEL, "operator": "In", "values": [tag]}],
            ),
        ],
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"istiod-revision-tag-{tag}",
            "namespace": ISTIO_NAMESPACE,
            "labels": {**labels, "app": "istiod", "istio": "pilot"},
        },
        "spec": {
            "ports": [
                {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
            ],
            "selector": {"app": "istiod", REVISION_LABEL: revision.name},
        },
    }
    return [webhook_configuration, service]


def next_step(plane: ControlPlane, target: IstioRelease) -> ControlPlane:
    """One step of the upgrade ladder from `plane` toward `target` (ValueError if none).

    A patch of the current minor is an in-place upgrade, one step. Another minor starts a
    canary beside the current revision, which then takes the workloads, then the gateway,
    and at last becomes the current revision while the old one goes. Whether the target may
    be a canary at all (newer, at most two minors on) is the stack config's to judge.
    """
    target_revision = Revision(target)
    if plane.canary is None:
        if target.minor_key == plane.current.release.minor_key:
            return ControlPlane(target_revision)
        return ControlPlane(plane.current, target_revision)
    if target.minor_key != plane.canary.release.minor_key:
        raise ValueError(
            f"a canary of {plane.canary.version} is under way; finish it (--istio "
            f"{plane.canary.version}) or roll it back (--istio previous) first"
        )
    if target != plane.canary.release:
        return ControlPlane(plane.current, target_revision, plane.stage)  # the canary's patch
    if plane.stage is CanaryStage.INSTALLED:
        return ControlPlane(plane.current, plane.canary, CanaryStage.WORKLOADS)
    if plane.stage is CanaryStage.WORKLOADS:
        return ControlPlane(plane.current, plane.canary, CanaryStage.GATEWAY)
    return ControlPlane(plane.canary)
