"""Stack config the way the Pulumi engine hands it to the program, read from the YAML files."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from stacks.project import ROOT, project_file, project_name

SECRET_PLACEHOLDER = "[secret]"
# Pulumi's own stack names: letters, digits, "-", "_" and "." (and no path separators).
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class StackFileError(ValueError):
    """A stack that has no file, or a file Pulumi itself would not read."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a repeated mapping key, as Pulumi's YAML parser does.

    PyYAML keeps the last value silently, so a repeated key would hide the first setting.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _stack_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file; StackFileError when the file is not one."""
    try:
        document = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise StackFileError(f"{path.name} is not valid YAML{line}: {problem}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise StackFileError(f"cannot read {path.name}: {error}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError(
            f"{path.name} must be a mapping with a `config:` key, not a {type(document).__name__}"
        )
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise StackFileError(
            f"{path.name}: `config:` must map keys to values, not be a {type(config).__name__}"
        )
    return config


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

    if not _STACK_NAME.fullmatch(stack):
        raise StackFileError(
            f"{stack!r} is not a stack name: letters, digits, '-', '_' and '.' only"
        )
    path = stack_file(stack, root)
    if not path.is_file():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise StackFileError(
            f"no stack {stack!r}: there is no {path.name} (stacks here: {', '.join(known)}); "
            f"create it with `pulumi stack init {stack}`"
        )
    secrets: list[str] = []
    for key, value in _stack_config(path).items():
        if not isinstance(key, str):
            raise StackFileError(f"{path.name}: config key {key!r} is not a string")
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full(key)] = SECRET_PLACEHOLDER
            secrets.append(full(key))
        else:
            config[full(key)] = _as_config_string(value)
    for key, value in (overrides or {}).items():
        config[full(key)] = value
    return config, secrets


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """`--set key=value` arguments -> config overrides, keys without the project prefix."""
    prefix = f"{project_name()}:"
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise StackFileError(f"--set takes key=value, got {pair!r}")
        overrides[key.removeprefix(prefix)] = value
    return overrides
