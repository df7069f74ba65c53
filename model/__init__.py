"""The pure model of the mesh: routes, outcomes, manifests, the Bookinfo catalogue, subnets."""
