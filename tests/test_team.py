"""Day 2 for a team: who can reach the cluster, version bumps that reach everything, what runs."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from bookinfo_mesh.commands.doctor import MIN_AWS_CLI
from bookinfo_mesh.diff import diff_rendered
from bookinfo_mesh.engine import ProgramRun, RegisteredResource
from bookinfo_mesh.render import Rendered, render_run
from bookinfo_mesh.report import diff_markdown
from model.access import ACCESS_LEVELS, CLUSTER_ADMIN_POLICY_ARN, grants
from model.catalogue import ISTIO_VERSION_ANNOTATION, WORKLOADS
from stacks.project import ROOT
from tests.programs import shared_render, shared_run

ADMINS = ("arn:aws:iam::111122223333:role/platform-admin", "arn:aws:iam::111122223333:user/alice")
DEPLOYERS = ("arn:aws:iam::111122223333:role/ci/preview", "arn:aws:iam::444455556666:role/ci/up")
TEAM = {"clusterAdmins": json.dumps(list(ADMINS)), "deployers": json.dumps(list(DEPLOYERS))}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
RELEASE = "kubernetes:helm.sh/v3:Release"
README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def team() -> dict[str, ProgramRun]:
    return {stack: shared_run(stack, TEAM) for stack in ("dev", "prod")}


def only(run: ProgramRun, type_: str, **inputs: object) -> RegisteredResource:
    found = [r for r in run.of_type(type_) if all(r.inputs.get(k) == v for k, v in inputs.items())]
    assert len(found) == 1, f"{len(found)} {type_} with {inputs}: {[r.name for r in found]}"
    return found[0]


def release(run: ProgramRun, name: str) -> RegisteredResource:
    return only(run, RELEASE, name=name)


# --- who can reach the cluster ------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_configured_principal_gets_an_access_entry_at_its_stated_level(
    team: dict[str, ProgramRun], stack: str
) -> None:
    entries = only(team[stack], "eks:index:Cluster").inputs.get("accessEntries", {})
    by_principal = {e["principalArn"]: e for e in entries.values()}
    expected = {**dict.fromkeys(ADMINS, "clusterAdmins"), **dict.fromkeys(DEPLOYERS, "deployers")}
    assert set(by_principal) == set(expected), f"access entries for {sorted(by_principal)}"
    for arn, role in expected.items():
        (policy,) = by_principal[arn]["accessPolicies"].values()
        level = ACCESS_LEVELS[role]
        assert policy == {"policyArn": level.policy_arn, "accessScope": level.access_scope}, (
            f"{role} {arn} got {policy}"
        )
        assert by_principal[arn]["type"] == "STANDARD", f"{arn} is not a STANDARD entry"


def test_without_listed_principals_only_the_creator_has_access() -> None:
    cluster = only(shared_run("dev"), "eks:index:Cluster")
    assert not cluster.inputs.get("accessEntries"), "access entries nobody configured"
    assert cluster.inputs["authenticationMode"] == "API", "access entries need API auth mode"


def test_the_readme_states_the_access_level_that_each_key_grants() -> None:
    section = README.split("## Working as a team", 1)[-1].split("\n## ", 1)[0]
    assert section != README, "the README has no 'Working as a team' section"
    for key, level in ACCESS_LEVELS.items():
        policy = level.policy_arn.rsplit("/", 1)[-1]
        line = next((ln for ln in section.splitlines() if f"`{key}`" in ln and policy in ln), "")
        assert line, f"the README does not say that {key} get {policy}"


def test_deployers_need_write_access_because_preview_dry_runs_creates_and_patches() -> None:
    """Server-side dry-run is authorized as the write; cluster-scoped kinds rule out
    namespace-scoped policies; so deployers' policy is the cluster-admin one."""
    run = shared_run("dev", TEAM)
    assert run.of_type("kubernetes:core/v1:Namespace"), (
        "the program creates no Namespace: revisit the reasoning in model/access.py"
    )
    assert ACCESS_LEVELS["deployers"].policy_arn == CLUSTER_ADMIN_POLICY_ARN
    assert ACCESS_LEVELS["deployers"].scope == "cluster"


def test_entry_names_differ_for_the_same_role_name_in_two_accounts() -> None:
    same_name = ("arn:aws:iam::111122223333:role/ci", "arn:aws:iam::444455556666:role/ci")
    names = [g.entry_name for g in grants((), same_name)]
    assert len(set(names)) == 2, f"entries would collide: {names}"


@pytest.mark.parametrize(("private", "public"), [("true", "false"), ("false", "true")])
def test_endpoint_access_follows_the_config(private: str, public: str) -> None:
    cluster = only(
        shared_run("dev", {"endpointPrivateAccess": private, "endpointPublicAccess": public}),
        "eks:index:Cluster",
    )
    assert cluster.inputs["endpointPrivateAccess"] is (private == "true")
    assert cluster.inputs["endpointPublicAccess"] is (public == "true")


# --- upgrades that reach everything --------------------------------------------------------
@pytest.mark.parametrize("version", ["1.33", "1.36"])
def test_the_node_group_and_coredns_follow_kubernetes_version(version: str) -> None:
    run = shared_run("dev", {"kubernetesVersion": version})
    nodes = only(run, "eks:index:ManagedNodeGroup")
    assert nodes.inputs.get("version") == version, (
        f"node group version {nodes.inputs.get('version')}: a bump would leave the nodes behind"
    )
    coredns = only(run, "aws:eks/addon:Addon", addonName="coredns")
    assert coredns.inputs["addonVersion"].endswith(f"-for-{version}"), coredns.inputs


def test_coredns_is_a_managed_add_on_after_the_nodes_beside_pulumi_eks_cni_and_kube_proxy() -> None:
    run = shared_run("dev")
    coredns = only(run, "aws:eks/addon:Addon", addonName="coredns")
    nodes = only(run, "eks:index:ManagedNodeGroup")
    assert nodes.urn in coredns.dependencies, "CoreDNS pods would wait for nodes that are not there"
    assert coredns.inputs["clusterName"] == only(run, "eks:index:Cluster").inputs["name"]
    cluster = only(run, "eks:index:Cluster").inputs
    # pulumi-eks 4.4 creates the vpc-cni and kube-proxy add-ons unless told not to.
    assert cluster.get("useDefaultVpcCni") in (None, False), "vpc-cni left unmanaged"
    assert cluster.get("kubeProxyAddonOptions", {}).get("enabled", True), "kube-proxy unmanaged"
    assert cluster.get("skipDefaultNodeGroup") is True


# A patch bump starts from the stack's default (1.31.0) and ends at the next patch
# (1.31.1, released 2026-09-21): an in-place upgrade of revision 1-31.
NEXT_PATCH = "1.31.1"


def test_an_istio_bump_changes_every_bookinfo_pod_template() -> None:
    before = shared_run("dev")
    after = shared_run("dev", {"istioVersion": NEXT_PATCH})
    for workload in WORKLOADS:
        old, new = (
            next(d for d in r.of_type(DEPLOYMENT) if d.inputs["metadata"]["name"] == workload.name)
            for r in (before, after)
        )
        template = (old.inputs["spec"]["template"], new.inputs["spec"]["template"])
        assert template[0] != template[1], f"{workload.name} keeps its pods and their old sidecars"
        assert template[1]["metadata"]["annotations"][ISTIO_VERSION_ANNOTATION] == NEXT_PATCH


@pytest.fixture(scope="module")
def bump() -> tuple[Rendered, Rendered]:
    before = shared_render("dev")
    after = render_run(shared_run("dev", {"kubernetesVersion": "1.36", "istioVersion": NEXT_PATCH}))
    return before, after


def test_a_version_bump_updates_in_the_order_control_plane_nodes_charts_workloads(
    bump: tuple[Rendered, Rendered],
) -> None:
    steps = diff_rendered(*bump).update_steps
    step_of = {c.name: n for n, step in enumerate(steps) for c in step}
    chain = [
        "cluster-eks",
        "cluster-nodes",
        "cluster-coredns",
        "istio-base",
        "istio-istiod-1-31",
        "istio-gateway",
    ]
    for earlier, later in itertools.pairwise(chain):
        assert step_of[earlier] < step_of[later], f"{later} would update before {earlier}"
    for workload in WORKLOADS:
        name = f"bookinfo-{workload.name}"
        assert step_of[name] > step_of["istio-gateway"], f"{name} rolls before the gateway"


def test_the_diff_report_lists_the_order_of_the_update(bump: tuple[Rendered, Rendered]) -> None:
    text = diff_markdown(diff_rendered(*bump))
    order = text.split("#### Order of the update", 1)[-1].split("####", 1)[0]
    numbered = re.findall(r"^(\d+)\. (.*)$", order, flags=re.MULTILINE)
    assert numbered, "the Markdown diff has no numbered update order"
    first_step = {item.split(" ", 1)[1] for item in numbered[0][1].split(", ")}
    assert first_step == {"cluster-eks"}, f"the update starts with {first_step}"


# --- what runs must work -------------------------------------------------------------------
def test_the_gateway_service_exposes_only_ports_a_gateway_listens_on(
    team: dict[str, ProgramRun],
) -> None:
    for run in team.values():
        values = release(run, "istio-ingressgateway").inputs["values"]
        exposed = {p["port"] for p in values["service"]["ports"]}
        served = {
            server["port"]["number"]
            for gateway in run.of_type("kubernetes:networking.istio.io/v1:Gateway")
            for server in gateway.inputs["spec"]["servers"]
        }
        assert exposed == served, f"NLB listeners {exposed}, Gateway ports {served}"
        for port in values["service"]["ports"]:
            assert port["targetPort"] == port["port"], "the chart's pods listen on the same port"


def test_no_autoscaler_is_enabled_since_no_metrics_server_runs(
    team: dict[str, ProgramRun],
) -> None:
    for run in team.values():
        assert release(run, "istiod-1-31").inputs["values"].get("autoscaleEnabled") is False
        gateway = release(run, "istio-ingressgateway").inputs["values"]
        assert gateway.get("autoscaling", {}).get("enabled") is False


def test_the_gateway_service_carries_only_annotations_the_in_tree_provider_reads(
    team: dict[str, ProgramRun],
) -> None:
    for run in team.values():
        annotations = release(run, "istio-ingressgateway").inputs["values"]["service"][
            "annotations"
        ]
        assert annotations == {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}, (
            f"annotations the in-tree cloud provider ignores: {annotations}"
        )


def test_the_readme_no_longer_says_4417_makes_every_preview_work() -> None:
    paragraph = next(p for p in README.split("\n\n") if "4417" in p)
    assert "Check" in paragraph and "reachable" in paragraph, paragraph


def test_the_readme_names_the_aws_cli_versions_that_doctor_checks() -> None:
    wanted = " or ".join(f"{'.'.join(map(str, v[:2]))}+" for v in MIN_AWS_CLI.values())
    prerequisites = README.split("Prerequisites:", 1)[-1].split("\n\n", 1)[0]
    assert "AWS CLI" in prerequisites and wanted in prerequisites, (
        f"the README's prerequisites do not name the AWS CLI {wanted}"
    )
