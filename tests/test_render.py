"""Render and diff: files, schemas, agreement with the program, stability, exit codes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bookinfo_mesh.cli import main
from bookinfo_mesh.diff import diff_rendered
from bookinfo_mesh.engine import ProgramRun, RegisteredResource
from bookinfo_mesh.errors import EXIT_BAD_INPUT as EXIT_BAD_CONFIG
from bookinfo_mesh.errors import ToolError
from bookinfo_mesh.render import (
    Rendered,
    ResourceRecord,
    RouteCell,
    Summary,
    cohort_routes,
    manifests_of,
    render_run,
    resources_of,
)
from bookinfo_mesh.report import diff_markdown
from bookinfo_mesh.schemas import validate_manifests
from model.http_policy import Delay, Destination
from model.routing import MODES, bookinfo_rule
from tests.programs import shared_render, shared_run

DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"


def summary_json(rendered: Rendered) -> dict:
    """The summary as summary.json holds it: the file is the contract, so tests read it."""
    return json.loads(rendered.files()["summary.json"])


@pytest.fixture(scope="module")
def renders() -> dict[str, Rendered]:
    """The dev stack rendered in every mode, in one process."""
    return {mode: shared_render("dev", {"mode": mode}) for mode in MODES}


def test_render_command_writes_three_files_that_parse(tmp_path: Path) -> None:
    assert main(["render", "--stack", "dev", "--out", str(tmp_path), "--format", "json"]) == 0
    resources = json.loads((tmp_path / "resources.json").read_text())
    manifests = list(yaml.safe_load_all((tmp_path / "manifests.yaml").read_text()))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(resources) == summary["resourceCount"], "summary count disagrees with the file"
    assert {m["kind"] for m in manifests} == {
        "Namespace",
        "MutatingWebhookConfiguration",
        "ServiceAccount",
        "Service",
        "Deployment",
        "DestinationRule",
        "Gateway",
        "VirtualService",
        "PeerAuthentication",
    }, "manifests.yaml lacks a kind of object the program creates, or has a stray one"


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_renders_manifests_that_pass_the_real_schemas(
    renders: dict[str, Rendered], mode: str
) -> None:
    rendered = renders[mode]
    version = rendered.summary.kubernetes_version
    checked = validate_manifests(rendered.manifests, version, rendered.istio_crds_version)
    assert checked.unchecked is None, checked.unchecked
    violations = checked.violations
    assert violations == [], f"{mode}: " + "; ".join(map(str, violations))


@pytest.mark.parametrize("mode", MODES)
def test_manifests_are_exactly_the_kubernetes_objects_the_program_registers(
    renders: dict[str, Rendered], mode: str
) -> None:
    rendered = renders[mode]
    registered = {
        (r.inputs["kind"], r.inputs["metadata"]["name"])
        for r in rendered.resources
        if r.type.startswith("kubernetes:")
        and not r.read
        and not r.type.startswith(("kubernetes:helm.sh/", "pulumi:"))
    }
    rendered_objects = {(m["kind"], m["metadata"]["name"]) for m in rendered.manifests}
    assert rendered_objects == registered
    by_name = {(m["kind"], m["metadata"]["name"]): m for m in rendered.manifests}
    for resource in rendered.resources:
        inputs = resource.inputs
        key = (inputs.get("kind"), inputs.get("metadata", {}).get("name"))
        if key in by_name:
            assert by_name[key] == inputs, f"{key} differs from what the program registered"


def prerequisites(obj: dict[str, Any]) -> set[tuple[str, str]]:
    """What must exist before `obj` is applied, as (kind, name), from what it refers to:
    its namespace; a pod's service account; the Services selecting its pods (a pod gets the
    environment variables only of Services that exist when it starts); the Gateways a
    VirtualService binds to; the DestinationRule defining each subset it routes to (Istio
    sends a request for an undefined subset nowhere: 503)."""
    spec, meta = obj.get("spec", {}), obj["metadata"]
    needs = {("Namespace", meta["namespace"])} if "namespace" in meta else set()
    if obj["kind"] == "Deployment":
        needs.add(("ServiceAccount", spec["template"]["spec"]["serviceAccountName"]))
        needs.add(("Service", spec["template"]["metadata"]["labels"]["app"]))
    if obj["kind"] == "VirtualService":
        needs |= {("Gateway", g) for g in spec.get("gateways", [])}
        for route in spec.get("http", []):
            for dest in route["route"]:
                if "subset" in dest["destination"]:
                    needs.add(("DestinationRule", dest["destination"]["host"]))
    return needs


def test_manifests_come_in_an_order_kubectl_apply_accepts(renders: dict[str, Rendered]) -> None:
    for mode, rendered in renders.items():
        applied: set[tuple[str, str]] = set()
        rule_hosts = {
            m["metadata"]["name"]: m["spec"]["host"]
            for m in rendered.manifests
            if m["kind"] == "DestinationRule"
        }
        for obj in rendered.manifests:
            named = {(k, rule_hosts.get(n, n) if k == "DestinationRule" else n) for k, n in applied}
            missing = prerequisites(obj) - named
            name = f"{obj['kind']} {obj['metadata']['name']}"
            assert not missing, f"{mode}: {name} comes before {sorted(missing)}"
            applied.add((obj["kind"], obj["metadata"]["name"]))


@pytest.mark.fresh_program_runs  # two runs of the same input, each its own
def test_render_is_byte_identical_for_the_same_input(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        assert main(["render", "--set", "mode=delay", "--out", str(out), "--format", "json"]) == 0
    for name in ("resources.json", "manifests.yaml", "summary.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), f"{name} unstable"


def test_secrets_never_reach_the_rendered_files(renders: dict[str, Rendered]) -> None:
    rendered = renders["all-v1"]
    text = rendered.files()["resources.json"] + rendered.files()["summary.json"]
    assert "mock.eks.amazonaws.com" not in text, "the kubeconfig leaked into a rendered file"
    provider = next(r for r in rendered.resources if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]"
    assert rendered.summary.outputs["kubeconfig"] == "[secret]"


V1_PAGE = "reviews v1, no stars"
SPLIT_PAGE = "50 %: reviews v1, no stars; 50 %: reviews v3, red stars"
# The scenario, whole sentences per mode: (anonymous visitor, test user jason).
PREDICTED_PAGES = {
    "all-v1": (V1_PAGE, V1_PAGE),
    "user-v2": (V1_PAGE, "reviews v2, black stars"),
    "delay": (V1_PAGE, "waits ~6 s, then reviews unavailable"),
    "abort": (V1_PAGE, "reviews v2, 'Ratings service is currently unavailable'"),
    "split50": (SPLIT_PAGE, SPLIT_PAGE),
    "v3": ("reviews v3, red stars", "reviews v3, red stars"),
}


def test_summary_predicts_the_scenario_for_each_mode(renders: dict[str, Rendered]) -> None:
    assert set(PREDICTED_PAGES) == set(MODES), "a mode has no expected page here"
    for mode, (anonymous, jason) in PREDICTED_PAGES.items():
        pages = summary_json(renders[mode])["predictedPages"]
        assert set(pages) == {"anonymous", "user:jason"}, f"{mode}: cohorts {set(pages)}"
        assert pages["anonymous"]["summary"] == anonymous, f"{mode}: anonymous visitors"
        assert pages["user:jason"]["summary"] == jason, f"{mode}: jason"


def test_predicted_pages_follow_the_subset_labels_the_program_registered() -> None:
    """A reviews subset v3 relabelled to select v1 pods: the page says v1, whatever the name."""
    run = shared_run("dev", {"mode": "v3"})

    def relabel(resource: RegisteredResource) -> RegisteredResource:
        if resource.type != DESTINATION_RULE or resource.inputs["metadata"]["name"] != "reviews":
            return resource
        spec = resource.inputs["spec"]
        subsets = [
            {**s, "labels": {"version": "v1"}} if s["name"] == "v3" else s for s in spec["subsets"]
        ]
        inputs = {**resource.inputs, "spec": {**spec, "subsets": subsets}}
        return dataclasses.replace(resource, inputs=inputs)

    relabelled = dataclasses.replace(run, resources=tuple(map(relabel, run.resources)))
    pages = summary_json(render_run(relabelled))["predictedPages"]
    assert (
        summary_json(render_run(run))["predictedPages"]["anonymous"]["summary"]
        == "reviews v3, red stars"
    )
    assert {cohort: page["summary"] for cohort, page in pages.items()} == {
        "anonymous": "reviews v1, no stars",
        "user:jason": "reviews v1, no stars",
    }


def test_route_table_shows_the_fault_for_the_test_user_only(renders: dict[str, Rendered]) -> None:
    ratings = summary_json(renders["abort"])["routes"]["ratings"]
    assert ratings["user:jason"] == {"to": "v1 100 %", "fault": "abort 500 (100 %)"}
    assert ratings["anonymous"] == {"to": "v1 100 %"}


@pytest.mark.parametrize("mode", [m for m in MODES if m != "all-v1"])
def test_a_mode_change_is_updates_of_virtual_services_only(
    renders: dict[str, Rendered], mode: str
) -> None:
    diff = diff_rendered(renders["all-v1"], renders[mode])
    ops = {c.op for c in diff.changes}
    assert ops == {"update"}, f"all-v1 -> {mode} would {ops}"
    assert {c.type for c in diff.changes} == {"kubernetes:networking.istio.io/v1:VirtualService"}
    assert diff.routes_changed


def test_diff_names_the_changed_fields_and_pages(renders: dict[str, Rendered]) -> None:
    diff = diff_rendered(renders["all-v1"], renders["v3"])
    (change,) = diff.changes
    assert change.name == "traffic-vs-reviews"
    assert [str(f) for f in change.fields] == [
        'spec.http[0].route[0].destination.subset: "v1" -> "v3"'
    ]
    markdown = diff_markdown(diff)
    assert "| update | traffic-vs-reviews |" in markdown
    assert "| reviews v1, no stars | reviews v3, red stars |" in markdown


def test_diff_flags_a_vpc_cidr_change_as_a_replacement() -> None:
    before = shared_render("dev")
    after = shared_render("dev", {"vpcCidr": "10.1.0.0/16"})
    ops = {c.name: c.op for c in diff_rendered(before, after).changes}
    replaced = sorted(name for name, op in ops.items() if op == "replace")
    # The VPC's new id is unknown until it exists, and every field below names it (or a
    # subnet of it) in an input that forces replacement.
    expected = [
        "cluster-eks",
        "cluster-nodes",
        "network-nat-0",
        *(f"network-{t}-{i}" for t in ("private", "public") for i in (0, 1)),
        *(f"network-{t}-{i}-rta" for t in ("private", "public") for i in (0, 1)),
        "network-private-0-rt",
        "network-private-1-rt",
        "network-public-rt",
        "network-vpc",
    ]
    assert replaced == sorted(expected), f"replaced {replaced}"


def test_diff_calls_a_node_instance_type_change_a_node_group_replacement() -> None:
    before = shared_render("dev")
    after = shared_render("dev", {"nodeInstanceTypes": '["m6i.large"]'})
    ops = {c.name: c.op for c in diff_rendered(before, after).changes}
    assert ops == {"cluster-nodes": "replace"}, ops


def test_every_force_new_entry_names_a_resource_type_the_program_registers() -> None:
    from bookinfo_mesh.diff import REPLACE_ON_CHANGE

    renders = (shared_render("dev", {"encryptSecrets": "true"}), shared_render("prod"))
    types = {r.type for render in renders for r in render.resources}
    stale = [t for t in REPLACE_ON_CHANGE if t != "kubernetes:*" and t not in types]
    assert not stale, f"force-new entries for types the program never registers: {stale}"


def test_diff_command_writes_a_pull_request_comment(tmp_path: Path) -> None:
    comment = tmp_path / "comment.md"
    assert main(["diff", "--set", "mode=split50", "--markdown", str(comment)]) == 0
    text = comment.read_text()
    assert text.startswith("### bookinfo-mesh dev: 0 to create, 1 to update")
    assert "v1 50 %, v3 50 %" in text


def test_a_bad_config_exits_2_and_writes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["render", "--set", "mode=split5O", "--out", str(out)]) == EXIT_BAD_CONFIG
    assert not out.exists(), "render wrote files for a config it rejected"
    error = capsys.readouterr().err
    assert "bookinfo-mesh:mode" in error and "split5O" in error and "split50" in error


# --- render's pure parts, called directly -----------------------------------------------------
def test_cohort_routes_show_each_cohorts_versions_and_fault() -> None:
    table = {
        "ratings": (
            bookinfo_rule((Destination("v1"),), user="jason", fault=Delay("7s", 100.0)),
            bookinfo_rule((Destination("v1"),)),
        ),
        "reviews": (bookinfo_rule((Destination("v1", 50), Destination("v3", 50))),),
    }
    assert cohort_routes(table, "jason") == {
        "ratings": {
            "anonymous": RouteCell(to="v1 100 %"),
            "user:jason": RouteCell(to="v1 100 %", fault="delay 7s (100 %)"),
        },
        "reviews": {
            "anonymous": RouteCell(to="v1 50 %, v3 50 %"),
            "user:jason": RouteCell(to="v1 50 %, v3 50 %"),
        },
    }


NOTE = "rendered offline by bookinfo-mesh; kubectl apply -f manifests.yaml creates it as is"


def small_summary(stack: str, count: int) -> Summary:
    return Summary(
        stack=stack,
        config={"mode": "v3"},
        resource_count=count,
        resources={},
        routes={"reviews": {"anonymous": RouteCell(to="v3 100 %")}},
        predicted_pages={},
        outputs={},
    )


SMALL = Rendered(
    resources=(
        ResourceRecord(
            urn="urn:b",
            type="aws:ec2/subnet:Subnet",
            name="b",
            parent=None,
            dependencies=("urn:a",),
            provider=None,
            protect=False,
            read=False,
            inputs={"zone": "a", "cidrs": ["10.0.0.0/16"]},
        ),
    ),
    manifests=(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bookinfo"}},
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "reviews", "annotations": {"note": NOTE}},
            "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
        },
    ),
    summary=small_summary("dev", 1),
)


def test_files_are_sorted_indented_json_and_yaml_in_kubernetes_field_order() -> None:
    """JSON keys sorted, two-space indent; YAML keeps each object's own field order (a
    subset's name before its labels) and folds no line within 100 columns."""
    files = SMALL.files()
    assert set(files) == {"resources.json", "manifests.yaml", "summary.json"}
    assert files["resources.json"] == (
        "[\n"
        "  {\n"
        '    "dependencies": [\n'
        '      "urn:a"\n'
        "    ],\n"
        '    "inputs": {\n'
        '      "cidrs": [\n'
        '        "10.0.0.0/16"\n'
        "      ],\n"
        '      "zone": "a"\n'
        "    },\n"
        '    "name": "b",\n'
        '    "parent": null,\n'
        '    "protect": false,\n'
        '    "provider": null,\n'
        '    "read": false,\n'
        '    "type": "aws:ec2/subnet:Subnet",\n'
        '    "urn": "urn:b"\n'
        "  }\n"
        "]\n"
    )
    assert json.loads(files["summary.json"]) == {
        "config": {"mode": "v3"},
        "outputs": {},
        "predictedPages": {},
        "project": "bookinfo-mesh",
        "resourceCount": 1,
        "resources": {},
        "routes": {"reviews": {"anonymous": {"to": "v3 100 %"}}},
        "stack": "dev",
    }, "summary.json is camelCase, and a route without a fault has no fault key"
    assert files["manifests.yaml"] == (
        "apiVersion: v1\n"
        "kind: Namespace\n"
        "metadata:\n"
        "  name: bookinfo\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: DestinationRule\n"
        "metadata:\n"
        "  name: reviews\n"
        "  annotations:\n"
        f"    note: {NOTE}\n"
        "spec:\n"
        "  host: reviews\n"
        "  subsets:\n"
        "  - name: v1\n"
        "    labels:\n"
        "      version: v1\n"
    )


def test_written_files_read_back_and_a_second_render_replaces_the_first(tmp_path: Path) -> None:
    out = tmp_path / "render"
    SMALL.write(out)
    assert Rendered.read(out, "the test render") == SMALL
    second = dataclasses.replace(SMALL, summary=small_summary("prod", 2))
    second.write(out)
    assert Rendered.read(out, "the test render") == second
    assert sorted(p.name for p in out.iterdir()) == [
        "manifests.yaml",
        "resources.json",
        "summary.json",
    ]


def registered(kind: str, name: str, namespace: str | None = None) -> RegisteredResource:
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    return RegisteredResource(
        urn=f"urn:pulumi:dev::bookinfo-mesh::kubernetes:core/v1:{kind}::{name}",
        type=f"kubernetes:core/v1:{kind}",
        name=name,
        parent=None,
        custom=True,
        remote=False,
        read=False,
        protect=False,
        provider=None,
        dependencies=(),
        inputs={"apiVersion": "v1", "kind": kind, "metadata": metadata},
    )


def test_manifests_of_one_kind_go_by_namespace_then_name_whatever_the_registration_order() -> None:
    """Each Namespace before the Services in it; Services grouped by namespace, then by name."""
    run = ProgramRun(
        stack="dev",
        config={},
        resources=(
            registered("Service", "reviews", "bookinfo"),
            registered("Service", "istio-ingressgateway", "istio-ingress"),
            registered("Namespace", "istio-ingress"),
            registered("Service", "details", "bookinfo"),
            registered("Namespace", "bookinfo"),
        ),
    )
    order = [
        (m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"])
        for m in manifests_of(run)
    ]
    assert order == [
        ("Namespace", None, "bookinfo"),
        ("Namespace", None, "istio-ingress"),
        ("Service", "bookinfo", "details"),
        ("Service", "bookinfo", "reviews"),
        ("Service", "istio-ingress", "istio-ingressgateway"),
    ]


VPC_URN = "urn:pulumi:prod::bookinfo-mesh::bookinfo:index:Network$aws:ec2/vpc:Vpc::network-vpc"
NETWORK_URN = "urn:pulumi:prod::bookinfo-mesh::pulumi:pulumi:Stack$bookinfo:index:Network::network"
K8S_PROVIDER_URN = (
    "urn:pulumi:prod::bookinfo-mesh::bookinfo:index:Cluster$pulumi:providers:kubernetes"
    "::cluster-k8s"
)
PROTECTED_VPC = RegisteredResource(
    urn=VPC_URN,
    type="aws:ec2/vpc:Vpc",
    name="network-vpc",
    parent=NETWORK_URN,
    custom=True,
    remote=False,
    read=False,
    protect=True,
    provider=None,
    dependencies=("urn:a", "urn:b"),
    inputs={"cidrBlock": "10.0.0.0/16"},
)
# A provider reference is the provider's URN, "::", and its id.
NAMESPACE_VIA_PROVIDER = dataclasses.replace(
    registered("Namespace", "bookinfo"), provider=f"{K8S_PROVIDER_URN}::04da6b54-80e4-46f7"
)


def test_resources_json_has_every_field_of_a_registration() -> None:
    (vpc,) = resources_of(ProgramRun(stack="prod", config={}, resources=(PROTECTED_VPC,)))
    assert vpc.model_dump(mode="json", by_alias=True) == {
        "urn": VPC_URN,
        "type": "aws:ec2/vpc:Vpc",
        "name": "network-vpc",
        "parent": NETWORK_URN,
        "dependencies": ["urn:a", "urn:b"],
        "provider": None,
        "protect": True,
        "read": False,
        "inputs": {"cidrBlock": "10.0.0.0/16"},
    }


def test_resources_json_names_an_explicit_provider_by_its_whole_urn_without_its_id() -> None:
    # A provider reference is "<provider URN>::<provider id>"; the URN has "::" of its own.
    (namespace,) = resources_of(ProgramRun("prod", {}, (NAMESPACE_VIA_PROVIDER,)))
    assert namespace.provider == K8S_PROVIDER_URN


# --- The summary of one program run, rendered in the test itself ------------------------------
@pytest.fixture(scope="module")
def delay_run() -> ProgramRun:
    """The dev stack in mode delay; tests render it themselves (render costs ~1 ms)."""
    return shared_run("dev", {"mode": "delay"})


def test_summary_counts_resources_per_top_level_component(delay_run: ProgramRun) -> None:
    """dev: 2 AZs with a single NAT gateway; Bookinfo's 6 Deployments of 4 services."""
    assert summary_json(render_run(delay_run))["resources"] == {
        "Observability": {"kubernetes:core/v1:Namespace": 1, "kubernetes:helm.sh/v3:Release": 3},
        "Bookinfo": {
            "kubernetes:apps/v1:Deployment": 6,
            "kubernetes:core/v1:Namespace": 1,
            "kubernetes:core/v1:Service": 4,
            "kubernetes:core/v1:ServiceAccount": 4,
            "kubernetes:networking.istio.io/v1:Gateway": 1,
            "kubernetes:networking.istio.io/v1:VirtualService": 1,
            "kubernetes:security.istio.io/v1:PeerAuthentication": 1,
        },
        "Cluster": {
            "aws:ec2/launchTemplate:LaunchTemplate": 1,
            "aws:eks/addon:Addon": 1,
            "aws:iam/role:Role": 1,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 3,
            "eks:index:Cluster": 1,
            "eks:index:ManagedNodeGroup": 1,
            "pulumi:providers:kubernetes": 1,
        },
        "IstioMesh": {
            # The revision tag's webhook and Service; the gateway's Service, read back.
            "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration": 1,
            "kubernetes:core/v1:Namespace": 2,
            "kubernetes:core/v1:Service": 2,
            "kubernetes:helm.sh/v3:Release": 3,
        },
        "Network": {
            "aws:ec2/eip:Eip": 1,
            "aws:ec2/internetGateway:InternetGateway": 1,
            "aws:ec2/natGateway:NatGateway": 1,
            "aws:ec2/routeTable:RouteTable": 3,
            "aws:ec2/routeTableAssociation:RouteTableAssociation": 4,
            "aws:ec2/subnet:Subnet": 4,
            "aws:ec2/vpc:Vpc": 1,
        },
        "TrafficPolicy": {
            "kubernetes:networking.istio.io/v1:DestinationRule": 4,
            "kubernetes:networking.istio.io/v1:VirtualService": 4,
        },
    }


def test_summary_routes_per_cohort_in_mode_delay(delay_run: ProgramRun) -> None:
    v1 = {"to": "v1 100 %"}
    assert summary_json(render_run(delay_run))["routes"] == {
        "details": {"anonymous": v1, "user:jason": v1},
        "productpage": {"anonymous": v1, "user:jason": v1},
        "ratings": {"anonymous": v1, "user:jason": {"to": "v1 100 %", "fault": "delay 7s (100 %)"}},
        "reviews": {"anonymous": v1, "user:jason": {"to": "v2 100 %"}},
    }


def test_summary_predicts_each_cohorts_page_with_share_and_wait(delay_run: ProgramRun) -> None:
    """jason: reviews v2 waits 7 s for ratings, but productpage gives up on reviews after
    3 s and one retry, so he waits ~6 s and sees no reviews at all."""
    assert summary_json(render_run(delay_run))["predictedPages"] == {
        "anonymous": {
            "summary": "reviews v1, no stars",
            "outcomes": [
                {
                    "share": 1.0,
                    "reviewsVersion": "v1",
                    "ratingsUnavailable": False,
                    "waitSeconds": 0.0,
                    "sees": "reviews v1, no stars",
                }
            ],
        },
        "user:jason": {
            "summary": "waits ~6 s, then reviews unavailable",
            "outcomes": [
                {
                    "share": 1.0,
                    "reviewsVersion": None,
                    "ratingsUnavailable": False,
                    "waitSeconds": 6.0,
                    "sees": "reviews unavailable",
                }
            ],
        },
    }


def test_summary_carries_the_stacks_outputs(delay_run: ProgramRun) -> None:
    outputs = summary_json(render_run(delay_run))["outputs"]
    assert outputs["mode"] == "delay"
    assert outputs["clusterName"] == "bookinfo-dev"


def test_a_render_another_version_wrote_differently_is_refused_in_one_line(tmp_path: Path) -> None:
    SMALL.write(tmp_path / "render")
    summary = tmp_path / "render" / "summary.json"
    summary.write_text(summary.read_text().replace('"resourceCount"', '"resourceTotal"'))
    with pytest.raises(ToolError, match=r"^the render at abc is not a render this version can"):
        Rendered.read(tmp_path / "render", "the render at abc")
