"""Stack config the way the Pulumi engine hands it to the program, read from the YAML files."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from bookinfo_mesh.errors import ToolError
from stacks.config import PROJECT, ConfigError, StackConfig, parse_stack_config
from stacks.project import ROOT, project_file, project_name

SECRET_PLACEHOLDER = "[secret]"
BOM = "\ufeff"  # a UTF-8 byte order mark: YAML ignores it before a document
# Pulumi's own stack names: letters, digits, "-", "_" and "." (and no path separators).
_STACK_NAME_PATTERN = r"[A-Za-z0-9_.-]+"
_STACK_NAME = re.compile(_STACK_NAME_PATTERN)
_STACK_FILE = re.compile(rf"Pulumi\.({_STACK_NAME_PATTERN})\.yaml")


class StackFileError(ToolError):
    """A stack that has no file, or a file Pulumi itself would not read (exit 2)."""


def check_stack_name(stack: str, option: str = "--stack") -> str:
    """`stack` if it is a name `pulumi stack init` accepts; StackFileError if not."""
    if not _STACK_NAME.fullmatch(stack):
        raise StackFileError(
            f"{option} {stack!r} is not a stack name: letters, digits, '-', '_' and '.' only"
        )
    return stack


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


def read_stack_text(path: Path) -> str:
    """A stack file's text as Pulumi reads it (UTF-8); StackFileError if it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise StackFileError(f"cannot read {path.name}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(
            f"{path.name} is not UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "Pulumi reads stack files as UTF-8"
        ) from None


def config_mapping(text: str, name: str) -> dict[str, Any]:
    """The `config:` mapping of a stack file's text; StackFileError when it is not one."""
    try:
        document = yaml.load(text.removeprefix(BOM), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise StackFileError(f"{name} is not valid YAML{line}: {problem}") from None
    except RecursionError:
        raise StackFileError(f"{name} nests deeper than a YAML parser can follow") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError(
            f"{name} must be a mapping with a `config:` key, not a {type(document).__name__}"
        )
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise StackFileError(
            f"{name}: `config:` must map keys to values, not be a {type(config).__name__}"
        )
    for key in config:
        if not isinstance(key, str):
            raise StackFileError(f"{name}: config key {key!r} is not a string")
    return config


def project_values(text: str, name: str) -> dict[str, Any]:
    """The project's keys of a stack file's text, namespace removed, values as YAML has them."""
    prefix = f"{PROJECT}:"
    return {k.removeprefix(prefix): v for k, v in config_mapping(text, name).items()}


def _as_config_string(value: Any) -> str:
    """Engine encoding: strings as is, booleans lower-case, lists and maps as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def stack_file(stack: str, root: Path | None = None) -> Path:
    return (root or ROOT) / f"Pulumi.{stack}.yaml"


def stack_of_file(name: str) -> str | None:
    """The stack a file name is the stack file of ("Pulumi.dev.yaml" -> "dev"), if any."""
    match = _STACK_FILE.fullmatch(name)
    return match[1] if match else None


def stacks_in(root: Path | None = None) -> list[str]:
    """The stacks that have a Pulumi.<stack>.yaml, sorted."""
    folder = root or ROOT
    return sorted(s for p in folder.iterdir() if (s := stack_of_file(p.name)) is not None)


def load_engine_config(
    stack: str, overrides: Mapping[str, str] | None = None, root: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """Full config key -> string value, and the keys that are secrets.

    Order of precedence, as `pulumi up` applies it: the `default:` of each key declared in
    Pulumi.yaml, then Pulumi.<stack>.yaml, then `overrides` (like `pulumi config set`).
    Keys without a namespace belong to the project. Secure values cannot be decrypted
    offline; they are passed as a placeholder and marked secret.
    """
    path = existing_stack_file(stack, root)
    return engine_config(read_stack_text(path), path.name, overrides, root)


def existing_stack_file(stack: str, root: Path | None = None) -> Path:
    """Pulumi.<stack>.yaml; StackFileError naming the stacks there are if it does not exist."""
    check_stack_name(stack)
    path = stack_file(stack, root)
    if not path.is_file():
        raise StackFileError(
            f"no stack {stack!r}: there is no {path.name} (stacks here: "
            f"{', '.join(stacks_in(root))}); create it with `pulumi stack init {stack}`"
        )
    return path


def engine_config(
    text: str, name: str, overrides: Mapping[str, str] | None = None, root: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """load_engine_config for a stack file's text (`name` is its file name, for messages)."""
    project = project_file(root or ROOT)
    project_name = project["name"]

    def full(key: str) -> str:
        return key if ":" in key else f"{project_name}:{key}"

    config: dict[str, str] = {}
    for key, declaration in (project.get("config") or {}).items():
        if isinstance(declaration, dict) and "default" in declaration:
            config[full(key)] = _as_config_string(declaration["default"])
        elif isinstance(declaration, dict) and "value" in declaration:
            config[full(key)] = _as_config_string(declaration["value"])
        elif not isinstance(declaration, dict):
            config[full(key)] = _as_config_string(declaration)
    secrets: list[str] = []
    for key, value in config_mapping(text, name).items():
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


def stack_config(
    stack: str, overrides: Mapping[str, str] | None = None, root: Path | None = None
) -> StackConfig:
    """The validated config `pulumi up` would give the program; StackFileError if invalid."""
    return _parsed(load_engine_config(stack, overrides, root)[0])


def stack_config_of_text(text: str, name: str, root: Path | None = None) -> StackConfig:
    """stack_config for a stack file's text, as if it were the file (promote's candidates)."""
    return _parsed(engine_config(text, name, None, root)[0])


def _parsed(config: Mapping[str, str]) -> StackConfig:
    prefix = f"{PROJECT}:"
    raw = {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
    try:
        return parse_stack_config(raw)
    except ConfigError as error:
        raise StackFileError("; ".join(map(str, error.problems))) from None
