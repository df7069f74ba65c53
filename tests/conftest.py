"""Test-wide settings: hypothesis runs the same examples on every machine, with no deadline."""

from hypothesis import settings

# A per-example deadline would make timing, not behaviour, fail a test; a fixed seed makes
# a failure reproduce on every run.
settings.register_profile("bookinfo", deadline=None, derandomize=True)
settings.load_profile("bookinfo")
