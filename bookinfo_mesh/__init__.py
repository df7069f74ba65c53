"""Operator tools: the `bookinfo-mesh` commands; `pulumi up` never imports them."""
