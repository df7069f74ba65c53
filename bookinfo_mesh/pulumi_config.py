"""Pulumi's merge of Pulumi.yaml's declarations with a stack file: the strings a program gets.

Each step follows the Pulumi CLI (sdk v3.272.0: workspace/loaders.go, workspace/project.go,
resource/config; pkg v3.274.1: workspace/config.go, mergeConfig), and
tests/data/pulumi_stack_config.json holds the answers of Pulumi's own code for each case.
Secure values cannot be decrypted offline: they read SECRET_PLACEHOLDER, and their declared
type is not checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from bookinfo_mesh.pulumi_yaml import PulumiYamlError, check_encodable, config_string, go_json, load

SECRET_PLACEHOLDER = "[secret]"
BOM = "\ufeff"  # a UTF-8 byte order mark: Pulumi strips one before a file
_TYPES = ("string", "integer", "boolean", "array", "object")


class PulumiConfigError(ValueError):
    """A project or stack file that Pulumi refuses, with the reason in Pulumi's words."""


def _go_atoi(text: str) -> bool:
    """strconv.Atoi accepts it: an optional sign and ASCII digits, within 64 bits."""
    digits = text[1:] if text[:1] in "+-" else text
    if not (0 < len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        return False
    return -(2**63) <= int(text) < 2**63


@dataclass(frozen=True)
class ConfigType:
    """A declared `type:` (with `items:` for an array), as project.go checks values against it."""

    name: str
    items: ConfigType | None = None

    @property
    def full_name(self) -> str:
        """InferFullTypeName: "array<string>" for an array of strings."""
        return f"array<{self.items.full_name}>" if self.items else self.name

    def accepts(self, value: Any) -> bool:
        """ValidateConfigValue: integers may be whole floats or digit strings, booleans "true"."""
        if self.name == "string":
            return isinstance(value, str)
        if self.name == "integer":
            if isinstance(value, bool):
                return False
            if isinstance(value, int):
                return True
            if isinstance(value, float):
                return value.is_integer()
            return isinstance(value, str) and _go_atoi(value)
        if self.name == "boolean":
            return isinstance(value, bool) or value in ("true", "false")
        if self.name == "object":
            return isinstance(value, dict)
        if not isinstance(value, list) or self.items is None:
            return False
        return all(self.items.accepts(item) for item in value)


@dataclass(frozen=True)
class Declaration:
    """One key of Pulumi.yaml's `config:` block."""

    key: str  # as written: `mode`, or a namespaced `aws:region`
    type: ConfigType | None
    default: Any  # None when there is none (Pulumi reads `default: null` as none too)
    value: Any
    secret: bool


@dataclass(frozen=True)
class PulumiProject:
    name: str
    declarations: tuple[Declaration, ...]


@dataclass(frozen=True)
class StackValue:
    """A stack file's value as config.Value holds it: its string, and whether it is secure."""

    text: str
    secure: bool
    is_object: bool


@dataclass(frozen=True)
class EngineConfig:
    """Full key ("project:name") -> the string the program gets, and the keys that are secret."""

    values: dict[str, str]
    secrets: tuple[str, ...]


def _document(text: str, name: str) -> Any:
    try:
        return load(text.removeprefix(BOM))
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise PulumiConfigError(f"{name} is not valid YAML{line}: {problem}") from None
    except PulumiYamlError as error:
        raise PulumiConfigError(f"{name}: {error}") from None
    except RecursionError:
        raise PulumiConfigError(f"{name} nests deeper than a YAML parser can follow") from None


def _config_type(spec: Any, key: str) -> ConfigType:
    """`type:` and `items:` of a declaration (or of an `items:`), checked as project.json does."""
    name = spec.get("type") if isinstance(spec, dict) else None
    if name not in _TYPES:
        raise PulumiConfigError(
            f"Pulumi.yaml: config key '{key}' has type {name!r}; Pulumi's types are "
            f"{', '.join(_TYPES)}"
        )
    items = spec.get("items")
    return ConfigType(name, _config_type(items, key) if items is not None else None)


def _declaration(project_name: str, key: Any, spec: Any) -> Declaration:
    if not isinstance(key, str):
        raise PulumiConfigError(f"Pulumi.yaml: config key {key!r} is not a string")
    in_project = ":" not in key or key.startswith(f"{project_name}:")
    if not isinstance(spec, dict):  # shorthand: `key: value`
        spec = {"default": spec} if in_project else {"value": spec}
    declared = _config_type(spec, key) if "type" in spec else None
    declaration = Declaration(
        key, declared, spec.get("default"), spec.get("value"), spec.get("secret") is True
    )
    if declaration.default is not None and declaration.value is not None:
        raise PulumiConfigError(
            f"project config '{key}' cannot have both a 'default' and 'value' attribute"
        )
    if not in_project:
        if declared is not None:
            raise PulumiConfigError(
                f"Configuration key '{key}' is not namespaced by the project and should not "
                "define a type"
            )
        if declaration.default is not None:
            raise PulumiConfigError(
                f"Configuration key '{key}' is not namespaced by the project and should not "
                "define a default value. Did you mean to use the 'value' attribute instead of "
                "'default'?"
            )
        if declaration.value is None:
            raise PulumiConfigError(
                f"Configuration key '{key}' is namespaced and must provide an attribute 'value'"
            )
    elif declared is not None:
        if declared.name == "array" and declared.items is None:
            raise PulumiConfigError(
                f"The configuration key '{key}' declares an array but does not specify the "
                "underlying type via the 'items' attribute"
            )
        if declaration.default is not None and not declared.accepts(declaration.default):
            raise PulumiConfigError(
                f"The default value specified for configuration key '{key}' is not of the "
                f"expected type '{declared.full_name}'"
            )
    return declaration


# Parsed once per text: a run of the program reads both files, and YAML parsing in Python
# was a seventh of a run.
@lru_cache(maxsize=32)
def read_project(text: str) -> PulumiProject:
    """Pulumi.yaml's name and `config:` declarations; PulumiConfigError where Pulumi refuses."""
    document = _document(text, "Pulumi.yaml")
    if not isinstance(document, dict):
        raise PulumiConfigError("Pulumi.yaml must be a mapping with `name:` and `runtime:`")
    name = document.get("name")
    if not name or not isinstance(name, str):
        raise PulumiConfigError("Pulumi.yaml: project is missing a 'name' attribute")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise PulumiConfigError("Pulumi.yaml: `config:` must map keys to declarations")
    declarations = tuple(_declaration(name, key, spec) for key, spec in config.items())
    return PulumiProject(name, declarations)


def full_key(project_name: str, key: str) -> str:
    """config.ParseKey after the project's namespace is added to a bare key."""
    if ":" not in key:
        return f"{project_name}:{key}"
    parts = key.split(":")
    if len(parts) == 2:
        return key
    if len(parts) == 3 and parts[1] == "config" and parts[0] and parts[2]:
        return f"{parts[0]}:{parts[2]}"  # the old `<namespace>:config:<name>` form
    raise PulumiConfigError(
        f"could not parse {key} as a configuration key (configuration keys should be of the "
        "form `<namespace>:<name>`)"
    )


def _blinded(value: Any) -> tuple[Any, bool]:
    """`value` with every `{secure: "..."}` inside it read as the placeholder, and if any was."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("secure"), str):
            return SECRET_PLACEHOLDER, True
        items = {config_string(k): _blinded(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        items_ = [_blinded(v) for v in value]
        return [v for v, _ in items_], any(s for _, s in items_)
    return value, False


def stack_value(value: Any) -> StackValue:
    """A stack file's YAML value as Pulumi turns it into config.Value (MarshalString)."""
    check_encodable(value)
    blinded, secure = _blinded(value)
    return StackValue(config_string(blinded), secure, isinstance(blinded, (dict, list)))


def read_stack(text: str, name: str, project_name: str) -> dict[str, StackValue]:
    """A stack file's `config:` as full key -> value; PulumiConfigError where Pulumi refuses.

    A key written both bare and with the project's namespace is refused: Pulumi keeps one of
    the two at random (it walks a Go map), so the file means nothing certain.
    """
    return dict(_stack_values(text, name, project_name))


@lru_cache(maxsize=32)
def _stack_values(text: str, name: str, project_name: str) -> tuple[tuple[str, StackValue], ...]:
    document = _document(text, name)
    if document is None:
        return ()
    if not isinstance(document, dict):
        raise PulumiConfigError(
            f"{name} must be a mapping with a `config:` key, not a {type(document).__name__}"
        )
    config = document.get("config")
    if config is None:
        return ()
    if not isinstance(config, dict):
        raise PulumiConfigError(
            f"{name}: `config:` must map keys to values, not be a {type(config).__name__}"
        )
    values: dict[str, StackValue] = {}
    written: dict[str, str] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            shown = config_string(key)
            raise PulumiConfigError(
                f"{name}: could not parse {shown} as a configuration key (configuration keys "
                "should be of the form `<namespace>:<name>`; quote it to make it text)"
            )
        full = full_key(project_name, key)
        if full in written:
            raise PulumiConfigError(
                f"{name} sets {full} twice, as `{written[full]}` and as `{key}`; Pulumi would "
                "keep one of them at random: delete the other"
            )
        written[full] = key
        try:
            values[full] = stack_value(value)
        except PulumiYamlError as error:
            raise PulumiConfigError(f"{name}: {key}: {error}") from None
    return tuple(values.items())


def override_value(project: PulumiProject, key: str, text: str) -> StackValue:
    """`pulumi config set KEY TEXT`, or `--json` where the key is declared an array or object.

    The JSON is Pulumi's to read then: an array key given text that is no JSON array is
    refused by the declared-type check, as `pulumi up` refuses it.
    """
    declared = next(
        (d.type for d in project.declarations if full_key(project.name, d.key) == key), None
    )
    if declared is not None and declared.name in ("array", "object"):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, (list, dict)):
            return StackValue(go_json(parsed), secure=False, is_object=True)
    return StackValue(text, secure=False, is_object=False)


def _default_value(value: Any) -> StackValue:
    """createConfigValue: strings, integers and booleans as Go's %v, anything else as JSON."""
    if isinstance(value, (str, int)):  # bool is an int here too
        return StackValue(config_string(value), secure=False, is_object=False)
    return StackValue(go_json(value), secure=False, is_object=True)


def _missing(keys: list[str], stack: str) -> str:
    quoted = [f"'{key}'" for key in sorted(keys)]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
    return f"Stack '{stack}' is missing configuration value{'s' if len(keys) > 1 else ''} {listed}"


def merged_config(
    project: PulumiProject, values: Mapping[str, StackValue], stack: str
) -> EngineConfig:
    """mergeConfig with validation: defaults filled in, then each declared type checked.

    Every problem is reported at once, in Pulumi's words, in the order Pulumi checks them.
    """
    merged = dict(values)
    missing = []
    for declaration in sorted(project.declarations, key=lambda d: d.key):
        key = full_key(project.name, declaration.key)
        if key in merged:
            continue
        given = declaration.value if declaration.default is None else declaration.default
        if given is not None:
            merged[key] = _default_value(given)
        elif key.startswith(f"{project.name}:"):
            missing.append(declaration.key)
    if missing:
        raise PulumiConfigError(_missing(missing, stack))
    problems = []
    for declaration in sorted(project.declarations, key=lambda d: d.key):
        value = merged.get(full_key(project.name, declaration.key))
        if declaration.type is None or value is None:
            continue
        if declaration.secret and not value.secure:
            problems.append(
                f"Stack '{stack}' with configuration key '{declaration.key}' must be encrypted "
                "as it's secret"
            )
        elif not value.secure and not declaration.type.accepts(_content(value)):
            problems.append(
                f"Stack '{stack}' with configuration key '{declaration.key}' must be of type "
                f"'{declaration.type.full_name}', not {_shown(value.text)}"
            )
    if problems:
        raise PulumiConfigError("; ".join(problems))
    secrets = tuple(sorted(key for key, value in merged.items() if value.secure))
    return EngineConfig({key: value.text for key, value in merged.items()}, secrets)


def _shown(text: str) -> str:
    """A value quoted for a one-line message, cut short when long."""
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _content(value: StackValue) -> Any:
    """What validateStackConfigValue checks: the string, or for an object its JSON, decoded."""
    return json.loads(value.text) if value.is_object else value.text
