"""Which version answers a route's subset, read from the objects rather than the subset's name.

A route names a subset; the DestinationRule for the host gives the subset's labels; those
labels, added to the Service's selector, pick the pods of some Deployments; and the pods'
`version` label says which Bookinfo version answers. A subset called v3 whose labels select
v1 pods is served by v1, and a subset that is undefined or selects no pods gets Envoy's 503.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from model.catalogue import SERVICES, WORKLOADS, deployment_manifest, service_manifest
from model.policy_manifests import destination_rule
from model.routing import bookinfo_service

VERSION_LABEL = "version"
CLUSTER_DOMAIN = "svc.cluster.local"

# (version, share of the subset's requests), largest share first; empty: no pod answers.
Served = tuple[tuple[str, float], ...]
# service name -> subset name -> who serves it.
Serving = Mapping[str, Mapping[str, Served]]


@dataclass(frozen=True)
class _Pods:
    """The pods of one Deployment."""

    namespace: str
    labels: Mapping[str, str]
    replicas: int


def _service_ref(host: str, namespace: str) -> tuple[str, str]:
    """(namespace, service) a DestinationRule host names.

    A short name (`reviews`) is a Service in the rule's own namespace; a full name
    (`reviews.bookinfo.svc.cluster.local`) names its namespace. Any other host is not a
    Kubernetes Service, so no Deployment's pods serve it.
    """
    if "." not in host:
        return namespace, host
    parts = host.split(".", 2)
    if len(parts) == 3 and parts[2] == CLUSTER_DOMAIN:
        return parts[1], parts[0]
    return "", host


def _share_by_version(pods: list[_Pods]) -> Served:
    """Envoy balances a subset's requests over its endpoints, so each version's share is its
    share of the ready pods (a Deployment's replicas)."""
    replicas: dict[str, int] = {}
    for group in pods:
        version = group.labels.get(VERSION_LABEL, "")
        replicas[version] = replicas.get(version, 0) + group.replicas
    total = sum(replicas.values())
    if total == 0:
        return ()
    return tuple(
        sorted(((v, n / total) for v, n in replicas.items() if n), key=lambda vn: (-vn[1], vn[0]))
    )


def serving_from_manifests(manifests: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Served]]:
    """service -> subset -> (version, share): what each DestinationRule subset really reaches."""
    objects = list(manifests)
    selectors: dict[tuple[str, str], Mapping[str, str]] = {}
    pods: list[_Pods] = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        if obj.get("kind") == "Service":
            selectors[meta.get("namespace", ""), meta["name"]] = spec.get("selector") or {}
        elif obj.get("kind") == "Deployment":
            template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
            replicas = spec.get("replicas", 1)
            pods.append(_Pods(meta.get("namespace", ""), template_labels or {}, replicas))
    serving: dict[str, dict[str, Served]] = {}
    for obj in objects:
        if obj.get("kind") != "DestinationRule":
            continue
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        spec = obj.get("spec") or {}
        service_namespace, service = _service_ref(spec.get("host", ""), namespace)
        selector = selectors.get((service_namespace, service))
        subsets = serving.setdefault(service, {})
        for subset in spec.get("subsets") or []:
            wanted = {**(selector or {}), **(subset.get("labels") or {})}
            # A Service without a selector (or none at all) gets no endpoints from pods.
            selected = [
                p
                for p in pods
                if selector
                and p.namespace == service_namespace
                and all(p.labels.get(k) == v for k, v in wanted.items())
            ]
            subsets[subset["name"]] = _share_by_version(selected)
    return serving


def program_serving(istio_version: str) -> dict[str, dict[str, Served]]:
    """What the program's own objects serve: its DestinationRules over Bookinfo's workloads."""
    return serving_from_manifests(
        [service_manifest(app) for app in SERVICES]
        + [deployment_manifest(w, istio_version) for w in WORKLOADS]
        + [destination_rule(bookinfo_service(app)) for app in SERVICES]
    )
