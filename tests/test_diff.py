"""Diff on real program changes: each operation (create, update, replace, delete) from a config
or code change whose effect on AWS and Kubernetes is known, and a diff between two commits."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest

from bookinfo_mesh.cli import main
from bookinfo_mesh.diff import StackDiff, diff_rendered
from bookinfo_mesh.render import Rendered
from stacks.project import ROOT
from tests.programs import shared_render

# What the dev stack's third availability zone adds: one public and one private subnet,
# the private one's route table, and both subnets' route-table associations. Its single
# NAT gateway stays in the first zone.
THIRD_AZ = {
    ("aws:ec2/subnet:Subnet", "network-public-2"),
    ("aws:ec2/subnet:Subnet", "network-private-2"),
    ("aws:ec2/routeTable:RouteTable", "network-private-2-rt"),
    ("aws:ec2/routeTableAssociation:RouteTableAssociation", "network-public-2-rta"),
    ("aws:ec2/routeTableAssociation:RouteTableAssociation", "network-private-2-rta"),
}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


@pytest.fixture(scope="module")
def dev() -> Rendered:
    return shared_render("dev")


@pytest.fixture(scope="module")
def three_azs() -> Rendered:
    return shared_render("dev", {"azCount": "3"})


def ops(diff: StackDiff, op: str) -> set[tuple[str, str]]:
    return {(c.type, c.name) for c in diff.changes if c.op == op}


def with_deployment_changed(rendered: Rendered, name: str, change) -> Rendered:
    """The same render, with one Deployment's inputs edited as a code change would."""
    resources = copy.deepcopy(rendered.resources)
    (deployment,) = (r for r in resources if r.type == DEPLOYMENT and r.name == name)
    change(deployment.inputs)
    return Rendered(resources, rendered.manifests, rendered.summary)


def test_a_third_availability_zone_creates_its_subnets_and_routes(dev, three_azs) -> None:
    diff = diff_rendered(dev, three_azs)
    assert ops(diff, "create") == THIRD_AZ, f"creates {ops(diff, 'create')}"
    assert ops(diff, "delete") == set(), "adding a zone must delete nothing"
    assert diff.count("create") == len(THIRD_AZ)
    assert all(not c.fields for c in diff.changes if c.op == "create"), "a create has no diff"


def test_dropping_an_availability_zone_deletes_its_subnets_and_routes(dev, three_azs) -> None:
    diff = diff_rendered(three_azs, dev)
    assert ops(diff, "delete") == THIRD_AZ, f"deletes {ops(diff, 'delete')}"
    assert ops(diff, "create") == set(), "removing a zone must create nothing"
    assert diff.count("delete") == len(THIRD_AZ)


def test_moving_the_node_group_to_new_subnets_replaces_it(dev, three_azs) -> None:
    """EKS node groups cannot change subnets in place (aws.eks.NodeGroup subnetIds forces a
    new resource); the cluster itself updates its VPC config in place."""
    changes = {c.name: c for c in diff_rendered(dev, three_azs).changes}
    assert changes["cluster-nodes"].op == "replace", "a node group's subnets force a new group"
    assert changes["cluster-eks"].op == "update", "cluster subnets change in place"
    assert [f.path for f in changes["cluster-nodes"].fields] == ["subnetIds[2]"]


def test_a_mode_change_updates_the_traffic_virtual_services_in_place(dev) -> None:
    diff = diff_rendered(dev, shared_render("dev", {"mode": "delay"}))
    assert {(c.op, c.name) for c in diff.changes} == {
        ("update", "traffic-vs-ratings"),
        ("update", "traffic-vs-reviews"),
    }
    ratings = next(c for c in diff.changes if c.name == "traffic-vs-ratings")
    fault = next(f for f in ratings.fields if f.path == "spec.http[0].fault")
    assert fault.before == "(absent)", "the all-v1 ratings route has no fault"
    assert fault.after["delay"]["fixedDelay"] == "7s", f"delay fault: {fault.after}"


def test_a_new_vpc_range_replaces_the_vpc_every_subnet_and_what_names_them(dev) -> None:
    diff = diff_rendered(dev, shared_render("dev", {"vpcCidr": "10.1.0.0/16"}))
    cidr_changed = {c.name for c in diff.changes if [f.path for f in c.fields] == ["cidrBlock"]}
    assert cidr_changed == {
        "network-vpc",
        *(f"network-{tier}-{az}" for tier in ("public", "private") for az in (0, 1)),
    }, f"the range changes exactly the VPC and its subnets, got {sorted(cidr_changed)}"
    # The internet gateway moves to the new VPC in place (detach, attach): an update whose
    # one change is the VPC id, unknown until the new VPC exists.
    (moved,) = [c for c in diff.changes if c.op != "replace"]
    assert (moved.op, moved.name) == ("update", "network-igw")
    assert [str(f) for f in moved.fields] == ['vpcId: "network-vpc-id" -> (new id of network-vpc)']


def test_a_deployment_selector_change_is_a_replacement(dev) -> None:
    """Kubernetes refuses to change spec.selector of a Deployment (it is immutable in apps/v1)."""

    def relabel(inputs: dict) -> None:
        inputs["spec"]["selector"]["matchLabels"]["track"] = "stable"

    after = with_deployment_changed(dev, "bookinfo-reviews-v2", relabel)
    (change,) = diff_rendered(dev, after).changes
    assert (change.op, change.name) == ("replace", "bookinfo-reviews-v2")
    assert [str(f) for f in change.fields] == [
        'spec.selector.matchLabels.track: (absent) -> "stable"'
    ]


def test_a_deployment_replica_or_label_change_is_an_update(dev) -> None:
    def scale_and_label(inputs: dict) -> None:
        inputs["spec"]["replicas"] = 2
        inputs["metadata"]["labels"]["track"] = "stable"

    after = with_deployment_changed(dev, "bookinfo-reviews-v2", scale_and_label)
    (change,) = diff_rendered(dev, after).changes
    assert change.op == "update", "replicas and labels change in place"
    assert [f.path for f in change.fields] == ["metadata.labels.track", "spec.replicas"]


def test_renaming_a_kubernetes_object_is_a_replacement(dev) -> None:
    def rename(inputs: dict) -> None:
        inputs["metadata"]["name"] = "reviews-v2-canary"

    after = with_deployment_changed(dev, "bookinfo-reviews-v2", rename)
    (change,) = diff_rendered(dev, after).changes
    assert change.op == "replace", "a new name is a new Kubernetes object"


def test_the_same_render_is_no_change(dev) -> None:
    diff = diff_rendered(dev, dev)
    assert diff.changes == ()
    assert not diff.routes_changed


def commit_all(repo: Path, message: str) -> str:
    git = ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_diff_between_two_commits_names_exactly_what_the_second_changed(tmp_path: Path) -> None:
    """Two real commits of a copy of the project: the second sets the dev stack's mode to v3."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    repo = tmp_path / "repo"
    for name in filter(None, tracked):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    base = commit_all(repo, "base")
    stack_file = repo / "Pulumi.dev.yaml"
    text = stack_file.read_text()
    assert "bookinfo-mesh:mode: all-v1" in text, "the dev stack file no longer starts on all-v1"
    stack_file.write_text(text.replace("bookinfo-mesh:mode: all-v1", "bookinfo-mesh:mode: v3"))
    head = commit_all(repo, "reviews v3 for everyone")

    # Refs name commits of the project's repository, whatever folder the command runs in.
    # (The copy's own command, run in the copy, is the PR-comment sample of docs/ci.md.)
    comment = tmp_path / "comment.md"
    argv = ["diff", "--project", str(repo), "--base", base, "--head", head]
    assert main([*argv, "--markdown", str(comment)]) == 0
    lines = comment.read_text().splitlines()
    assert lines[0] == "### bookinfo-mesh dev: 0 to create, 1 to update, 0 to replace, 0 to delete"
    assert "| update | traffic-vs-reviews | kubernetes:networking.istio.io/v1:VirtualService |" in (
        lines
    )
    assert "| not logged in | reviews v1, no stars | reviews v3, red stars |" in lines
    assert "| user jason | reviews v1, no stars | reviews v3, red stars |" in lines


def test_a_ref_names_a_commit_of_the_project_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a folder outside the checkout, or inside another repository, --base HEAD is the
    project's HEAD, not that folder's."""
    other = tmp_path / "other-repo"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    monkeypatch.chdir(other)
    assert main(["diff", "--base", "HEAD", "--markdown", "-"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("### bookinfo-mesh dev:")
