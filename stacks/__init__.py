"""Typed stack config and its validation, and the composition of the components."""
