"""Offline render: what `pulumi up` would create, as files and as a summary per cohort."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bookinfo_mesh.engine import ProgramRun, RegisteredResource
from bookinfo_mesh.outputs import write_dir
from model.istio_manifests import routes_from_manifests
from model.outcomes import cohort_key, predict_page
from model.routing import RouteTable, describe_rule, rule_for
from model.serving import serving_from_manifests
from stacks.config import PROJECT

# The order `kubectl apply -f manifests.yaml` needs on a cluster that has Istio: the
# namespace first, the revision tag's webhook before the pods it injects, accounts before
# the pods that use them, subsets before routes.
KIND_ORDER: tuple[str, ...] = (
    "Namespace",
    "MutatingWebhookConfiguration",
    "ServiceAccount",
    "Service",
    "Deployment",
    "DestinationRule",
    "Gateway",
    "VirtualService",
    "PeerAuthentication",
)
RENDER_FILES = frozenset({"resources.json", "manifests.yaml", "summary.json"})
# Helm releases are Kubernetes resources, but not objects the program writes itself.
_HELM = "kubernetes:helm.sh/"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


@dataclass(frozen=True)
class Rendered:
    """Everything render writes, in memory."""

    resources: list[dict[str, Any]]
    manifests: list[dict[str, Any]]
    summary: dict[str, Any]

    def files(self) -> dict[str, str]:
        """File name -> content, exactly RENDER_FILES."""
        return {
            "resources.json": _json(self.resources),
            "manifests.yaml": yaml.safe_dump_all(self.manifests, sort_keys=False, width=100),
            "summary.json": _json(self.summary),
        }

    @property
    def istio_crds_version(self) -> str:
        """The Istio release whose base chart installs the CRDs every Istio object meets."""
        (base,) = (
            r["inputs"]
            for r in self.resources
            if r["type"] == HELM_RELEASE and r["inputs"].get("chart") == "base"
        )
        return str(base["version"])

    def write(self, out_dir: Path) -> None:
        """All three files appear together, replacing an earlier render's (OutputError if not)."""
        write_dir(out_dir, self.files(), RENDER_FILES)

    @classmethod
    def read(cls, out_dir: Path) -> Rendered:
        return cls(
            resources=json.loads((out_dir / "resources.json").read_text()),
            manifests=list(yaml.safe_load_all((out_dir / "manifests.yaml").read_text())),
            summary=json.loads((out_dir / "summary.json").read_text()),
        )


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _is_manifest(resource: RegisteredResource) -> bool:
    return (
        resource.type.startswith("kubernetes:")
        and resource.custom
        and not resource.read
        and not resource.type.startswith(_HELM)
    )


def manifests_of(run: ProgramRun) -> list[dict[str, Any]]:
    """The Kubernetes and Istio objects the program creates, in an order kubectl accepts."""
    objects = [dict(r.inputs) for r in run.resources if _is_manifest(r)]

    def order(obj: dict[str, Any]) -> tuple[int, str, str]:
        # Every object the program registers is named; cluster-scoped kinds have no namespace.
        meta = obj["metadata"]
        return KIND_ORDER.index(obj["kind"]), meta.get("namespace", ""), meta["name"]

    return sorted(objects, key=order)


def resources_of(run: ProgramRun) -> list[dict[str, Any]]:
    """Every registration: type, name, parent, dependencies and (masked) inputs."""
    return [
        {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "dependencies": list(r.dependencies),
            # A provider reference is "<URN>::<id>", and URNs contain "::" themselves.
            "provider": r.provider.rsplit("::", 1)[0] if r.provider else None,
            "protect": r.protect,
            "read": r.read,
            "inputs": r.inputs,
        }
        for r in run.resources
    ]


def _component_of(resource: RegisteredResource, by_urn: dict[str, RegisteredResource]) -> str:
    """The top-level component a resource belongs to (its ancestor just below the stack)."""
    current = resource
    while current.parent in by_urn:
        current = by_urn[current.parent]
    return current.type.rpartition(":")[2]


def route_cells(rules: tuple, user: str | None) -> dict[str, str]:
    """What one cohort gets from one service's rules: versions with weights, and a fault."""
    described = describe_rule(rule_for(rules, user))
    cells = {"to": ", ".join(f"{s} {w} %" for s, w in described["to"].items())}
    if "fault" in described:
        cells["fault"] = str(described["fault"])
    return cells


def _users(test_user: str) -> tuple[tuple[str, str | None], ...]:
    return ((cohort_key(None), None), (cohort_key(test_user), test_user))


def cohort_routes(table: RouteTable, test_user: str) -> dict[str, dict[str, dict[str, str]]]:
    """service -> cohort key -> route cells, for anonymous visitors and the test user."""
    return {
        service: {user_key: route_cells(rules, user) for user_key, user in _users(test_user)}
        for service, rules in table.items()
    }


def summarize(run: ProgramRun, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, routes and predicted pages, all derived from what the program registered."""
    by_urn = {r.urn: r for r in run.resources}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for resource in run.resources:
        if resource.parent in by_urn:
            counts[_component_of(resource, by_urn)][resource.type] += 1
    prefix = f"{PROJECT}:"
    config = {k.removeprefix(prefix): v for k, v in sorted(run.config.items())}
    test_user = config["testUser"]
    table = routes_from_manifests([m for m in manifests if m["kind"] == "VirtualService"])
    return {
        "stack": run.stack,
        "config": config,
        "resourceCount": len(run.resources),
        "resources": {c: dict(sorted(n.items())) for c, n in sorted(counts.items())},
        "routes": cohort_routes(table, test_user),
        "predictedPages": {
            p.cohort: {
                "summary": p.describe(),
                "outcomes": [
                    {
                        "share": o.share,
                        "reviewsVersion": o.reviews_version,
                        "ratingsUnavailable": o.ratings_unavailable,
                        "waitSeconds": o.wait_s,
                        "sees": o.what,
                    }
                    for o in p.outcomes
                ],
            }
            for p in predict_page(table, serving_from_manifests(manifests), test_user)
        },
        "outputs": dict(run.outputs),
    }


def render_run(run: ProgramRun) -> Rendered:
    manifests = manifests_of(run)
    return Rendered(resources_of(run), manifests, summarize(run, manifests))
