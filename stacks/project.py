"""The project as Pulumi.yaml declares it: where it lives and what it is called."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def project_file(root: Path = ROOT) -> dict[str, Any]:
    """Pulumi.yaml, parsed."""
    return yaml.safe_load((root / "Pulumi.yaml").read_text())


@lru_cache(maxsize=8)
def _name_in(text: str) -> str:
    return str(yaml.safe_load(text)["name"])


def project_name(root: Path = ROOT) -> str:
    """The project name, which prefixes every config key of the project's namespace."""
    return _name_in((root / "Pulumi.yaml").read_text())
