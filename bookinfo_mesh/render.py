"""Offline render: what `pulumi up` would create, as files and as a summary per cohort."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel

from bookinfo_mesh.engine import ProgramRun, RegisteredResource
from bookinfo_mesh.errors import ToolError
from bookinfo_mesh.outputs import write_dir
from model.http_policy import HttpRule, Request, first_rule
from model.outcomes import EVERYONE, cohort_key, predict_page
from model.policy_manifests import routes_of
from model.routing import RouteTable, describe_rule, rule_for
from model.serving import serving_from_manifests
from stacks.config import PROJECT

# The order `kubectl apply -f manifests.yaml` needs on a cluster that has Istio: the
# namespace first, the revision tag's webhook before the pods it injects, accounts before
# the pods that use them, subsets before routes.
KIND_ORDER: tuple[str, ...] = (
    "Namespace",
    "StorageClass",
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


class _Record(BaseModel):
    """A part of a render: frozen, and camelCase in its JSON files, like the stack outputs."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )


class ResourceRecord(_Record):
    """One registration as the engine saw it; secrets masked, provider by URN."""

    urn: str
    type: str
    name: str
    parent: str | None
    dependencies: tuple[str, ...]
    provider: str | None
    protect: bool
    read: bool  # a `.get()` of an existing object, not something the program creates
    inputs: dict[str, Any]


class RouteCell(_Record):
    """What one cohort gets from one service: versions with weights, and the fault if any."""

    to: str
    fault: str | None = None

    @model_serializer(mode="wrap")
    def _without_absent_fault(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k != "fault" or v is not None}

    def __str__(self) -> str:
        return self.to + (f"; {self.fault}" if self.fault else "")


class OutcomeRecord(_Record):
    """One way the page turns out for a cohort (model.outcomes.PageOutcome)."""

    share: float
    reviews_version: str | None = None
    ratings_unavailable: bool
    wait_seconds: float
    sees: str


class PageRecord(_Record):
    """The page one cohort is predicted to see."""

    summary: str
    outcomes: tuple[OutcomeRecord, ...]


class Summary(_Record):
    """Counts, routes and predicted pages, all derived from what the program registered.

    For another project than this one (a user's own program with TrafficPolicy), the routes
    are those of a request that carries nothing (EVERYONE), and no page is predicted: the
    cohorts and the page are Bookinfo's.
    """

    stack: str
    project: str = PROJECT
    config: dict[str, str]  # the project's keys without their prefix; other keys whole
    resource_count: int
    resources: dict[str, dict[str, int]]  # top-level component -> type -> count
    routes: dict[str, dict[str, RouteCell]]  # service -> cohort key -> cell
    predicted_pages: dict[str, PageRecord]  # cohort key -> page
    outputs: dict[str, Any]

    @property
    def kubernetes_version(self) -> str:
        return self.config["kubernetesVersion"]

    @property
    def test_user(self) -> str | None:
        """Bookinfo's test user; None for another project, whose cohorts are not Bookinfo's."""
        return self.config["testUser"] if self.project == PROJECT else None


@dataclass(frozen=True)
class Rendered:
    """Everything render writes, in memory; its files are the contract between two commits'
    renders (diff --base reads what another commit's render wrote)."""

    resources: tuple[ResourceRecord, ...]
    manifests: tuple[dict[str, Any], ...]
    summary: Summary

    def files(self) -> dict[str, str]:
        """File name -> content, exactly RENDER_FILES."""
        resources = [r.model_dump(mode="json", by_alias=True) for r in self.resources]
        return {
            "resources.json": _json(resources),
            "manifests.yaml": yaml.safe_dump_all(list(self.manifests), sort_keys=False, width=100),
            "summary.json": _json(self.summary.model_dump(mode="json", by_alias=True)),
        }

    @property
    def istio_crds_version(self) -> str:
        """The Istio release whose base chart installs the CRDs every Istio object meets."""
        (base,) = (
            r.inputs
            for r in self.resources
            if r.type == HELM_RELEASE and r.inputs.get("chart") == "base"
        )
        return str(base["version"])

    def write(self, out_dir: Path) -> None:
        """All three files appear together, replacing an earlier render's (OutputError if not)."""
        write_dir(out_dir, self.files(), RENDER_FILES)

    @classmethod
    def read(cls, out_dir: Path, what: str) -> Rendered:
        """The render in `out_dir`; ToolError naming `what` if its files are not one."""
        try:
            return cls(
                resources=tuple(
                    ResourceRecord.model_validate(r)
                    for r in json.loads((out_dir / "resources.json").read_text())
                ),
                manifests=tuple(yaml.safe_load_all((out_dir / "manifests.yaml").read_text())),
                summary=Summary.model_validate_json((out_dir / "summary.json").read_text()),
            )
        except (OSError, ValueError, TypeError, yaml.YAMLError) as error:
            first = str(error).splitlines()[0]
            raise ToolError(f"{what} is not a render this version can read: {first}") from None


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _is_manifest(resource: RegisteredResource) -> bool:
    return (
        resource.type.startswith("kubernetes:")
        and resource.custom
        and not resource.read
        and not resource.type.startswith(_HELM)
    )


def manifests_of(run: ProgramRun) -> tuple[dict[str, Any], ...]:
    """The Kubernetes and Istio objects the program creates, in an order kubectl accepts."""
    objects = [dict(r.inputs) for r in run.resources if _is_manifest(r)]

    def order(obj: dict[str, Any]) -> tuple[int, str, str]:
        # Every object the program registers is named; cluster-scoped kinds have no namespace.
        meta = obj["metadata"]
        return KIND_ORDER.index(obj["kind"]), meta.get("namespace", ""), meta["name"]

    return tuple(sorted(objects, key=order))


def resources_of(run: ProgramRun) -> tuple[ResourceRecord, ...]:
    """Every registration: type, name, parent, dependencies and (masked) inputs."""
    return tuple(
        ResourceRecord(
            urn=r.urn,
            type=r.type,
            name=r.name,
            parent=r.parent,
            dependencies=r.dependencies,
            # A provider reference is "<URN>::<id>", and URNs contain "::" themselves.
            provider=r.provider.rsplit("::", 1)[0] if r.provider else None,
            protect=r.protect,
            read=r.read,
            inputs=dict(r.inputs),
        )
        for r in run.resources
    )


def _component_of(resource: RegisteredResource, by_urn: dict[str, RegisteredResource]) -> str:
    """The top-level component a resource belongs to (its ancestor just below the stack)."""
    current = resource
    while current.parent in by_urn:
        current = by_urn[current.parent]
    return current.type.rpartition(":")[2]


def cell_of(rule: HttpRule) -> RouteCell:
    """What a request a rule takes gets: versions with weights, and a fault."""
    described = describe_rule(rule)
    to = ", ".join(f"{s} {w} %" for s, w in described["to"].items())
    return RouteCell(to=to, fault=str(described["fault"]) if "fault" in described else None)


def route_cells(rules: tuple, user: str | None) -> RouteCell:
    """What one Bookinfo cohort gets from one service's rules."""
    return cell_of(rule_for(rules, user))


def _users(test_user: str) -> tuple[tuple[str, str | None], ...]:
    return ((cohort_key(None), None), (cohort_key(test_user), test_user))


def cohort_routes(table: RouteTable, test_user: str) -> dict[str, dict[str, RouteCell]]:
    """service -> cohort key -> route cells, for anonymous visitors and the test user."""
    return {
        service: {user_key: route_cells(rules, user) for user_key, user in _users(test_user)}
        for service, rules in table.items()
    }


def everyone_routes(table: RouteTable) -> dict[str, dict[str, RouteCell]]:
    """service -> {EVERYONE: what a request that carries nothing gets}, for any services."""
    cells = {}
    for service, rules in table.items():
        rule = first_rule(rules, Request())
        cells[service] = {EVERYONE: RouteCell(to="no rule: 404") if rule is None else cell_of(rule)}
    return cells


def summarize(
    run: ProgramRun, manifests: tuple[dict[str, Any], ...], project: str = PROJECT
) -> Summary:
    """Counts, routes and predicted pages, all derived from what the program registered."""
    by_urn = {r.urn: r for r in run.resources}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for resource in run.resources:
        if resource.parent in by_urn:
            counts[_component_of(resource, by_urn)][resource.type] += 1
    prefix = f"{project}:"
    config = {k.removeprefix(prefix): v for k, v in sorted(run.config.items())}
    table = routes_of([m for m in manifests if m["kind"] == "VirtualService"])
    common = {
        "stack": run.stack,
        "project": project,
        "config": config,
        "resource_count": len(run.resources),
        "resources": {c: dict(sorted(n.items())) for c, n in sorted(counts.items())},
        "outputs": dict(run.outputs),
    }
    if project != PROJECT:
        return Summary(**common, routes=everyone_routes(table), predicted_pages={})
    test_user = config["testUser"]
    return Summary(
        **common,
        routes=cohort_routes(table, test_user),
        predicted_pages={
            p.cohort: PageRecord(
                summary=p.describe(),
                outcomes=tuple(
                    OutcomeRecord(
                        share=o.share,
                        reviews_version=o.reviews_version,
                        ratings_unavailable=o.ratings_unavailable,
                        wait_seconds=o.wait_s,
                        sees=o.what,
                    )
                    for o in p.outcomes
                ),
            )
            for p in predict_page(table, serving_from_manifests(manifests), test_user)
        },
    )


def render_run(run: ProgramRun, project: str = PROJECT) -> Rendered:
    manifests = manifests_of(run)
    return Rendered(resources_of(run), manifests, summarize(run, manifests, project))
