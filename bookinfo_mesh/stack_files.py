"""Stack config the way the Pulumi engine hands it to the program, read from the YAML files."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from bookinfo_mesh.errors import ToolError
from bookinfo_mesh.pulumi_config import (
    PulumiConfigError,
    full_key,
    merged_config,
    override_value,
    read_project,
    read_stack,
)
from stacks.config import PROJECT, ConfigError, StackConfig, parse_stack_config
from stacks.project import ROOT, project_name

# Pulumi's own stack names (sdk tokens.ParseStackName): letters, digits, "-", "_" and ".",
# 1 to 100 of them, so never a path.
_STACK_NAME_PATTERN = r"[A-Za-z0-9_.-]{1,100}"
_STACK_NAME = re.compile(_STACK_NAME_PATTERN)
_STACK_FILE = re.compile(rf"Pulumi\.({_STACK_NAME_PATTERN})\.yaml")


class StackFileError(ToolError):
    """A stack that has no file, or a file Pulumi itself would not read (exit 2)."""


def check_stack_name(stack: str, option: str = "--stack") -> str:
    """`stack` if it is a name `pulumi stack init` accepts; StackFileError if not."""
    if not _STACK_NAME.fullmatch(stack):
        raise StackFileError(
            f"{option} {stack[:40]!r} is not a stack name: 1 to 100 letters, digits, '-', '_' "
            "and '.'"
        )
    return stack


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


def project_values(text: str, name: str, project: str = PROJECT) -> dict[str, str]:
    """`project`'s keys that a stack file's text sets (namespace removed), as Pulumi reads
    them: the strings the program gets."""
    prefix = f"{project}:"
    try:
        values = read_stack(text, name, project)
    except PulumiConfigError as error:
        raise StackFileError(str(error)) from None
    return {k.removeprefix(prefix): v.text for k, v in values.items() if k.startswith(prefix)}


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
            f"{', '.join(stacks_in(root)) or 'none'}); create it with `pulumi stack init {stack}`"
        )
    return path


def engine_config(
    text: str, name: str, overrides: Mapping[str, str] | None = None, root: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """load_engine_config for a stack file's text (`name` is its file name, for messages)."""
    folder = root or ROOT
    project_path = folder / "Pulumi.yaml"
    try:
        project = read_project(read_stack_text(project_path))
        values = read_stack(text, name, project.name)
        for key, value in (overrides or {}).items():
            full = full_key(project.name, key)
            values[full] = override_value(project, full, value)
        merged = merged_config(project, values, stack_of_file(name.split()[0]) or name)
    except PulumiConfigError as error:
        raise StackFileError(str(error)) from None
    return merged.values, list(merged.secrets)


def parse_overrides(pairs: Sequence[str], root: Path | None = None) -> dict[str, str]:
    """`--set key=value` arguments -> config overrides, keys without the project's prefix."""
    prefix = f"{project_name(root or ROOT)}:"
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
