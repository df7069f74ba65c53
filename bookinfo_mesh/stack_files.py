"""Stack config the way the Pulumi engine hands it to the program, read from the YAML files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from stacks.project import ROOT, project_file

SECRET_PLACEHOLDER = "[secret]"


def _as_config_string(value: Any) -> str:
    """Engine encoding: strings as is, booleans lower-case, lists and maps as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def stack_file(stack: str, root: Path = ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def load_engine_config(
    stack: str, overrides: Mapping[str, str] | None = None, root: Path = ROOT
) -> tuple[dict[str, str], list[str]]:
    """Full config key -> string value, and the keys that are secrets.

    Order of precedence, as `pulumi up` applies it: the `default:` of each key declared in
    Pulumi.yaml, then Pulumi.<stack>.yaml, then `overrides` (like `pulumi config set`).
    Keys without a namespace belong to the project. Secure values cannot be decrypted
    offline; they are passed as a placeholder and marked secret.
    """
    project = project_file(root)
    name = project["name"]

    def full(key: str) -> str:
        return key if ":" in key else f"{name}:{key}"

    config: dict[str, str] = {}
    for key, declaration in (project.get("config") or {}).items():
        if isinstance(declaration, dict) and "default" in declaration:
            config[full(key)] = _as_config_string(declaration["default"])
        elif isinstance(declaration, dict) and "value" in declaration:
            config[full(key)] = _as_config_string(declaration["value"])
        elif not isinstance(declaration, dict):
            config[full(key)] = _as_config_string(declaration)

    path = stack_file(stack, root)
    if not path.exists():
        raise FileNotFoundError(
            f"no stack file {path.name}: create it with `pulumi stack init {stack}`"
        )
    secrets: list[str] = []
    for key, value in ((yaml.safe_load(path.read_text()) or {}).get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full(key)] = SECRET_PLACEHOLDER
            secrets.append(full(key))
        else:
            config[full(key)] = _as_config_string(value)
    for key, value in (overrides or {}).items():
        config[full(key)] = value
    return config, secrets
