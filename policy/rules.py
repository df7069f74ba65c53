"""Pure policy rules over a stack's resources: Istio routing, ingress, faults and workloads."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

# The policy pack runs from policy/ in a process of its own and may be copied elsewhere,
# so it imports nothing from the program; tests pin these copies to the program's values.
FAULT_INJECTION_ANNOTATION = "bookinfo-mesh/fault-injection"
FAULT_INJECTION_ALLOWED = "allowed"
PRODUCTION_TAG = ("environment", "production")

# A value the engine does not know yet (preview of a resource not yet created). The policy
# wiring maps pulumi_policy's unknowns to this; the mock engine records them the same way.
UNKNOWN = "[unknown]"

ISTIO_NETWORKING = "kubernetes:networking.istio.io/"
SERVICE = "kubernetes:core/v1:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
GATEWAY_CHART = "gateway"
CLUSTER_DOMAIN = "svc.cluster.local"

# Where each kind of workload keeps its pod template ("" = the object is the pod).
_POD_TEMPLATES: dict[str, str] = {
    DEPLOYMENT: "spec.template",
    "kubernetes:apps/v1:StatefulSet": "spec.template",
    "kubernetes:apps/v1:DaemonSet": "spec.template",
    "kubernetes:apps/v1:ReplicaSet": "spec.template",
    "kubernetes:core/v1:Pod": "",
    "kubernetes:batch/v1:Job": "spec.template",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template",
}
# Workloads whose pods serve requests for as long as they exist (not run-to-completion).
_SERVING = frozenset(t for t in _POD_TEMPLATES if not t.startswith("kubernetes:batch/"))
# An image reference as distribution/reference's grammar (reference.go) reads it:
# [host[:port]/]path-component(/path-component)*[:tag][@digest]. The digest is taken loosely
# here so that a malformed one gets its own message.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>.*))?"
)
# OCI image-spec digests: the registered algorithms, with their lower-case hex lengths.
_PINNED_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
# A Kubernetes quantity's number and suffix ("500m", "2Gi", "1e3", "0.5").
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:[eE][+-]?[0-9]+|[a-zA-Z]*)")
_REQUESTED = ("cpu", "memory")


@dataclass(frozen=True)
class PolicyResource:
    """One resource as a stack policy sees it: type token, Pulumi name, properties."""

    type: str
    name: str
    props: Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    """A named check: resources in, one message per violation out.

    per_resource: the check judges each resource on its own props alone, so it may run on
    one resource at a time, before that resource is created; otherwise it relates several
    resources and needs the whole stack.
    """

    name: str
    description: str
    check: Callable[[Sequence[PolicyResource]], list[str]]
    per_resource: bool = False


# --- reading plain data -------------------------------------------------------------------


def _has_unknown(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_unknown(v) for v in value)
    return value == UNKNOWN


def _dig(value: Any, path: str) -> Any:
    """value at a dotted path, or None where a step is missing or not a mapping."""
    for key in filter(None, path.split(".")):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _kind(resource: PolicyResource) -> str:
    return resource.type.rpartition(":")[2]


def _is_istio(resource: PolicyResource, kind: str) -> bool:
    """Any served version (v1, v1beta1, v1alpha3): a version bump must not hide an object."""
    return resource.type.startswith(ISTIO_NETWORKING) and resource.type.endswith(f":{kind}")


def _identity(resource: PolicyResource) -> tuple[str, str] | None:
    """(namespace, name) of a Kubernetes object, or None while either is unknown or unset."""
    meta = _mapping(resource.props.get("metadata"))
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    if not isinstance(name, str) or not name or UNKNOWN in (name, namespace):
        return None
    return str(namespace), name


def describe(resource: PolicyResource) -> str:
    """How messages name a resource: kind, namespace/name, and the Pulumi resource name."""
    identity = _identity(resource)
    if identity is not None:
        return f"{_kind(resource)} {identity[0]}/{identity[1]} [{resource.name}]"
    return f"{_kind(resource)} [{resource.name}]"


def _labels(labels: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(none)"


def _fqdn(host: str, namespace: str) -> str:
    """Istio's reading of a host: a name without dots is a Service in the rule's namespace."""
    return host if "." in host or host == "*" else f"{host}.{namespace}.{CLUSTER_DOMAIN}"


def _service_of(fqdn: str) -> tuple[str, str] | None:
    """(namespace, name) of the in-cluster Service an FQDN names, or None for other hosts."""
    parts = fqdn.split(".")
    if len(parts) == 5 and ".".join(parts[2:]) == CLUSTER_DOMAIN and "*" not in fqdn:
        return parts[1], parts[0]
    return None


def _short(fqdn: str, namespace: str) -> str:
    return fqdn.removesuffix(f".{namespace}.{CLUSTER_DOMAIN}")


# --- rule 1: weights ----------------------------------------------------------------------


def _route_lists(vs: PolicyResource) -> Iterator[tuple[str, list[Any]]]:
    """(field, destinations) of every route of a VirtualService: http, tcp and tls."""
    spec = _mapping(vs.props.get("spec"))
    for protocol in ("http", "tcp", "tls"):
        for index, rule in enumerate(_items(spec.get(protocol))):
            route = _items(_mapping(rule).get("route"))
            if route:
                yield f"spec.{protocol}[{index}].route", route


def check_route_weights(resources: Sequence[PolicyResource]) -> list[str]:
    """Destination weights of every route sum to 100; one destination without weight is 100."""
    violations: list[str] = []
    for vs in (r for r in resources if _is_istio(r, "VirtualService")):
        for field, route in _route_lists(vs):
            if _has_unknown(route):
                continue
            if len(route) == 1 and _mapping(route[0]).get("weight") is None:
                continue
            parts: list[str] = []
            total = 0.0
            for index, destination in enumerate(route):
                weight = _mapping(destination).get("weight", 0)
                target = _mapping(_mapping(destination).get("destination"))
                label = f"{target.get('host')}/{target.get('subset') or '-'}"
                if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                    violations.append(
                        f"{describe(vs)}: {field}[{index}].weight is {weight!r}, not a number"
                    )
                    break
                if isinstance(weight, float) and not weight.is_integer():
                    violations.append(
                        f"{describe(vs)}: {field}[{index}].weight is {weight:g}; Istio "
                        "weights are whole numbers"
                    )
                if weight < 0:
                    violations.append(
                        f"{describe(vs)}: {field}[{index}].weight is {weight:g}; "
                        "weights are percentages from 0 to 100"
                    )
                parts.append(f"{label}={weight:g}")
                total += weight
            else:
                if total != 100:
                    violations.append(
                        f"{describe(vs)}: {field}[*].weight sum to {total:g}, not 100 "
                        f"({', '.join(parts)}); traffic would not split as written"
                    )
    return violations


# --- rule 2: subsets exist and select pods ------------------------------------------------


@dataclass(frozen=True)
class _Subsets:
    rule: PolicyResource
    subsets: Mapping[str, Mapping[str, Any]]  # subset name -> its labels


def _destination_rules(
    resources: Sequence[PolicyResource],
) -> tuple[dict[str, list[_Subsets]], bool]:
    """Host FQDN (or wildcard host) -> its DestinationRules; and whether all are known."""
    by_host: dict[str, list[_Subsets]] = {}
    rules = [r for r in resources if _is_istio(r, "DestinationRule")]
    known = not any(
        _has_unknown(r.props.get("spec")) or _has_unknown(r.props.get("metadata")) for r in rules
    )
    for rule in rules:
        identity = _identity(rule)
        host = _dig(rule.props, "spec.host")
        if identity is None or not isinstance(host, str) or host == UNKNOWN:
            continue
        subsets = {
            str(s.get("name")): _mapping(s.get("labels"))
            for s in map(_mapping, _items(_dig(rule.props, "spec.subsets")))
        }
        by_host.setdefault(_fqdn(host, identity[0]), []).append(_Subsets(rule, subsets))
    return by_host, known


def _rules_for(fqdn: str, by_host: Mapping[str, list[_Subsets]]) -> list[_Subsets]:
    """The DestinationRules Istio applies to a host: exact host, else the closest wildcard."""
    if fqdn in by_host:
        return by_host[fqdn]
    wildcards = [h for h in by_host if h == "*" or (h.startswith("*.") and fqdn.endswith(h[1:]))]
    return by_host[max(wildcards, key=len)] if wildcards else []


def _running_pod_labels(resources: Sequence[PolicyResource]) -> dict[str, list[Mapping]]:
    """Namespace -> pod labels of every serving workload that runs at least one pod."""
    running: dict[str, list[Mapping]] = {}
    for workload in (r for r in resources if r.type in _SERVING):
        identity = _identity(workload)
        if identity is None:
            continue
        template = _dig(workload.props, _POD_TEMPLATES[workload.type])
        replicas = _dig(workload.props, "spec.replicas")
        if replicas == 0:
            continue
        running.setdefault(identity[0], []).append(_mapping(_dig(template, "metadata.labels")))
    return running


def _routed_destinations(vs: PolicyResource) -> Iterator[tuple[str, Any]]:
    """(field path, Destination) of every route entry, mirror and mirrors entry: all of them
    need their subset. A mirror is itself a Destination; the others hold one."""
    for field, route in _route_lists(vs):
        for index, entry in enumerate(route):
            yield f"{field}[{index}].destination", _mapping(entry).get("destination")
    for index, rule in enumerate(_items(_dig(vs.props, "spec.http"))):
        mirror = _mapping(rule).get("mirror")
        if isinstance(mirror, Mapping):
            yield f"spec.http[{index}].mirror", mirror
        for m_index, policy in enumerate(_items(_mapping(rule).get("mirrors"))):
            target = _mapping(policy).get("destination")
            if isinstance(target, Mapping):
                yield f"spec.http[{index}].mirrors[{m_index}].destination", target


def _promised_version(subset: str) -> str | None:
    """The version a subset's name promises: v2 for `v2` and `v2-canary`; None for `stable`."""
    promise = re.match(r"(v[0-9]+)(?:-|$)", subset)
    return promise[1] if promise else None


def check_routed_subsets(resources: Sequence[PolicyResource]) -> list[str]:
    """Every subset a route names exists for its host, and its labels select running pods."""
    by_host, rules_known = _destination_rules(resources)
    if not rules_known:
        return []  # in preview, until the engine knows every DestinationRule
    services = {
        identity: s
        for s in resources
        if s.type == SERVICE and (identity := _identity(s)) is not None
    }
    pods = _running_pod_labels(resources)
    # While the engine does not know a field these checks read, they cannot prove absence.
    pods_known = not _has_unknown(pods) and not any(
        _has_unknown(_dig(s.props, "spec.selector")) for s in services.values()
    )
    violations: list[str] = []
    for vs in (r for r in resources if _is_istio(r, "VirtualService")):
        identity = _identity(vs)
        if identity is None:
            continue  # unnamed, or its namespace is not known yet: short hosts are ambiguous
        namespace = identity[0]
        for field, found in _routed_destinations(vs):
            destination = _mapping(found)
            host, subset = destination.get("host"), destination.get("subset")
            if subset is None or _has_unknown(destination) or not isinstance(host, str):
                continue
            where = f"{describe(vs)}: {field}.subset {subset!r}"
            fqdn = _fqdn(host, namespace)
            candidates = _rules_for(fqdn, by_host)
            if not candidates:
                violations.append(
                    f"{where} of host {host!r}: no DestinationRule has host {fqdn} "
                    "(short names resolve in the rule's namespace); Istio answers 503"
                )
                continue
            defining = [c for c in candidates if subset in c.subsets]
            if not defining:
                named = ", ".join(describe(c.rule) for c in candidates)
                known = sorted({s for c in candidates for s in c.subsets})
                violations.append(
                    f"{where} is not defined by {named} for host {host!r} (its subsets: "
                    f"{', '.join(known) or 'none'}); Istio answers 503"
                )
                continue
            service_id = _service_of(fqdn)
            if service_id is None or not pods_known:
                continue
            service = services.get(service_id)
            if service is None:
                violations.append(
                    f"{where} of host {host!r}: no Service {service_id[1]} in namespace "
                    f"{service_id[0]}, so no pod can receive its traffic"
                )
                continue
            selector = _dig(service.props, "spec.selector")
            if not isinstance(selector, Mapping):
                continue  # a Service without selector: endpoints are managed by hand
            for subset_rule in defining:
                wanted = {**selector, **subset_rule.subsets[subset]}
                selected = [
                    labels
                    for labels in pods.get(service_id[0], [])
                    if all(labels.get(k) == v for k, v in wanted.items())
                ]
                versions = sorted({str(p["version"]) for p in selected if "version" in p})
                promised = _promised_version(subset)
                if promised is not None and versions and versions != [promised]:
                    violations.append(
                        f"{where} of host {_short(fqdn, service_id[0])!r}: its labels "
                        f"{_labels(subset_rule.subsets[subset])} in "
                        f"{describe(subset_rule.rule)} select pods of version "
                        f"{', '.join(versions)}, so traffic meant for {promised} reaches "
                        "another version"
                    )
                if not selected:
                    violations.append(
                        f"{where} of host {_short(fqdn, service_id[0])!r} selects pods "
                        f"labelled {_labels(wanted)} (selector of {describe(service)} "
                        f"and subset labels of {describe(subset_rule.rule)}), but no "
                        f"Deployment (or other workload) in namespace {service_id[0]} "
                        "runs such pods"
                    )
    return violations


# --- rule 3: the Gateway selects the ingress gateway's pods -------------------------------


def gateway_pod_labels(release_name: str, values: Mapping[str, Any]) -> dict[str, str]:
    """Pod labels Istio's `gateway` chart renders (templates/_helpers.tpl, deployment.yaml).

    name = values.name or the release name; selector labels app = labels.app or name,
    istio = labels.istio or name without a leading "istio-"; values.labels adds the rest.
    """
    name = str(values.get("name") or release_name or "istio-ingressgateway")
    overrides = _mapping(values.get("labels"))
    labels = {
        "sidecar.istio.io/inject": "true",
        "app": str(overrides["app"]) if overrides.get("app") is not None else name,
        "istio": (
            str(overrides["istio"])
            if overrides.get("istio") is not None
            else name.removeprefix("istio-")
        ),
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "istio",
    }
    if release_name:
        labels["app.kubernetes.io/instance"] = release_name
    if values.get("revision"):
        labels["istio.io/rev"] = str(values["revision"])
    labels |= {str(k): str(v) for k, v in overrides.items() if k not in ("app", "istio")}
    if values.get("networkGateway"):
        labels["topology.istio.io/network"] = str(values["networkGateway"])
    return labels


def _is_gateway_release(resource: PolicyResource) -> bool:
    chart = resource.props.get("chart")
    return (
        resource.type == HELM_RELEASE
        and isinstance(chart, str)
        and PurePosixPath(chart).name == GATEWAY_CHART
    )


def check_gateway_selectors(resources: Sequence[PolicyResource]) -> list[str]:
    """Each Gateway's selector matches the pods of an ingress gateway the stack installs."""
    violations: list[str] = []
    releases: list[tuple[PolicyResource, dict[str, str]]] = []
    certain = True
    for release in filter(_is_gateway_release, resources):
        name, values = release.props.get("name"), _mapping(release.props.get("values"))
        if _has_unknown(name) or _has_unknown(values):
            certain = False
        elif not name and not values.get("name"):
            violations.append(
                f"{describe(release)}: name is not set, so Pulumi names the Helm release with "
                "a random suffix and the chart derives the pods' istio label from it; set "
                "name (or values.labels.istio)"
            )
        else:
            releases.append((release, gateway_pod_labels(str(name or ""), values)))
    for gateway in (r for r in resources if _is_istio(r, "Gateway")):
        selector = _dig(gateway.props, "spec.selector")
        if _has_unknown(selector) or not certain:
            continue
        if not isinstance(selector, Mapping) or not selector:
            violations.append(f"{describe(gateway)}: spec.selector is empty or missing")
            continue
        if any(all(labels.get(k) == v for k, v in selector.items()) for _, labels in releases):
            continue
        found = (
            "; ".join(
                f"{describe(r)} labels its pods {_labels({k: pod[k] for k in ('app', 'istio')})}"
                for r, pod in releases
            )
            or f"the stack installs no Helm release of chart {GATEWAY_CHART!r}"
        )
        violations.append(
            f"{describe(gateway)}: spec.selector {_labels(selector)} matches no ingress "
            f"gateway pod ({found}); the gateway would accept no traffic"
        )
    return violations


# --- rule 4: no fault injection in production unless allowed ------------------------------


def production_evidence(resources: Sequence[PolicyResource]) -> list[PolicyResource]:
    """Resources whose tags mark the stack as production."""
    key, value = PRODUCTION_TAG
    return [
        r
        for r in resources
        if any(_mapping(r.props.get(t)).get(key) == value for t in ("tags", "tagsAll"))
    ]


def check_production_faults(resources: Sequence[PolicyResource]) -> list[str]:
    """On a production stack, fault injection needs the VirtualService's explicit annotation."""
    evidence = production_evidence(resources)
    if not evidence:
        return []
    key, value = PRODUCTION_TAG
    why = (
        f"the stack is production ({evidence[0].name}"
        + (f" and {len(evidence) - 1} more" if len(evidence) > 1 else "")
        + f" carry tag {key}={value})"
    )
    violations: list[str] = []
    for vs in (r for r in resources if _is_istio(r, "VirtualService")):
        annotations = _mapping(_dig(vs.props, "metadata.annotations"))
        if annotations.get(FAULT_INJECTION_ANNOTATION) in (FAULT_INJECTION_ALLOWED, UNKNOWN):
            continue
        for index, rule in enumerate(_items(_dig(vs.props, "spec.http"))):
            fault = _mapping(rule).get("fault")
            if fault:
                kinds = "/".join(sorted(_mapping(fault))) or "fault"
                violations.append(
                    f"{describe(vs)}: spec.http[{index}].fault injects {kinds} but {why}; "
                    f'only metadata.annotations["{FAULT_INJECTION_ANNOTATION}"]: '
                    f'"{FAULT_INJECTION_ALLOWED}" allows that (stack config '
                    "allowFaultInjection: true sets it)"
                )
    return violations


# --- rules 5 and 6: containers ------------------------------------------------------------


def _containers(
    resources: Sequence[PolicyResource],
) -> Iterator[tuple[PolicyResource, str, Mapping[str, Any]]]:
    """(workload, field path, container) for every container and init container of a pod."""
    for workload in (r for r in resources if r.type in _POD_TEMPLATES):
        template = _POD_TEMPLATES[workload.type]
        spec_path = f"{template}.spec" if template else "spec"
        for group in ("initContainers", "containers"):
            for index, container in enumerate(_items(_dig(workload.props, f"{spec_path}.{group}"))):
                yield workload, f"{spec_path}.{group}[{index}]", _mapping(container)


def image_pin_problem(image: Any) -> str | None:
    """What keeps an image reference from naming one fixed image, or None if it is pinned."""
    if not isinstance(image, str) or not image:
        return "is not set"
    reference = _IMAGE_REFERENCE.fullmatch(image)
    if reference is None:
        return (
            "is not an image reference the kubelet can pull: [registry[:port]/]name[:tag]"
            "[@digest], with a lower-case name"
        )
    tag, digest = reference["tag"], reference["digest"]
    if digest is not None:
        if not _PINNED_DIGEST.fullmatch(digest):
            return (
                f"has a malformed digest {digest!r}; want sha256: and 64 lower-case hex "
                "characters (or sha512: and 128)"
            )
        return None
    if tag is None:
        return "has no tag or digest, so it pulls whatever :latest is at the time"
    if tag.lower() == "latest":  # registries treat tags case-sensitively; people do not
        return "is tagged latest, which moves; pin a version tag or a digest"
    return None


def check_images_pinned(resources: Sequence[PolicyResource]) -> list[str]:
    """Every container image has a tag other than latest, or a digest."""
    violations: list[str] = []
    for workload, field, container in _containers(resources):
        image = container.get("image")
        if image == UNKNOWN:
            continue
        problem = image_pin_problem(image)
        if problem:
            violations.append(
                f"{describe(workload)}: {field}.image {image!r} of container "
                f"{container.get('name')!r} {problem}"
            )
    return violations


def _is_zero(quantity: Any) -> bool:
    """True for an absent, empty or zero quantity ("0", "0m", "0Gi", 0): no request at all."""
    if quantity is None or quantity == "":
        return True
    match = _QUANTITY.fullmatch(str(quantity).strip())  # a number reads as its own text
    return match is not None and float(match[1]) == 0


def check_resource_requests(resources: Sequence[PolicyResource]) -> list[str]:
    """Every container requests cpu and memory (a limit alone counts: Kubernetes copies it)."""
    violations: list[str] = []
    for workload, field, container in _containers(resources):
        resources_ = container.get("resources")
        if _has_unknown(resources_):
            continue
        requests = _mapping(_mapping(resources_).get("requests"))
        limits = _mapping(_mapping(resources_).get("limits"))
        missing = [
            r
            for r in _REQUESTED
            if _is_zero(requests.get(r) if requests.get(r) not in (None, "") else limits.get(r))
        ]
        if missing:
            violations.append(
                f"{describe(workload)}: {field}.resources.requests of container "
                f"{container.get('name')!r} has no {' or '.join(missing)} (or a zero one); "
                "the scheduler would place it as if it needed nothing"
            )
    return violations


RULES: tuple[Rule, ...] = (
    Rule(
        "virtual-service-weights-sum-to-100",
        "VirtualService route destination weights sum to 100 on every route.",
        check_route_weights,
        per_resource=True,
    ),
    Rule(
        "routed-subsets-exist-and-select-pods",
        "Every subset a VirtualService routes to is defined by a DestinationRule for its host "
        "and selects pods a Deployment runs.",
        check_routed_subsets,
    ),
    Rule(
        "gateway-selects-ingress-gateway-pods",
        "Every Istio Gateway's selector matches the pod labels of the ingress gateway chart.",
        check_gateway_selectors,
    ),
    Rule(
        "no-fault-injection-in-production",
        "A production stack injects faults only where a VirtualService is annotated "
        f"{FAULT_INJECTION_ANNOTATION}: {FAULT_INJECTION_ALLOWED}.",
        check_production_faults,
    ),
    Rule(
        "container-images-pinned",
        "Every container image has an explicit tag other than latest, or a digest.",
        check_images_pinned,
        per_resource=True,
    ),
    Rule(
        "containers-request-cpu-and-memory",
        "Every container has cpu and memory resource requests.",
        check_resource_requests,
        per_resource=True,
    ),
)
