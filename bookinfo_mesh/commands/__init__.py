"""One module per `bookinfo-mesh` command, each with its arguments and its `run`."""
