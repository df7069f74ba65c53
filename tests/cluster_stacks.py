"""The stacks the suite installs on a kube-apiserver of their own (tests/mesh_cluster.py): a
module of its own, so that tests/conftest.py can name them without importing the clients."""

STACKS = ("dev", "prod")
