"""ComponentResources of bookinfo-mesh and the pure modules they draw on."""
