"""What a component's ResourceOptions ask of the children that must honour them."""

from __future__ import annotations

import pulumi


def declared_dependencies(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """The resources in `opts.depends_on`, as a list.

    The engine orders a component after its `depends_on` but not the component's children,
    so a component passes these on to the children that must wait for them.
    """
    depends_on = opts.depends_on if opts is not None else None
    if depends_on is None:
        return []
    if isinstance(depends_on, pulumi.Resource):
        return [depends_on]
    return list(depends_on)


def is_protected(opts: pulumi.ResourceOptions | None) -> bool:
    """Whether `opts` protects the component (children inherit it unless they opt out)."""
    return bool(opts is not None and opts.protect)
