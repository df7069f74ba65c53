"""Operator tools: render, diff and the other `bookinfo-mesh` commands; never imported by `pulumi up`."""  # noqa: E501
