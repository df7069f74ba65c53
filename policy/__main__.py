"""Policy pack bookinfo-mesh: each pure rule of rules.py as a mandatory policy.

A rule that judges one resource at a time (Rule.per_resource) runs as a resource policy, which
the engine calls as each resource is registered, so a violation stops that resource before it
is created; the others relate several resources and run as stack policies, after registration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# `pulumi preview --policy-pack policy` runs this file with policy/ first on sys.path.
import rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

PACK_NAME = "bookinfo-mesh"


def plain(value: Any) -> Any:
    """pulumi_policy's property proxies -> dicts and lists; values unknown in preview -> UNKNOWN."""
    if isinstance(value, str) or not isinstance(value, (Mapping, Sequence)):
        return value
    keys = list(value) if isinstance(value, Mapping) else range(len(value))
    items = []
    for key in keys:
        try:
            items.append(plain(value[key]))
        except UnknownValueError:
            items.append(rules.UNKNOWN)
    return dict(zip(keys, items, strict=True)) if isinstance(value, Mapping) else items


def stack_resources(args: StackValidationArgs) -> list[rules.PolicyResource]:
    return [
        rules.PolicyResource(type=r.resource_type, name=r.name, props=plain(r.props))
        for r in args.resources
    ]


def stack_policy(rule: rules.Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.check(stack_resources(args)):
            report_violation(message, None)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def resource_policy(rule: rules.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = rules.PolicyResource(args.resource_type, args.name, plain(args.props))
        for message in rule.check([resource]):
            report_violation(message, args.urn)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    resource_policy(rule) if rule.per_resource else stack_policy(rule) for rule in rules.RULES
]

# Constructing the pack serves it to the engine until killed, so only when run as the pack.
if __name__ == "__main__":
    PolicyPack(PACK_NAME, POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
