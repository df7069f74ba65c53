"""Test-wide settings: hypothesis runs the same examples on every machine, with no deadline."""

from hypothesis import settings

# A per-example deadline would make timing, not behaviour, fail a test; a fixed seed makes
# a failure reproduce on every run.
settings.register_profile("bookinfo", deadline=None, derandomize=True)
settings.load_profile("bookinfo")
# `make mutation` runs the suite once per mutant and selects this profile on its command line
# (pyproject's [tool.mutmut]): fewer examples per property keep a run in minutes, and a weaker
# suite can only lower the score, never inflate it.
settings.register_profile("mutation", parent=settings.get_profile("bookinfo"), max_examples=25)
