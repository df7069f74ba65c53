"""bookinfo-mesh stacks."""
