"""diff's own logic on small hand-made renders: no program run, every branch named."""

from __future__ import annotations

from typing import Any

from bookinfo_mesh.diff import (
    FieldChange,
    ResourceChange,
    diff_rendered,
    field_changes,
    short,
    update_steps,
)
from bookinfo_mesh.render import Rendered, ResourceRecord, Summary

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
NODES = "eks:index:ManagedNodeGroup"
IGW = "aws:ec2/internetGateway:InternetGateway"


def res(
    name: str, type_: str, inputs: dict[str, Any], deps: tuple[str, ...] = (), parent: str = ""
) -> ResourceRecord:
    return ResourceRecord(
        urn=f"urn:{name}",
        type=type_,
        name=name,
        parent=f"urn:{parent}" if parent else None,
        dependencies=tuple(f"urn:{d}" for d in deps),
        provider=None,
        protect=False,
        read=False,
        inputs=inputs,
    )


NO_SUMMARY = Summary(
    stack="test",
    config={},
    resource_count=0,
    resources={},
    routes={},
    predicted_pages={},
    outputs={},
)


def rendered(*resources: ResourceRecord) -> Rendered:
    return Rendered(resources, (), NO_SUMMARY)


def test_short_values_are_one_json_line_with_keys_sorted_and_text_as_typed() -> None:
    assert short({"b": 1, "a": "é"}) == '{"a": "é", "b": 1}'
    assert short({3, 1}) == '"{1, 3}"'  # what JSON cannot hold is shown as its str()
    assert short("(absent)") == "(absent)"


def test_short_keeps_80_characters_and_cuts_longer_values_to_80_with_an_ellipsis() -> None:
    eighty = "x" * 78  # with its quotes: 80 characters
    assert short(eighty) == f'"{eighty}"'
    assert short(eighty + "y") == '"' + "x" * 76 + "..."


def test_field_changes_name_added_removed_and_nested_leaves() -> None:
    before = {"a": 1, "gone": "x", "nested": {"list": [1, 2]}}
    after = {"a": 2, "new": {"k": "v"}, "nested": {"list": [1, 3]}}
    assert [str(c) for c in field_changes(before, after)] == [
        "a: 1 -> 2",
        'gone: "x" -> (absent)',
        "nested.list[1]: 2 -> 3",
        'new: (absent) -> {"k": "v"}',
    ]


def test_a_force_new_field_replaces_and_any_other_field_updates() -> None:
    before = rendered(res("vpc", VPC, {"cidrBlock": "10.0.0.0/16", "enableDnsSupport": True}))
    after = rendered(res("vpc", VPC, {"cidrBlock": "10.1.0.0/16", "enableDnsSupport": True}))
    dns_only = rendered(res("vpc", VPC, {"cidrBlock": "10.0.0.0/16", "enableDnsSupport": False}))
    assert [c.op for c in diff_rendered(before, after).changes] == ["replace"]
    assert [c.op for c in diff_rendered(before, dns_only).changes] == ["update"]


def test_kubernetes_replace_on_change_fields_do_not_apply_to_aws_types() -> None:
    before = rendered(res("vpc", VPC, {"metadata": {"name": "a"}, "cidrBlock": "10.0.0.0/16"}))
    after = rendered(res("vpc", VPC, {"metadata": {"name": "b"}, "cidrBlock": "10.0.0.0/16"}))
    assert [c.op for c in diff_rendered(before, after).changes] == ["update"]


def test_a_replacement_spreads_through_ids_in_lists_and_updates_what_names_it_otherwise() -> None:
    """vpc -> subnet (vpcId forces) -> node group (subnetIds[1] forces); igw (vpcId updates)."""

    def stack(cidr: str) -> Rendered:
        return rendered(
            res("vpc", VPC, {"cidrBlock": cidr}),
            res("subnet", SUBNET, {"vpcId": "vpc-id", "cidrBlock": "10.0.0.0/24"}, ("vpc",)),
            res("igw", IGW, {"vpcId": "vpc-id"}, ("vpc",)),
            res("nodes", NODES, {"subnetIds": ["other", "subnet-id"]}, ("subnet",)),
        )

    diff = diff_rendered(stack("10.0.0.0/16"), stack("10.1.0.0/16"))
    assert {c.name: c.op for c in diff.changes} == {
        "vpc": "replace",
        "subnet": "replace",
        "nodes": "replace",
        "igw": "update",
    }
    by_name = {c.name: [str(f) for f in c.fields] for c in diff.changes}
    assert by_name["nodes"] == ['subnetIds[1]: "subnet-id" -> (new id of subnet)']
    assert by_name["igw"] == ['vpcId: "vpc-id" -> (new id of vpc)']


def test_created_and_deleted_resources_are_named_by_urn() -> None:
    before = rendered(res("old", VPC, {"cidrBlock": "10.0.0.0/16"}))
    after = rendered(res("new", VPC, {"cidrBlock": "10.0.0.0/16"}))
    assert [(c.op, c.name, c.fields) for c in diff_rendered(before, after).changes] == [
        ("create", "new", ()),  # a whole resource comes or goes: no field changes to list
        ("delete", "old", ()),
    ]


def change(op: str, name: str) -> ResourceChange:
    return ResourceChange(op, f"urn:{name}", VPC, name)


def step_names(resources: list[dict[str, Any]], changes: tuple[ResourceChange, ...]) -> list:
    """The update's steps, each as the names of its changes."""
    return [[c.name for c in step] for step in update_steps(resources, changes)]


def test_update_steps_wait_for_changed_dependencies_through_components_and_unchanged_ones() -> None:
    resources = [
        res("mesh", "bookinfo:index:IstioMesh", {}),
        res("control", "bookinfo:index:ControlPlane", {}, parent="mesh"),
        res("istiod", VPC, {}, parent="control"),  # a grandchild of the component app needs
        res("base", VPC, {}, parent="mesh"),
        res("app", VPC, {}, ("mesh",)),  # a component dependency stands for its descendants
        res("routes", VPC, {}, ("app",)),
        res("quiet", VPC, {}, ("istiod",)),  # unchanged, but it waits for istiod
        res("late", VPC, {}, ("quiet",)),
        res("alone", VPC, {}),
    ]
    changes = (
        change("update", "istiod"),
        change("update", "app"),
        change("replace", "routes"),
        change("update", "late"),
        change("create", "alone"),
        change("delete", "gone"),
    )
    assert step_names(resources, changes) == [
        ["alone", "istiod"],
        ["app", "late"],
        ["routes"],
        ["gone"],
    ]


def test_a_change_waits_for_every_changed_dependency_behind_shared_unchanged_ones() -> None:
    # The walk meets b-net twice (directly and through c-cache) before it reaches a-db.
    resources = [
        res("a-db", VPC, {}),
        res("b-net", VPC, {}),
        res("c-cache", VPC, {}, ("b-net",)),
        res("app", VPC, {}, ("a-db", "b-net", "c-cache")),
    ]
    changes = (change("update", "app"), change("update", "a-db"))
    assert step_names(resources, changes) == [["a-db"], ["app"]]


def test_a_step_follows_the_longest_chain_of_changed_dependencies() -> None:
    resources = [
        res("first", VPC, {}),
        res("second", VPC, {}, ("first",)),
        res("third", VPC, {}, ("first", "second")),  # after second, not beside it
    ]
    changes = (change("update", "third"), change("update", "second"), change("update", "first"))
    assert step_names(resources, changes) == [["first"], ["second"], ["third"]]


def test_changes_that_wait_on_each_other_through_their_component_share_a_last_step() -> None:
    # Both children wait for the component they belong to, so each waits for the other.
    resources = [
        res("mesh", "bookinfo:index:IstioMesh", {}),
        res("istiod", VPC, {}, ("mesh",), parent="mesh"),
        res("gateway", VPC, {}, ("mesh",), parent="mesh"),
        res("routes", VPC, {}, ("gateway",)),
        res("alone", VPC, {}),
    ]
    changes = (
        change("update", "istiod"),
        change("update", "gateway"),
        change("update", "routes"),
        change("update", "alone"),
    )
    assert step_names(resources, changes) == [["alone"], ["gateway", "istiod", "routes"]]


def test_no_change_is_no_step() -> None:
    assert update_steps([res("a", VPC, {})], ()) == ()


def test_field_change_reads_as_a_line() -> None:
    assert str(FieldChange("spec.replicas", 1, 2)) == "spec.replicas: 1 -> 2"
