"""Every rendered object judged by the real tools: istioctl, helm and a real kube-apiserver.

The charts are rendered by `helm template` from the release's own source with exactly the
values the program's Releases pass; Bookinfo, the Istio objects and the chart objects then go
to istioctl and to a kube-apiserver (with Istio's CRDs from the base chart), as `pulumi up`
would send them to the cluster. tests/real_tools.py obtains the tools.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bookinfo_mesh.diff import diff_rendered
from components.istio_mesh import GATEWAY_SERVICE_PORTS, NLB_ANNOTATIONS
from model.catalogue import (
    DESTINATION_RULE_SUBSETS,
    INGRESS_GATEWAY_LABELS,
    INGRESS_VIRTUAL_SERVICE_NAME,
    deployed_versions,
)
from model.control_plane import REVISION_TAG, Revision, revision_tag_manifests
from model.istio_releases import parse_release
from stacks.config import ISTIOD_REQUESTS
from tests.cluster_stacks import STACKS
from tests.mesh_cluster import (
    MODES,
    Stack,
    chart_objects,
    dry_run_refusals,
    minor_of,
    releases,
    rendered,
    revision_of,
)
from tests.real_tools import ApiServer, helm_template, istioctl, packaged_chart


@pytest.mark.parametrize("stack_name", STACKS)
def test_every_mode_is_valid_to_istioctl_validate(stack_name: str, tmp_path: Path) -> None:
    files = []
    for mode in MODES:
        path = tmp_path / f"{stack_name}-{mode}.yaml"
        manifests = list(rendered(stack_name, mode).manifests)
        path.write_text(yaml.dump_all(manifests, Dumper=yaml.CSafeDumper))
        files += ["-f", str(path)]
    result = istioctl(minor_of(rendered(stack_name, MODES[0])), "validate", *files)
    assert result.code == 0, result.output
    assert result.output.count("is valid") == len(MODES), result.output


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stack_name", STACKS)
def test_every_mode_passes_offline_analysis(stack_name: str, mode: str) -> None:
    """istioctl analyze --use-kube=false over the program's objects and the charts' together."""
    render = rendered(stack_name, mode)
    charts = chart_objects(stack_name)
    objects = [*(o for chart in charts.values() for o in chart), *render.manifests]
    revision = revision_of(render)
    result = istioctl(
        minor_of(render), "analyze", "--use-kube=false", "-A", "--revision", revision, "{file}",
        objects=[o for o in objects if o["kind"] != "CustomResourceDefinition"],
    )  # fmt: skip
    assert result.code == 0 and "No validation issues found" in result.output, result.output


def test_the_charts_render_what_the_readme_says(stack: Stack) -> None:
    """Values pass each chart's values.schema.json (helm checks it while templating), and the
    objects have the ports, annotation, labels, replicas and requests the program relies on."""
    gateway = {o["kind"]: o for o in stack.charts["gateway"]}
    service, deployment = gateway["Service"], gateway["Deployment"]
    ports = [
        {k: p[k] for k in ("name", "port", "protocol", "targetPort")}
        for p in service["spec"]["ports"]
    ]
    assert ports == list(GATEWAY_SERVICE_PORTS)
    assert service["spec"]["type"] == "LoadBalancer"
    assert NLB_ANNOTATIONS.items() <= service["metadata"]["annotations"].items()
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert INGRESS_GATEWAY_LABELS.items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    every_kind = {o["kind"] for o in stack.chart_objects}
    assert "HorizontalPodAutoscaler" not in every_kind, "autoscaling is meant to be off"
    istiod = next(o for o in stack.charts["istiod"] if o["kind"] == "Deployment")
    (discovery,) = istiod["spec"]["template"]["spec"]["containers"]
    assert discovery["resources"]["requests"] == ISTIOD_REQUESTS
    assert discovery["image"].startswith("docker.io/istio/pilot:")


def test_the_revision_tag_is_what_istiods_chart_renders_for_it(
    stack: Stack, tmp_path: Path
) -> None:
    """The tag's webhook and Service, made here as plain objects, equal the chart's own
    templates/revision-tags-*.yaml rendered with `revisionTags: [stable]`."""
    render = rendered(stack.name, MODES[0])
    release = copy.deepcopy(releases(render)["istiod"])
    release["values"]["revisionTags"] = [REVISION_TAG]
    chart = packaged_chart(stack.minor, "istiod")
    by_chart = {
        (o["kind"], o["metadata"]["name"]): o
        for o in helm_template(release, chart, render.summary.kubernetes_version)
    }
    revision = Revision(parse_release(render.summary.config["istioVersion"]))
    for ours in revision_tag_manifests(REVISION_TAG, revision):
        theirs = by_chart[(ours["kind"], ours["metadata"]["name"])]
        assert ours["metadata"]["labels"].items() <= theirs["metadata"]["labels"].items()
        for key in ("webhooks", "spec"):
            assert ours.get(key) == theirs.get(key), (
                f"{ours['kind']} {key} differs from the chart's"
            )


def test_every_object_of_every_mode_passes_a_strict_server_side_dry_run(stack: Stack) -> None:
    objects = [*stack.chart_objects, *stack.pods]
    for mode in MODES:
        objects += rendered(stack.name, mode).manifests
    # Most objects are the same in every mode: each distinct one is sent once.
    distinct = {json.dumps(o, sort_keys=True): o for o in objects}
    assert dry_run_refusals(stack.api, list(distinct.values())) == []


def test_strict_field_validation_refuses_what_the_schemas_do_not_declare(stack: Stack) -> None:
    """The dry run can fail: an unknown field and a value outside its schema are refused."""
    virtual_service = next(
        o
        for o in rendered(stack.name, "split50").manifests
        if o["kind"] == "VirtualService" and o["metadata"]["name"] == "reviews"
    )
    unknown = copy.deepcopy(virtual_service)
    unknown["spec"]["http"][0]["retrys"] = {"attempts": 3}
    out_of_range = copy.deepcopy(virtual_service)
    out_of_range["spec"]["http"][0]["fault"] = {
        "abort": {"httpStatus": "five hundred", "percentage": {"value": 50}}
    }
    refusals = dry_run_refusals(stack.api, [unknown, out_of_range])
    assert len(refusals) == 2, refusals
    assert ".spec.http[0].retrys: field not declared in schema" in refusals[0]
    assert ".spec.http[0].fault.abort.httpStatus: expected numeric (int or float)" in refusals[1]


def test_istioctl_validate_refuses_what_istiods_webhook_would() -> None:
    """The CRD leaves an abort status unbounded; istiod's own validation (which istioctl
    runs) refuses 700, so validate can fail where the API server's schema cannot."""
    render = rendered("dev", "abort")
    virtual_service = next(
        copy.deepcopy(o)
        for o in render.manifests
        if o["kind"] == "VirtualService" and o["metadata"]["name"] == "ratings"
    )
    virtual_service["spec"]["http"][0]["fault"]["abort"]["httpStatus"] = 700
    result = istioctl(minor_of(render), "validate", "-f", "{file}", objects=[virtual_service])
    assert result.code != 0 and "HTTP status 700 is not in range 200-599" in result.output


def podless_subsets() -> set[tuple[str, str]]:
    return {
        (service, subset)
        for service, subsets in DESTINATION_RULE_SUBSETS.items()
        for subset in subsets
        if subset not in deployed_versions(service)
    }


def justified(message: tuple[str, str, str, str, str], stack: Stack) -> bool:
    """Whether an analyzer message is one this program keeps on purpose, for its reason."""
    level, code, _kind, name, text = message
    if code == "IST0173":
        # Upstream destination-rule-all.yaml declares subsets that bookinfo.yaml runs no pods
        # for (ratings v2-mysql, ...). No route of any mode sends to one (stacks/config.py
        # refuses weights on a podless subset), so no request can meet the 503 it warns of.
        subset = re.search(r"The Subset (\S+) defined", text)
        return subset is not None and (name.split("/")[1], subset[1]) in podless_subsets()
    if code == "IST0140":
        # The ingress VirtualService sends to the productpage Service; the mesh VirtualService's
        # subset v1 picks the same pods while productpage runs one version.
        return name == f"bookinfo/{INGRESS_VIRTUAL_SERVICE_NAME}" and deployed_versions(
            "productpage"
        ) == ("v1",)
    if code == "IST0102":
        # "Namespace not enabled for injection": `default` runs nothing; istio-ingress must not
        # be labelled, as the gateway chart's pods are injected by their own istio.io/rev label
        # (a namespace label istio-injection=disabled would stop that).
        return level == "Info" and name in ("default", "istio-ingress")
    return False


def test_live_analysis_of_every_mode_keeps_only_justified_messages(stack: Stack) -> None:
    seen = set()
    for mode in MODES:
        for obj in rendered(stack.name, mode).manifests:
            stack.api.apply(obj)
        messages = stack.analyze_live()
        unjustified = [m for m in messages if not justified(m, stack)]
        assert unjustified == [], f"{stack.name} {mode}: {unjustified}"
        seen |= {m[1] for m in messages}
    # What the analyzers say, pinned: a new message, or one that stops, is read and decided.
    assert seen == {"IST0102", "IST0140", "IST0173"}


def resource_versions(
    api: ApiServer, objects: list[dict[str, Any]]
) -> dict[tuple[str, str, str], str]:
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): api.get(o)[
            "metadata"
        ]["resourceVersion"]
        for o in objects
    }


def test_a_mode_switch_changes_exactly_what_diff_predicts(stack: Stack) -> None:
    """Applied with server-side apply, each step of the ladder changes the resourceVersion of the
    objects `bookinfo-mesh diff` says it updates, and of nothing else."""
    ladder = [*MODES, MODES[0]]
    for obj in rendered(stack.name, ladder[0]).manifests:
        stack.api.apply(obj)
    for before, after in itertools.pairwise(ladder):
        old, new = rendered(stack.name, before), rendered(stack.name, after)
        versions = resource_versions(stack.api, list(new.manifests))
        predicted = {
            change.name
            for change in diff_rendered(old, new).changes
            if change.type.startswith("kubernetes:")
        }
        assert all(c.op == "update" for c in diff_rendered(old, new).changes), (
            f"{before} -> {after}"
        )
        for obj in new.manifests:
            stack.api.apply(obj)
        changed = {
            key
            for key, version in resource_versions(stack.api, list(new.manifests)).items()
            if versions[key] != version
        }
        names = {
            r.name: (
                r.inputs.get("kind"),
                r.inputs["metadata"].get("namespace", ""),
                r.inputs["metadata"]["name"],
            )
            for r in new.resources
            if r.type.startswith("kubernetes:") and "metadata" in r.inputs
        }
        assert changed == {names[name] for name in predicted}, f"{stack.name} {before} -> {after}"
        assert changed, f"{before} -> {after} changed nothing"
