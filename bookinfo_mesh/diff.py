"""What a config change or a commit would do to a stack: resource operations and route changes."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

from bookinfo_mesh.engine import mock_id
from bookinfo_mesh.render import Rendered

# Input paths whose change makes the provider replace (delete and create) the resource: the
# one table of them. AWS entries are the ForceNew arguments of terraform-provider-aws, which
# pulumi-aws bridges; eks:index:* are pulumi-eks components, replaced when the AWS resource
# they wrap is (aws_eks_cluster: name, and the VPC, since a cluster never moves to another
# VPC; its subnets within the VPC change in place through UpdateClusterConfig;
# aws_eks_node_group: instance_types, subnet_ids, ami_type, node_role_arn,
# cluster_name); Kubernetes entries are pulumi-kubernetes's replace-on-change fields.
# A path matches itself and everything below it. `pulumi preview` stays the final word.
REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "kubernetes:*": ("apiVersion", "kind", "metadata.name", "metadata.namespace"),
    "kubernetes:apps/v1:Deployment": ("spec.selector",),
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "vpcId"),
    "aws:ec2/routeTable:RouteTable": ("vpcId",),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("subnetId", "gatewayId"),
    "aws:ec2/natGateway:NatGateway": ("subnetId", "allocationId", "connectivityType"),
    "aws:ec2/eip:Eip": ("domain",),
    "aws:ec2/launchTemplate:LaunchTemplate": ("name", "namePrefix"),
    "aws:iam/role:Role": ("name", "namePrefix"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", "policyArn"),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keyUsage"),
    "eks:index:Cluster": ("name", "vpcId"),
    "eks:index:ManagedNodeGroup": (
        "cluster",
        "clusterName",
        "subnetIds",
        "instanceTypes",
        "amiType",
        "nodeRole",
        "nodeRoleArn",
        "nodeGroupName",
        "capacityType",
        "diskSize",
    ),
}


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.path}: {short(self.before)} -> {short(self.after)}"


@dataclass(frozen=True)
class ResourceChange:
    """One resource the change touches, and how."""

    op: str  # create | update | replace | delete
    urn: str
    type: str
    name: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class StackDiff:
    before: Rendered
    after: Rendered
    changes: tuple[ResourceChange, ...] = field(default_factory=tuple)

    def count(self, op: str) -> int:
        return sum(1 for c in self.changes if c.op == op)

    @property
    def update_steps(self) -> tuple[tuple[ResourceChange, ...], ...]:
        """The order of the update: each step waits for the steps before it.

        A change comes after every change it depends on, directly or through unchanged
        resources; a dependency on a component stands for all of its descendants, as in the
        engine. Changes in one step are independent and the engine runs them together.
        Deletes come last, as the engine deletes after it creates and updates.
        """
        return update_steps(self.after.resources, self.changes)

    @property
    def routes_changed(self) -> bool:
        return self.before.summary["routes"] != self.after.summary["routes"]


_MISSING = "(absent)"


def short(value: Any) -> str:
    """A value as one short line for reports."""
    if value == _MISSING:
        return _MISSING
    # JSON keeps a value on one line: a newline in it cannot start a line of its own.
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _path(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Leaf-level differences between two input dicts, as dotted paths."""
    # Imported on use: deepdiff is the slowest import of the CLI and render never needs it.
    from deepdiff import DeepDiff
    from deepdiff.helper import notpresent

    tree = DeepDiff(before, after, view="tree", verbose_level=2)
    changes = []
    for level in (lvl for group in tree.values() for lvl in group):
        path = _path(level.path(output_format="list"))
        old = _MISSING if level.t1 is notpresent else level.t1
        new = _MISSING if level.t2 is notpresent else level.t2
        changes.append(FieldChange(path, old, new))
    return tuple(sorted(changes, key=lambda c: c.path))


def _force_new_paths(type_: str) -> tuple[str, ...]:
    return REPLACE_ON_CHANGE.get(type_, ()) + (
        REPLACE_ON_CHANGE["kubernetes:*"] if type_.startswith("kubernetes:") else ()
    )


def _under(path: str, pattern: str) -> bool:
    """`path` is the field `pattern` names, or lies below it (an item, a nested key)."""
    return (
        path == pattern
        or path.startswith((f"{pattern}.", f"{pattern}["))
        or (fnmatch.fnmatch(path, pattern) and "*" in pattern)
    )


def _replaces(type_: str, changes: tuple[FieldChange, ...]) -> bool:
    return any(_under(c.path, p) for c in changes for p in _force_new_paths(type_))


def _leaves(value: Any, parts: list[Any]) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, [*parts, k])]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, [*parts, i])]
    return [(_path(parts), value)]


def _references(resource: dict[str, Any]) -> frozenset[str]:
    """The values by which other resources' inputs name this one under the mock engine."""
    return frozenset({resource["urn"], mock_id(resource["name"])})


def _forced_by_replacements(
    resource: dict[str, Any], replaced: set[str], by_urn: dict[str, dict[str, Any]]
) -> bool:
    """A force-new input refers to a replaced resource, whose outputs are unknown until then."""
    tokens = frozenset().union(
        *(_references(by_urn[u]) for u in resource["dependencies"] if u in replaced)
    )
    if not tokens:
        return False
    paths = _force_new_paths(resource["type"])
    return any(
        value in tokens and any(_under(path, p) for p in paths)
        for path, value in _leaves(resource["inputs"], [])
    )


def diff_rendered(before: Rendered, after: Rendered) -> StackDiff:
    """Resource operations between two renders, keyed by URN like the engine does.

    A replacement spreads: whatever refers to a replaced resource through a force-new input
    is replaced too, to a fixed point.
    """
    old = {r["urn"]: r for r in before.resources if not r["read"]}
    new = {r["urn"]: r for r in after.resources if not r["read"]}
    ops: dict[str, str] = {}
    fields: dict[str, tuple[FieldChange, ...]] = {}
    for urn in sorted(old.keys() | new.keys()):
        if urn not in old:
            ops[urn] = "create"
        elif urn not in new:
            ops[urn] = "delete"
        else:
            fields[urn] = field_changes(old[urn]["inputs"], new[urn]["inputs"])
            if fields[urn]:
                ops[urn] = "replace" if _replaces(new[urn]["type"], fields[urn]) else "update"
    while True:
        replaced = {u for u, op in ops.items() if op == "replace"}
        spread = [
            urn
            for urn in sorted(old.keys() & new.keys())
            if ops.get(urn) != "replace" and _forced_by_replacements(new[urn], replaced, new)
        ]
        if not spread:
            break
        ops.update(dict.fromkeys(spread, "replace"))
    changes = [
        ResourceChange(
            op,
            urn,
            (new.get(urn) or old[urn])["type"],
            (new.get(urn) or old[urn])["name"],
            fields.get(urn, ()),
        )
        for urn, op in sorted(ops.items())
    ]
    return StackDiff(before, after, tuple(changes))


def _dependency_graph(resources: list[dict[str, Any]]) -> dict[str, set[str]]:
    """URN -> URNs it waits for, with each component dependency expanded to its descendants."""
    children: dict[str, list[str]] = {}
    for r in resources:
        if r["parent"]:
            children.setdefault(r["parent"], []).append(r["urn"])

    def with_descendants(urn: str) -> set[str]:
        found, stack = {urn}, [urn]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    return {
        r["urn"]: {d for dep in r["dependencies"] for d in with_descendants(dep)} for r in resources
    }


def update_steps(
    resources: list[dict[str, Any]], changes: tuple[ResourceChange, ...]
) -> tuple[tuple[ResourceChange, ...], ...]:
    """Changes grouped into steps: step n holds changes whose longest chain of changed
    dependencies (through any resources of `resources`) has n - 1 links."""
    graph = _dependency_graph(resources)
    pending = {c.urn: c for c in changes if c.op != "delete"}
    depth: dict[str, int] = {}

    def depth_of(urn: str, seen: frozenset[str] = frozenset()) -> int:
        if urn not in depth:
            # The changed resources this one waits for, found through unchanged ones too.
            waits, stack, visited = set(), list(graph.get(urn, ())), set(seen | {urn})
            while stack:
                dep = stack.pop()
                if dep in visited:
                    continue
                visited.add(dep)
                if dep in pending:
                    waits.add(dep)
                else:
                    stack.extend(graph.get(dep, ()))
            depth[urn] = 1 + max((depth_of(d, seen | {urn}) for d in waits), default=0)
        return depth[urn]

    steps: dict[int, list[ResourceChange]] = {}
    for urn, change in pending.items():
        steps.setdefault(depth_of(urn), []).append(change)
    ordered = [tuple(sorted(steps[n], key=lambda c: c.name)) for n in sorted(steps)]
    deletes = tuple(c for c in changes if c.op == "delete")
    return tuple(ordered + ([deletes] if deletes else []))
