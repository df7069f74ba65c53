"""What a config change or a commit would do to a stack: resource operations and route changes."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

from bookinfo_mesh.render import Rendered

# Input paths whose change makes the provider replace (delete and create) the resource, from
# the providers' schemas (ForceNew / replaceOnChanges). `pulumi preview` stays the final word.
REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "kubernetes:*": ("apiVersion", "kind", "metadata.name", "metadata.namespace"),
    "kubernetes:apps/v1:Deployment": ("spec.selector*",),
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "vpcId"),
    "aws:ec2/natGateway:NatGateway": ("subnetId", "allocationId"),
    "eks:index:Cluster": ("name", "vpcId"),
    "eks:index:ManagedNodeGroup": ("subnetIds", "amiType", "nodeRole*"),
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


def _replaces(type_: str, changes: tuple[FieldChange, ...]) -> bool:
    patterns = REPLACE_ON_CHANGE.get(type_, ()) + (
        REPLACE_ON_CHANGE["kubernetes:*"] if type_.startswith("kubernetes:") else ()
    )
    return any(fnmatch.fnmatch(c.path, p) for c in changes for p in patterns)


def diff_rendered(before: Rendered, after: Rendered) -> StackDiff:
    """Resource operations between two renders, keyed by URN like the engine does."""
    old = {r["urn"]: r for r in before.resources if not r["read"]}
    new = {r["urn"]: r for r in after.resources if not r["read"]}
    changes: list[ResourceChange] = []
    for urn in sorted(old.keys() | new.keys()):
        if urn not in old:
            changes.append(ResourceChange("create", urn, new[urn]["type"], new[urn]["name"]))
        elif urn not in new:
            changes.append(ResourceChange("delete", urn, old[urn]["type"], old[urn]["name"]))
        else:
            fields = field_changes(old[urn]["inputs"], new[urn]["inputs"])
            if fields:
                op = "replace" if _replaces(new[urn]["type"], fields) else "update"
                changes.append(ResourceChange(op, urn, new[urn]["type"], new[urn]["name"], fields))
    return StackDiff(before, after, tuple(changes))
