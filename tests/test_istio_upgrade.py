"""A minor upgrade of the control plane, rehearsed: 1.30.4 -> 1.31.0 as a canary, step by step.

Every step renders and passes the schemas; each step's diff does what the ladder says, in
the order Istio documents; and at no step is a workload left without an istiod that can
serve its sidecar. That last judgement is read from the rendered objects (the namespace's
labels, the revision tag's webhook selectors and service, the Helm releases' values), not
from the plan that produced them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from bookinfo_mesh.diff import StackDiff, diff_rendered
from bookinfo_mesh.render import HELM_RELEASE, Rendered, render_run
from bookinfo_mesh.schemas import validate_manifests
from model.catalogue import ISTIO_VERSION_ANNOTATION, NAMESPACE, WORKLOADS
from tests.programs import shared_run

OLD, NEW = "1.30.4", "1.31.0"
# One config change per step, as a pull request would make it (the dev stack's file, with
# these keys set; each step's keys replace the previous step's).
LADDER: tuple[tuple[str, dict[str, str]], ...] = (
    ("running 1.30", {"istioVersion": OLD}),
    ("canary installed", {"istioVersion": OLD, "istioCanaryVersion": NEW}),
    (
        "workloads moved",
        {"istioVersion": OLD, "istioCanaryVersion": NEW, "istioCanaryStage": "workloads"},
    ),
    (
        "gateway moved",
        {"istioVersion": OLD, "istioCanaryVersion": NEW, "istioCanaryStage": "gateway"},
    ),
    ("old revision removed", {"istioVersion": NEW}),
)
STEPS = [name for name, _ in LADDER]
BOOKINFO_DEPLOYMENTS = {f"bookinfo-{w.name}" for w in WORKLOADS}


@pytest.fixture(scope="module")
def ladder() -> dict[str, Rendered]:
    renders = {}
    for name, overrides in LADDER:
        run = shared_run("dev", overrides)
        assert run.error is None, f"step '{name}' does not render: {run.error}"
        renders[name] = render_run(run)
    return renders


# --- reading the rendered objects ----------------------------------------------------------
def istiod_revisions(rendered: Rendered) -> dict[str, str]:
    """Installed istiod revisions -> their chart version, from the Helm releases."""
    return {
        r.inputs["values"]["revision"]: r.inputs["version"]
        for r in rendered.resources
        if r.type == HELM_RELEASE and r.inputs["chart"] == "istiod"
    }


def chart_values(rendered: Rendered, chart: str) -> Mapping[str, Any]:
    (release,) = (
        r.inputs
        for r in rendered.resources
        if r.type == HELM_RELEASE and r.inputs["chart"] == chart
    )
    return release


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics (matchLabels and matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def injectors_of_bookinfo_pods(rendered: Rendered) -> list[str]:
    """The istiod services whose webhooks the program's objects send a Bookinfo pod to."""
    (namespace,) = (
        m
        for m in rendered.manifests
        if m["kind"] == "Namespace" and m["metadata"]["name"] == NAMESPACE
    )
    namespace_labels = namespace["metadata"].get("labels") or {}
    (deployment,) = (
        m
        for m in rendered.manifests
        if m["kind"] == "Deployment" and m["metadata"]["name"] == "reviews-v2"
    )
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    return [
        webhook["clientConfig"]["service"]["name"]
        for configuration in rendered.manifests
        if configuration["kind"] == "MutatingWebhookConfiguration"
        for webhook in configuration["webhooks"]
        if selects(webhook["namespaceSelector"], namespace_labels)
        and selects(webhook["objectSelector"], pod_labels)
    ]


def bookinfo_revision(rendered: Rendered) -> str:
    """The revision whose istiod injects Bookinfo's pods: exactly one webhook must match."""
    services = injectors_of_bookinfo_pods(rendered)
    assert len(services) == 1, f"Bookinfo's pods meet {len(services)} injectors: {services}"
    (service,) = services
    assert service.startswith("istiod-"), f"the injector is {service}, not an istiod"
    return service.removeprefix("istiod-")


def gateway_revision(rendered: Rendered) -> str:
    """The chart labels the gateway's pods istio.io/rev=<values.revision>, which the
    revision's own injector (istiod chart, revision-scoped) serves."""
    return str(chart_values(rendered, "gateway")["values"]["revision"])


def served(rendered: Rendered) -> dict[str, str]:
    return {"bookinfo": bookinfo_revision(rendered), "gateway": gateway_revision(rendered)}


# --- every step ----------------------------------------------------------------------------
@pytest.mark.parametrize("step", STEPS)
def test_every_step_renders_objects_that_pass_the_schemas_of_its_crds(
    ladder: dict[str, Rendered], step: str
) -> None:
    rendered = ladder[step]
    version = rendered.summary.kubernetes_version
    checked = validate_manifests(rendered.manifests, version, rendered.istio_crds_version)
    assert checked.unchecked is None, checked.unchecked
    violations = checked.violations
    assert violations == [], f"{step}: " + "; ".join(map(str, violations))


@pytest.mark.parametrize("step", STEPS)
def test_at_every_step_each_workload_has_an_installed_istiod_to_serve_its_sidecar(
    ladder: dict[str, Rendered], step: str
) -> None:
    rendered = ladder[step]
    installed = istiod_revisions(rendered)
    for workload, revision in served(rendered).items():
        assert revision in installed, (
            f"{step}: {workload} is injected by istiod-{revision}, but only {sorted(installed)} run"
        )
    default = chart_values(rendered, "base")["values"]["defaultRevision"]
    assert default in installed, f"{step}: the default validator names istiod-{default}"


@pytest.mark.parametrize(("before", "after"), list(itertools.pairwise(STEPS)))
def test_no_step_removes_a_revision_that_the_step_before_served_workloads_from(
    ladder: dict[str, Rendered], before: str, after: str
) -> None:
    """Running sidecars stay connected to the istiod that injected them until their pods
    roll; a revision is removed only once no workload runs on it."""
    still_used = set(served(ladder[before]).values())
    installed = set(istiod_revisions(ladder[after]))
    assert still_used <= installed, (
        f"'{after}' removes {sorted(still_used - installed)} while '{before}' runs on it"
    )


def test_the_ladder_moves_bookinfo_before_the_gateway_and_the_crds_first(
    ladder: dict[str, Rendered],
) -> None:
    assert [served(ladder[s]) for s in STEPS] == [
        {"bookinfo": "1-30", "gateway": "1-30"},
        {"bookinfo": "1-30", "gateway": "1-30"},
        {"bookinfo": "1-31", "gateway": "1-30"},
        {"bookinfo": "1-31", "gateway": "1-31"},
        {"bookinfo": "1-31", "gateway": "1-31"},
    ]
    assert [sorted(istiod_revisions(ladder[s]).items()) for s in STEPS] == [
        [("1-30", OLD)],
        [("1-30", OLD), ("1-31", NEW)],
        [("1-30", OLD), ("1-31", NEW)],
        [("1-30", OLD), ("1-31", NEW)],
        [("1-31", NEW)],
    ]
    # The base chart (CRDs, shared by both revisions) comes from the newer release from the
    # first canary step on.
    assert [ladder[s].istio_crds_version for s in STEPS] == [OLD, NEW, NEW, NEW, NEW]


# --- each step's diff ----------------------------------------------------------------------
def step_diff(ladder: dict[str, Rendered], before: str, after: str) -> StackDiff:
    return diff_rendered(ladder[before], ladder[after])


def operations(diff: StackDiff) -> dict[str, str]:
    return {c.name: c.op for c in diff.changes}


def order(diff: StackDiff) -> dict[str, int]:
    return {c.name: n for n, step in enumerate(diff.update_steps) for c in step}


def test_installing_the_canary_upgrades_the_crds_then_adds_its_istiod_and_nothing_else(
    ladder: dict[str, Rendered],
) -> None:
    diff = step_diff(ladder, "running 1.30", "canary installed")
    assert operations(diff) == {"istio-base": "update", "istio-istiod-1-31": "create"}
    assert order(diff) == {"istio-base": 0, "istio-istiod-1-31": 1}


def test_moving_the_tag_repoints_its_webhook_then_rolls_every_bookinfo_pod(
    ladder: dict[str, Rendered],
) -> None:
    diff = step_diff(ladder, "canary installed", "workloads moved")
    tag = {"istio-tag-stable-mutatingwebhookconfiguration", "istio-tag-stable-service"}
    # Grafana's Istio dashboards follow the sidecars whose metrics they show.
    dashboards = {"observability-grafana"}
    assert operations(diff) == dict.fromkeys(tag | BOOKINFO_DEPLOYMENTS | dashboards, "update")
    steps = order(diff)
    for deployment in BOOKINFO_DEPLOYMENTS:
        assert all(steps[deployment] > steps[t] for t in tag), f"{deployment} rolls first"
    for change in diff.changes:
        if change.name in BOOKINFO_DEPLOYMENTS:
            (field,) = change.fields
            assert field.path.endswith(ISTIO_VERSION_ANNOTATION) and field.after == NEW


def test_moving_the_gateway_touches_only_the_gateway_release(ladder: dict[str, Rendered]) -> None:
    diff = step_diff(ladder, "workloads moved", "gateway moved")
    assert operations(diff) == {"istio-gateway": "update"}
    (change,) = diff.changes
    assert {f.path: f.after for f in change.fields} == {"values.revision": "1-31", "version": NEW}


def test_finishing_removes_the_old_revision_last_and_hands_validation_to_the_new(
    ladder: dict[str, Rendered],
) -> None:
    diff = step_diff(ladder, "gateway moved", "old revision removed")
    assert operations(diff) == {"istio-base": "update", "istio-istiod-1-30": "delete"}
    (base,) = (c for c in diff.changes if c.name == "istio-base")
    assert [(f.path, f.after) for f in base.fields] == [("values.defaultRevision", "1-31")]
    assert [c.name for c in diff.update_steps[-1]] == ["istio-istiod-1-30"], "not removed last"


@pytest.mark.parametrize(("before", "after"), list(itertools.pairwise(reversed(STEPS))))
def test_each_step_rolls_back_with_the_reverse_change_and_keeps_every_workload_served(
    ladder: dict[str, Rendered], before: str, after: str
) -> None:
    diff = step_diff(ladder, before, after)
    forward = step_diff(ladder, after, before)
    reverse_op = {"create": "delete", "delete": "create", "update": "update"}
    assert operations(diff) == {n: reverse_op[op] for n, op in operations(forward).items()}
    still_used = set(served(ladder[before]).values())
    assert still_used <= set(istiod_revisions(ladder[after])), f"{after} strands a workload"
