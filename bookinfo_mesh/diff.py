"""What a config change or a commit would do to a stack: resource operations and route changes."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from bookinfo_mesh.engine import mock_id
from bookinfo_mesh.render import Rendered, ResourceRecord

# Input paths whose change makes the provider replace (delete and create) the resource: the
# one table of them, for every resource type the program registers (a type with no entry
# updates in place whatever changes). A path matches itself and everything below it.
# tests/data/force_new_sources.json records where each entry was read, and
# tests/test_force_new.py holds the table to it:
# - aws:*: the ForceNew arguments of terraform-provider-aws (v6), which pulumi-aws bridges,
#   and `region`, which replaces a regional resource when it changes.
# - eks:index:*: pulumi-eks components, replaced when the AWS resource they wrap is, through
#   the inputs that reach it. One deliberate addition: a new vpcId replaces the cluster's
#   security groups and leaves a cluster that AWS cannot move, so a replacement is what it
#   takes, though `pulumi preview` shows an update.
# - kubernetes:*: pulumi-kubernetes's force-new properties.
# Conditional replacements (a CustomizeDiff that replaces for some changes only) are not
# predicted. `pulumi preview` stays the final word.
REGION = "region"
REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "kubernetes:*": ("metadata.name", "metadata.namespace"),
    "kubernetes:apps/v1:Deployment": ("spec.selector",),
    "kubernetes:core/v1:Service": ("spec.clusterIP",),
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
    "kubernetes:storage.k8s.io/v1:StorageClass": ("parameters", "provisioner"),
    "aws:ec2/vpc:Vpc": ("cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength", REGION),
    "aws:ec2/subnet:Subnet": (
        "cidrBlock",
        "availabilityZone",
        "availabilityZoneId",
        "vpcId",
        "ipv4IpamPoolId",
        "ipv4NetmaskLength",
        "ipv6IpamPoolId",
        "ipv6NetmaskLength",
        "ipv6Native",
        "outpostArn",
        REGION,
    ),
    "aws:ec2/internetGateway:InternetGateway": (REGION,),
    "aws:ec2/routeTable:RouteTable": ("vpcId", REGION),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("subnetId", "gatewayId", REGION),
    "aws:ec2/natGateway:NatGateway": (
        "subnetId",
        "allocationId",
        "connectivityType",
        "privateIp",
        "vpcId",
        "availabilityMode",
        REGION,
    ),
    "aws:ec2/eip:Eip": (
        "domain",
        "address",
        "ipamPoolId",
        "networkBorderGroup",
        "publicIpv4Pool",
        REGION,
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": ("name", "namePrefix", REGION),
    "aws:eks/addon:Addon": ("addonName", "clusterName", "namespaceConfig", REGION),
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", "policyArn"),
    "aws:kms/key:Key": (
        "customerMasterKeySpec",
        "customKeyStoreId",
        "keyUsage",
        "multiRegion",
        "xksKeyId",
        REGION,
    ),
    "eks:index:Cluster": (
        "name",
        "serviceRole",
        "ipFamily",
        "kubernetesServiceIpAddressRange",
        "vpcId",
    ),
    "eks:index:ManagedNodeGroup": (
        "cluster",
        "clusterName",
        "subnetIds",
        "instanceTypes",
        "amiType",
        "operatingSystem",
        "gpu",
        "nodeRole",
        "nodeRoleArn",
        "nodeGroupName",
        "nodeGroupNamePrefix",
        "capacityType",
        "diskSize",
        "remoteAccess",
        "launchTemplate.id",
        "launchTemplate.name",
        # Each makes the component build a launch template of its own: a new launchTemplate.id.
        "amiId",
        "userData",
        "kubeletExtraArgs",
        "bootstrapExtraArgs",
        "bottlerocketSettings",
        "nodeadmExtraOptions",
        "enableIMDSv2",
        "enableEfaSupport",
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
        return self.before.summary.routes != self.after.summary.routes


_MISSING = "(absent)"


class KnownAfterReplacement(str):
    """An input naming a replaced resource: "(new id of <name>)", known once it is recreated."""


def short(value: Any) -> str:
    """A value as one short line for reports."""
    if value == _MISSING or isinstance(value, KnownAfterReplacement):
        return str(value)
    # JSON keeps a value on one line: a newline in it cannot start a line of its own.
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _path(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Differences between two input dicts, each at the deepest path where they differ."""
    if before == after:
        return ()  # most resources of two renders: no need to walk them
    # Imported on use: deepdiff is the slowest import of the CLI and render never needs it.
    from deepdiff import DeepDiff
    from deepdiff.helper import notpresent

    tree = DeepDiff(before, after, view="tree")
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
    return path == pattern or path.startswith((f"{pattern}.", f"{pattern}["))


def _replaces(type_: str, changes: tuple[FieldChange, ...]) -> bool:
    return any(_under(c.path, p) for c in changes for p in _force_new_paths(type_))


def _leaves(value: Any, parts: list[Any]) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, [*parts, k])]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, [*parts, i])]
    return [(_path(parts), value)]


def _references(resource: ResourceRecord) -> frozenset[str]:
    """The values by which other resources' inputs name this one under the mock engine."""
    return frozenset({resource.urn, mock_id(resource.name)})


def _inputs_naming_replaced(
    resource: ResourceRecord, replaced: set[str], by_urn: dict[str, ResourceRecord]
) -> list[FieldChange]:
    """The inputs of `resource` that name a replaced resource: their values are unknown until
    it is recreated, so each becomes a change to "(new id of <name>)"."""
    named = {
        token: by_urn[u].name
        for u in resource.dependencies
        if u in replaced
        for token in _references(by_urn[u])
    }
    return [
        FieldChange(path, value, KnownAfterReplacement(f"(new id of {named[value]})"))
        for path, value in _leaves(resource.inputs, [])
        if isinstance(value, str) and value in named
    ]


def diff_rendered(before: Rendered, after: Rendered) -> StackDiff:
    """Resource operations between two renders, keyed by URN like the engine does.

    A replacement spreads: whatever names a replaced resource through a force-new input is
    replaced too, to a fixed point; whatever names it through another input is updated.
    """
    old = {r.urn: r for r in before.resources if not r.read}
    new = {r.urn: r for r in after.resources if not r.read}
    ops: dict[str, str] = {}
    fields: dict[str, tuple[FieldChange, ...]] = {}
    for urn in sorted(old.keys() | new.keys()):
        if urn not in old:
            ops[urn] = "create"
        elif urn not in new:
            ops[urn] = "delete"
        else:
            fields[urn] = field_changes(old[urn].inputs, new[urn].inputs)
            if fields[urn]:
                ops[urn] = "replace" if _replaces(new[urn].type, fields[urn]) else "update"
    # Each pass that goes on replaces one more resource at least: len(new) passes suffice.
    for _ in range(len(new)):
        replaced = {u for u, op in ops.items() if op == "replace"}
        naming = {
            urn: found
            for urn in sorted(old.keys() & new.keys())
            if ops.get(urn) != "replace"
            and (found := _inputs_naming_replaced(new[urn], replaced, new))
        }
        for urn, found in naming.items():
            fields[urn] = tuple(sorted({*fields[urn], *found}, key=lambda c: c.path))
        spread = [urn for urn in naming if _replaces(new[urn].type, fields[urn])]
        ops.update(dict.fromkeys(naming, "update"))
        if not spread:
            break
        ops.update(dict.fromkeys(spread, "replace"))
    changes = [
        ResourceChange(
            op,
            urn,
            (new.get(urn) or old[urn]).type,
            (new.get(urn) or old[urn]).name,
            fields.get(urn, ()),
        )
        for urn, op in sorted(ops.items())
    ]
    return StackDiff(before, after, tuple(changes))


def _dependency_graph(resources: Sequence[ResourceRecord]) -> dict[str, list[str]]:
    """URN -> URNs it waits for, sorted, with each component dependency expanded to its
    descendants."""
    children: dict[str, list[str]] = {}
    for r in resources:
        if r.parent:
            children.setdefault(r.parent, []).append(r.urn)

    def with_descendants(urn: str) -> set[str]:
        return {urn}.union(*(with_descendants(child) for child in children.get(urn, [])))

    return {
        r.urn: sorted({d for dep in r.dependencies for d in with_descendants(dep)})
        for r in resources
    }


def _changed_dependencies(
    urn: str, graph: dict[str, list[str]], changed: Collection[str]
) -> set[str]:
    """The changed resources `urn` waits for, directly or through unchanged ones."""
    found: set[str] = set()
    visited, stack = {urn}, [*graph[urn]]
    while stack:
        dep = stack.pop()
        if dep not in visited:
            visited.add(dep)
            if dep in changed:
                found.add(dep)
            else:
                stack.extend(graph[dep])
    return found


def update_steps(
    resources: Sequence[ResourceRecord], changes: tuple[ResourceChange, ...]
) -> tuple[tuple[ResourceChange, ...], ...]:
    """Changes grouped into steps: a step holds the changes whose changed dependencies (through
    any resources of `resources`) are all in earlier steps."""
    graph = _dependency_graph(resources)
    pending = {c.urn: c for c in changes if c.op != "delete"}
    waits = {urn: _changed_dependencies(urn, graph, pending) for urn in pending}
    steps: list[tuple[ResourceChange, ...]] = []
    remaining = dict(pending)
    while remaining:
        ready = [c for urn, c in remaining.items() if waits[urn].isdisjoint(remaining)]
        # Expanding a dependency on a component to all of its descendants can make changes
        # wait on each other in this graph; what is left then shares one step.
        step = ready or list(remaining.values())
        steps.append(tuple(sorted(step, key=lambda c: c.name)))
        for change in step:
            del remaining[change.urn]
    deletes = tuple(c for c in changes if c.op == "delete")
    return tuple(steps + ([deletes] if deletes else []))
