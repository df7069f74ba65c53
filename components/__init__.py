"""ComponentResources of bookinfo-mesh: each registers resources from the pure model."""
