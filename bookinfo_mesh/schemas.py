"""Offline schema validation of rendered Kubernetes and Istio manifests.

Built-in kinds are checked with kubernetes-validate's strict schemas. *.istio.io kinds are
checked the way the API server checks a custom resource created with strict field validation,
against the structural schemas of the Istio minor whose CRDs the base chart installs, in
istio_schemas/<minor>.json (written by scripts/generate_istio_schemas.py): OpenAPI types,
enums, bounds, patterns and required fields; unknown fields (except under
x-kubernetes-preserve-unknown-fields and in maps); `metadata` as a strict ObjectMeta; and the
CRDs' CEL rules (x-kubernetes-validations), evaluated with cel-python.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

Segment = str | int
FieldPath = tuple[Segment, ...]
Schema = dict[str, Any]


@functools.cache
def _istio_document(minor: str) -> dict[str, Any]:
    """istio_schemas/<minor>.json: {"source": {release, ...}, "schemas": {apiVersion: {kind}}}."""
    folder = resources.files("bookinfo_mesh").joinpath("istio_schemas")
    try:
        text = folder.joinpath(f"{minor}.json").read_text("utf-8")
    except FileNotFoundError:
        known = sorted(p.name.removesuffix(".json") for p in folder.iterdir())
        raise ValueError(
            f"no Istio {minor} schemas; generated minors: {', '.join(known)}"
        ) from None
    document: dict[str, Any] = json.loads(text)
    return document


def istio_schema_source(version: str) -> str:
    """Where the schemas of a release's minor were read: "Istio 1.31.0 CRDs (istio.io/...)"."""
    source = _istio_document(istio_minor(version))["source"]
    return f"Istio {source['release']} CRDs ({source['module']} {source['moduleVersion']})"


def istio_minor(version: str) -> str:
    """The minor of an Istio release or minor: "1.31" for "1.31.2"."""
    return ".".join(version.split(".")[:2])


@dataclass(frozen=True)
class SchemaViolation:
    """One place where a manifest does not match its schema."""

    object_ref: str
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.object_ref}: {self.field}" if self.field else self.object_ref
        return f"{where}: {self.reason}"


def _object_ref(doc: Any, index: int) -> str:
    """E.g. "VirtualService bookinfo/reviews"; the index stands in for a name."""
    if not isinstance(doc, dict):
        return f"document #{index}"
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    kind = doc.get("kind") or "<no kind>"
    name = metadata.get("name") or f"#{index}"
    namespace = metadata.get("namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _join_field(parent: str, key: str | int) -> str:
    """Path syntax `a.b[0]`, odd keys quoted as `labels["a.io/b"]`."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if not re.fullmatch(r"[A-Za-z_][\w-]*", key):
        return f"{parent}[{json.dumps(key)}]"
    return f"{parent}.{key}" if parent else key


def _field(path: FieldPath) -> str:
    field = ""
    for key in path:
        field = _join_field(field, key)
    return field


def _path_order(path: FieldPath) -> tuple[tuple[int, int | str], ...]:
    """Sort key: segment by segment, indexes numerically and before keys, a prefix first."""
    return tuple((0, key) if isinstance(key, int) else (1, key) for key in path)


def _is_istio(api_version: str) -> bool:
    return api_version.partition("/")[0].endswith(".istio.io")


# ---- Kubernetes built-in kinds --------------------------------------------------------------

_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class _KubernetesSchemas:
    """Strict (unknown fields rejected) OpenAPI schemas of one Kubernetes minor."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        # jsonschema takes ~0.25 s to import, so only a validation run pays for it.
        from referencing import Registry, Resource

        self._id: str = definitions["$id"]
        self._registry = Registry().with_resource(self._id, Resource.from_contents(definitions))
        self._names = {
            (
                f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"],
                gvk["kind"],
            ): name
            for name, schema in definitions["$defs"].items()
            for gvk in schema.get("x-kubernetes-group-version-kind", [])
        }
        self.api_versions = frozenset(api_version for api_version, _ in self._names)
        self._validators: dict[str, Validator] = {}

    def validator(self, api_version: str, kind: str) -> Validator | None:
        name = self._names.get((api_version, kind))
        return None if name is None else self.definition(name)

    def definition(self, name: str) -> Validator:
        """The validator of one definition, e.g. ObjectMeta for a custom resource's metadata."""
        from jsonschema import Draft202012Validator

        if name not in self._validators:
            schema = {"$ref": f"{self._id}#/$defs/{name}"}
            self._validators[name] = Draft202012Validator(schema, registry=self._registry)
        return self._validators[name]


@functools.cache
def _kubernetes_schemas(minor: str) -> _KubernetesSchemas:
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    strict_dirs = {
        match[1]: entry
        for entry in root.iterdir()
        if (match := re.fullmatch(r"v(\d+\.\d+)\.\d+-local-strict", entry.name))
    }
    if minor not in strict_dirs:
        supported = ", ".join(sorted(strict_dirs, key=lambda v: tuple(map(int, v.split(".")))))
        raise ValueError(
            f"kubernetes-validate has no schemas for Kubernetes {minor}; it has {supported}"
        )
    return _KubernetesSchemas(json.loads((strict_dirs[minor] / "_definitions.json").read_text()))


def _kubernetes_error_paths(error: ValidationError) -> Iterator[tuple[FieldPath, str]]:
    """(path, reason) pairs for a jsonschema error."""
    path: FieldPath = tuple(error.absolute_path)
    if error.validator == "required":
        # The error does not name the missing key, so every missing key is derived here.
        for key in error.validator_value:
            if key not in error.instance:
                yield (*path, key), "is required"
    elif error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        for key in error.instance:
            if key not in known:
                yield (*path, key), "unknown field"
    elif error.validator == "type":
        types = (
            [error.validator_value]
            if isinstance(error.validator_value, str)
            else error.validator_value
        )
        yield path, "must be " + " or ".join(t for t in types if t != "null")
    elif error.validator == "enum":
        yield path, _one_of(error.validator_value)
    else:
        yield path, error.message


def _one_of(values: Sequence[Any]) -> str:
    return "must be one of " + ", ".join(json.dumps(v) for v in values)


def _kubernetes_violations(doc: dict[str, Any], minor: str) -> list[tuple[str, str]]:
    """(field, reason) pairs for one object of a built-in Kubernetes kind."""
    api_version, kind = doc["apiVersion"], doc["kind"]
    schemas = _kubernetes_schemas(minor)
    validator = schemas.validator(api_version, kind)
    if validator is not None:
        # dict.fromkeys: jsonschema repeats "required" once per missing key.
        fields = (
            (_field(path), reason)
            for error in validator.iter_errors(doc)
            for path, reason in _kubernetes_error_paths(error)
        )
        return list(dict.fromkeys(fields))
    if api_version in schemas.api_versions:
        return [("kind", f"no schema known for kind {kind} in {api_version}")]
    return [("apiVersion", f"no schema known for apiVersion {api_version}")]


# ---- Istio custom resources: the structural schema ------------------------------------------


class _Invalid:
    """What a walk returns for a value with an error that blocks CEL rules above it."""


_INVALID = _Invalid()

# Errors the API server treats as blocking CEL evaluation (type, enum, required, too long,
# too many) make a walk return _INVALID: no rule at or above them runs, as no rule may see a
# value of the wrong shape. Other errors (bounds, patterns, oneOf, unknown fields, which are
# pruned first) leave the value fit for the rules above.


def _is_integer(value: Any) -> bool:
    # Like the API server, an integral JSON number (1.0) is an integer.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


def _format_error(value: str, fmt: str) -> str | None:
    """The reason a string breaks a format the API server checks; None when it does not."""
    if fmt == "date-time":
        if _RFC3339.fullmatch(value):
            try:
                datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                return None
        return "must be an RFC 3339 date-time"
    if fmt == "byte":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return "must be base64-encoded bytes"
    # int32, int64, double: the API server checks no range for them, only the type.
    return None


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_json_equal, a, b))
    if _TYPE_CHECKS["number"](a) and _TYPE_CHECKS["number"](b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _oneof_reason(branches: list[Schema], value: Any) -> str:
    """The API server's oneOf message, plus which fields clash for Istio's "at most one" groups."""
    reason = "must validate one and only one schema (oneOf)"
    named = [b["required"] for b in branches if list(b) == ["required"]]
    optional = any(list(b) == ["not"] for b in branches)
    if isinstance(value, dict) and named and all(len(keys) == 1 for keys in named):
        keys = [keys[0] for keys in named]
        set_keys = [key for key in keys if key in value]
        wanted = "at most" if optional else "exactly"
        reason += f": set {wanted} one of {', '.join(keys)}"
        if set_keys:
            reason += f" (found {', '.join(set_keys)})"
    return reason


def _duplicates(items: list[Any], schema: Schema) -> Iterator[tuple[int, str]]:
    """(index, reason) of entries repeating an earlier one in a list-type set or map."""
    list_type = schema.get("x-kubernetes-list-type")
    seen: list[Any] = []
    for index, item in enumerate(items):
        if list_type == "map" and isinstance(item, dict):
            keys = schema.get("x-kubernetes-list-map-keys", [])
            identity: Any = {key: item.get(key) for key in keys}
            shown = ", ".join(f"{key}={json.dumps(item.get(key))}" for key in keys)
        elif list_type == "set":
            identity, shown = item, json.dumps(item)
        else:
            return
        if any(_json_equal(identity, earlier) for earlier in seen):
            yield index, f"duplicate entry: {shown}"
        seen.append(identity)


class _Walk:
    """One walk of a value along a structural schema, collecting (path, reason) pairs."""

    def __init__(self, *, strict: bool = True) -> None:
        # A strict walk is the schema itself: unknown fields and CEL rules count. A sub-schema
        # of allOf/anyOf/oneOf/not only adds value checks to fields the schema already has.
        self.strict = strict
        self.found: list[tuple[FieldPath, str]] = []

    def error(self, path: FieldPath, reason: str) -> None:
        self.found.append((path, reason))

    def value(self, value: Any, schema: Schema, path: FieldPath) -> Any:
        """Checks value; returns it with unknown fields pruned, or _INVALID (blocking error)."""
        if value is None and schema.get("nullable"):
            return None
        if schema.get("x-kubernetes-int-or-string"):
            if not (_is_integer(value) or isinstance(value, str)):
                self.error(path, "must be integer or string")
                return _INVALID
        elif "type" in schema and not _TYPE_CHECKS[schema["type"]](value):
            self.error(path, f"must be {schema['type']}")
            return _INVALID
        blocked = False
        if "enum" in schema and not any(_json_equal(value, e) for e in schema["enum"]):
            self.error(path, _one_of(schema["enum"]))
            blocked = True
        if isinstance(value, str):
            blocked |= self._string(value, schema, path)
        elif _TYPE_CHECKS["number"](value):
            self._number(value, schema, path)
        elif isinstance(value, list):
            checked, items_blocked = self._array(value, schema, path)
            blocked |= items_blocked
            # The sub-schemas see the pruned value, with what failed below as it was.
            self._combinators(
                [_either(c, v) for c, v in zip(checked, value, strict=True)], schema, path
            )
            value = checked
        elif isinstance(value, dict):
            checked, fields_blocked = self._object(value, schema, path)
            blocked |= fields_blocked
            self._combinators({k: _either(c, value[k]) for k, c in checked.items()}, schema, path)
            value = checked
        if not isinstance(value, list | dict):
            self._combinators(value, schema, path)
        if blocked:
            return _INVALID
        if self.strict and "x-kubernetes-validations" in schema:
            for rule in schema["x-kubernetes-validations"]:
                reason = _cel_violation(rule, value, schema, path)
                if reason is not None:
                    self.error(_rule_path(rule, path), reason)
        return value

    def _string(self, value: str, schema: Schema, path: FieldPath) -> bool:
        blocked = False
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.error(path, f"must be at most {schema['maxLength']} characters")
            blocked = True
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.error(path, f"must be at least {schema['minLength']} characters")
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            self.error(path, f"must match the pattern {schema['pattern']}")
        if "format" in schema and (reason := _format_error(value, schema["format"])):
            self.error(path, reason)
        return blocked

    def _number(self, value: float, schema: Schema, path: FieldPath) -> None:
        # OpenAPI v3.0: exclusiveMinimum/exclusiveMaximum are flags on minimum/maximum.
        if "minimum" in schema:
            low, exclusive = schema["minimum"], schema.get("exclusiveMinimum", False)
            if value < low or (exclusive and value == low):
                relation = "greater than" if exclusive else "greater than or equal to"
                self.error(path, f"must be {relation} {low}")
        if "maximum" in schema:
            high, exclusive = schema["maximum"], schema.get("exclusiveMaximum", False)
            if value > high or (exclusive and value == high):
                relation = "less than" if exclusive else "less than or equal to"
                self.error(path, f"must be {relation} {high}")
        if "multipleOf" in schema and (value / schema["multipleOf"]) % 1:
            self.error(path, f"must be a multiple of {schema['multipleOf']}")

    def _array(self, value: list[Any], schema: Schema, path: FieldPath) -> tuple[Any, bool]:
        blocked = False
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.error(path, f"must have at most {schema['maxItems']} items")
            blocked = True
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.error(path, f"must have at least {schema['minItems']} items")
        items = schema.get("items")
        if items is None:
            return value, blocked
        pruned = [self.value(item, items, (*path, i)) for i, item in enumerate(value)]
        for index, reason in _duplicates(value, schema):
            self.error((*path, index), reason)
        blocked |= any(item is _INVALID for item in pruned)
        return pruned, blocked

    def _object(self, value: dict[str, Any], schema: Schema, path: FieldPath) -> tuple[Any, bool]:
        blocked = False
        for key in schema.get("required", ()):
            if key not in value:
                self.error((*path, key), "is required")
                blocked = True
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            self.error(path, f"must have at most {schema['maxProperties']} properties")
            blocked = True
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            self.error(path, f"must have at least {schema['minProperties']} properties")
        properties: dict[str, Schema] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        pruned: dict[str, Any] = {}
        for key, child in value.items():
            known = properties.get(key, extra if isinstance(extra, dict) else None)
            if known is not None:
                # A property, or a map entry (labels, header names: any key, each value checked).
                if child is None and self.strict and not known.get("nullable"):
                    # The API server drops a null it may not keep (no default, not nullable).
                    continue
                pruned[key] = self.value(child, known, (*path, key))
            elif extra is True or preserve or not self.strict:
                pruned[key] = child
            elif self.strict:
                # Strict field validation; the API server prunes the field, so rules above never
                # see it, and its value is not walked.
                self.error((*path, key), "unknown field")
        blocked |= any(child is _INVALID for child in pruned.values())
        return pruned, blocked

    def _combinators(self, value: Any, schema: Schema, path: FieldPath) -> None:
        for sub in schema.get("allOf", ()):
            self.found.extend(self._quiet(value, sub, path))
        # x-kubernetes-int-or-string's anyOf [integer, string] is checked above, by name.
        if (
            "anyOf" in schema
            and not schema.get("x-kubernetes-int-or-string")
            and all(self._quiet(value, sub, path) for sub in schema["anyOf"])
        ):
            self.error(path, "must validate at least one schema (anyOf)")
        if "oneOf" in schema:
            passing = sum(not self._quiet(value, sub, path) for sub in schema["oneOf"])
            if passing != 1:
                self.error(path, _oneof_reason(schema["oneOf"], value))
        if "not" in schema and not self._quiet(value, schema["not"], path):
            self.error(path, "must not validate the schema (not)")

    def _quiet(self, value: Any, schema: Schema, path: FieldPath) -> list[tuple[FieldPath, str]]:
        """What value breaks in a value-validation sub-schema; [] when it passes."""
        walk = _Walk(strict=False)
        walk.value(value, schema, path)
        return walk.found


def _either(checked: Any, original: Any) -> Any:
    return original if checked is _INVALID else checked


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _rule_path(rule: Mapping[str, Any], path: FieldPath) -> FieldPath:
    """A rule's fieldPath (".a.b" relative to its node) when it has a simple one."""
    field_path = rule.get("fieldPath", "")
    if re.fullmatch(r"(?:\.[A-Za-z_]\w*)+", field_path):
        return (*path, *field_path.split(".")[1:])
    return path


def _root_schema(schema: Schema) -> Schema:
    """A CRD's schema with the fields every object has; metadata is checked as ObjectMeta."""
    return schema | {
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            **schema.get("properties", {}),
        }
    }


@functools.cache
def _istio_root(api_version: str, kind: str, minor: str) -> Schema | None:
    schema = _istio_document(minor)["schemas"].get(api_version, {}).get(kind)
    return None if schema is None else _root_schema(schema)


def _istio_violations(doc: dict[str, Any], minor: str, istio: str) -> list[tuple[FieldPath, str]]:
    """(path, reason) pairs for one *.istio.io object, sorted by path."""
    api_version, kind = doc["apiVersion"], doc["kind"]
    schemas = _istio_document(istio)["schemas"]
    if api_version not in schemas:
        return [(("apiVersion",), f"no Istio schema known for apiVersion {api_version}")]
    root = _istio_root(api_version, kind, istio)
    if root is None:
        return [(("kind",), f"no Istio schema known for kind {kind} in {api_version}")]
    walk = _Walk()
    walk.value(doc, root, ())
    if isinstance(doc.get("metadata"), dict):
        meta = _kubernetes_schemas(minor).definition(_OBJECT_META)
        for error in meta.iter_errors(doc["metadata"]):
            for path, reason in _kubernetes_error_paths(error):
                walk.error(("metadata", *path), reason)
    # Stable sort: on one path, schema errors stay before the rules' messages.
    return sorted(dict.fromkeys(walk.found), key=lambda found: _path_order(found[0]))


# ---- CEL rules ------------------------------------------------------------------------------

# cel-python's macros, handled by its evaluator rather than looked up as functions.
_CEL_MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter", "dyn"})
# Schema formats the API server gives CEL as another type (timestamp, bytes, duration); a rule
# on such a node would see a string here, so it is not evaluated.
_CEL_TYPED_FORMATS = frozenset({"byte", "date", "date-time", "datetime", "duration"})


class UnevaluableRule(NamedTuple):
    """A CRD's CEL rule this validator skips, and why."""

    kind_version: str
    path: str
    rule: str
    reason: str


# Rules cel-python raised a Python exception on (not a CEL error): rule text -> reason.
_crashed_rules: dict[str, str] = {}


class _CompiledRule(NamedTuple):
    program: Any  # celpy.Runner, or None when the rule cannot be evaluated
    problem: str  # why it cannot be; "" when it can


_GO_DURATION_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,  # U+00B5 micro sign
    "μs": 10**3,  # U+03BC Greek mu
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_GO_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")


def _go_duration_nanos(text: str) -> int | None:
    """Go's time.ParseDuration, which Kubernetes CEL's duration() uses; None where Go errors.

    cel-python's own duration() truncates to microseconds after summing floats, accepts a "d"
    unit Go does not, and rejects "µs", so rules such as `duration(self) >= duration('1ms')`
    need this one.
    """
    sign, rest = 1, text
    if rest[:1] in ("+", "-"):
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return 0
    if not rest:
        return None
    total, position = 0, 0
    while position < len(rest):
        part = _GO_DURATION_PART.match(rest, position)
        if part is None or not (part[1] or part[2]):
            return None
        unit = _GO_DURATION_UNITS[part[3]]
        fraction = part[2] or ""
        total += int(part[1] or "0") * unit
        if fraction:
            total += int(fraction) * unit // 10 ** len(fraction)
        position = part.end()
    return sign * total if total <= 2**63 - (sign > 0) else None


def _cel_extensions() -> dict[str, Callable[..., Any]]:
    """Kubernetes CEL functions cel-python lacks or gets wrong, with cel-go's semantics."""
    from celpy import celtypes
    from celpy.evaluation import CELEvalError

    def duration(value: Any) -> Any:
        if isinstance(value, celtypes.DurationType):
            return value
        if not isinstance(value, str):
            return CELEvalError(f"no such overload: duration({type(value).__name__})")
        nanos = _go_duration_nanos(str(value))
        if nanos is None:
            return CELEvalError(f"time: invalid duration {json.dumps(str(value))}")
        # timedelta holds microseconds: truncate toward zero, as a bound check then errs low.
        micros = nanos // 1000 if nanos >= 0 else -(-nanos // 1000)
        try:
            return celtypes.DurationType(datetime.timedelta(microseconds=micros))
        except (ValueError, OverflowError):
            return CELEvalError(f"duration out of range: {value}")

    def substring(text: Any, start: Any, end: Any = None) -> Any:
        # strings extension: indexes count code points; out-of-range is an error, not a clamp.
        if not isinstance(text, str) or not isinstance(start, int):
            return CELEvalError("no such overload: substring")
        stop = len(text) if end is None else end
        if not isinstance(stop, int):
            return CELEvalError("no such overload: substring")
        if start > stop:
            return CELEvalError(f"invalid substring range. start: {start}, end: {stop}")
        for index in (start, stop):
            if not 0 <= index <= len(text):
                return CELEvalError(f"index out of range: {index}")
        return celtypes.StringType(text[start:stop])

    def ascii_case(convert: Callable[[str], str]) -> Callable[[Any], Any]:
        def change(text: Any) -> Any:
            if not isinstance(text, str):
                return CELEvalError("no such overload")
            # Only ASCII letters change, unlike str.lower().
            return celtypes.StringType("".join(convert(c) if c.isascii() else c for c in str(text)))

        return change

    def is_url(text: Any) -> Any:
        if not isinstance(text, str):
            return CELEvalError("no such overload: isURL")
        return celtypes.BoolType(_parse_request_uri(str(text)) is not None)

    def url(text: Any) -> Any:
        if not isinstance(text, str):
            return CELEvalError("no such overload: url")
        parsed = _parse_request_uri(str(text))
        if parsed is None:
            return CELEvalError(f"URL parse error during conversion from string: {text}")
        return parsed

    def url_part(name: str) -> Callable[[Any], Any]:
        def part(value: Any) -> Any:
            if not isinstance(value, _URL):
                return CELEvalError(f"no such overload: {name}")
            return celtypes.StringType(getattr(value, name))

        return part

    return {
        "duration": duration,
        "substring": substring,
        "lowerAscii": ascii_case(str.lower),
        "upperAscii": ascii_case(str.upper),
        "isURL": is_url,
        "url": url,
        "getScheme": url_part("scheme"),
        "getHost": url_part("host"),
    }


class _URL(NamedTuple):
    """A Kubernetes CEL URL value: the parts its getScheme()/getHost() return."""

    scheme: str
    host: str


_HOST_PUNCTUATION = frozenset("!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_PUNCTUATION = frozenset("-._:~!$&'()*+,;=%@")


def _bad_escapes(text: str, *, host: bool = False) -> bool:
    """Whether Go's url.unescape rejects text (bad %XX; in a host, also disallowed ASCII)."""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%":
            escape = text[i + 1 : i + 3]
            if len(escape) < 2 or not all(h in "0123456789abcdefABCDEF" for h in escape):
                return True
            # RFC 3986: in a host only non-ASCII bytes are escaped, bar %25 (IPv6 zones).
            if host and int(escape[0], 16) < 8 and escape != "25":
                return True
            i += 3
            continue
        if host and c.isascii() and not c.isalnum() and c not in _HOST_PUNCTUATION:
            return True
        i += 1
    return False


def _parse_host(host: str) -> bool:
    """Whether Go's url.parseHost accepts host (an optional numeric port after the last ':')."""
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            return False
        port = host[close + 1 :]
    else:
        colon = host.rfind(":")
        port = host[colon:] if colon >= 0 else ""
    if port and not (port[0] == ":" and all(c in "0123456789" for c in port[1:])):
        return False
    return not _bad_escapes(host, host=True)


def _parse_request_uri(raw: str) -> _URL | None:
    """Go's url.ParseRequestURI, which Kubernetes CEL's isURL()/url() use; None where it errs."""
    if raw == "" or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return None
    if raw == "*":
        return _URL("", "")
    scheme, rest = "", raw
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                break
            continue
        if c == ":":
            if i == 0:
                return None  # missing protocol scheme
            scheme, rest = raw[:i].lower(), raw[i + 1 :]
        break
    # A lone trailing "?" is an empty query; otherwise the query starts at the first "?".
    rest = rest[:-1] if rest.endswith("?") and rest.count("?") == 1 else rest.partition("?")[0]
    if not rest.startswith("/"):
        # A rootless path after a scheme is opaque ("mailto:x"); without one, not a request URI.
        return _URL(scheme, "") if scheme else None
    host = ""
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        userinfo, at, host = authority.rpartition("@")
        if not _parse_host(host):
            return None
        if at and (
            any(
                not (c.isascii() and c.isalnum()) and c not in _USERINFO_PUNCTUATION
                for c in userinfo
            )
            or _bad_escapes(userinfo)
        ):
            return None
    if _bad_escapes(rest):
        return None
    return _URL(scheme, host)


def _cel_names(ast: Any) -> tuple[set[str], set[str]]:
    """(functions called, identifiers referenced) in a cel-python parse tree."""
    import lark

    functions: set[str] = set()
    identifiers: set[str] = set()
    for node in ast.iter_subtrees():
        for child in node.children:
            if not isinstance(child, lark.Token) or child.type != "IDENT":
                continue
            if node.data in ("ident_arg", "member_dot_arg", "dot_ident_arg"):
                functions.add(str(child))
            elif node.data == "ident":
                identifiers.add(str(child))
    return functions, identifiers


@functools.cache
def _cel_environment() -> tuple[Any, dict[str, Callable[..., Any]]]:
    import celpy

    return celpy.Environment(), _cel_extensions()


@functools.cache
def _compiled_rule(text: str) -> _CompiledRule:
    """A rule compiled once per process, or the reason it cannot be evaluated here."""
    from celpy.evaluation import base_functions

    environment, extensions = _cel_environment()
    try:
        ast = environment.compile(text)
    except Exception as error:  # noqa: BLE001 - any parser failure makes the rule unevaluable
        return _CompiledRule(None, f"cel-python cannot parse it: {type(error).__name__}")
    functions, identifiers = _cel_names(ast)
    if "oldSelf" in identifiers:
        return _CompiledRule(None, "transition rule (oldSelf): does not apply to a create")
    missing = sorted(functions - set(base_functions) - set(extensions) - _CEL_MACROS)
    if missing:
        return _CompiledRule(None, "cel-python lacks " + ", ".join(f"{name}()" for name in missing))
    return _CompiledRule(environment.program(ast, functions=extensions), "")


def _static_problem(rule: Mapping[str, Any], schema: Schema) -> str:
    if schema.get("format") in _CEL_TYPED_FORMATS:
        return f"self would be a CEL {schema['format']} value, not a string"
    return _compiled_rule(rule["rule"]).problem


def _to_cel(value: Any, schema: Schema) -> Any:
    """A JSON value as CEL sees it at a schema node (number fields are doubles, for one)."""
    from celpy import celtypes

    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int | float):
        if schema.get("type") == "number":
            return celtypes.DoubleType(value)
        return celtypes.IntType(int(value)) if _is_integer(value) else celtypes.DoubleType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, list):
        items = schema.get("items", {})
        return celtypes.ListType([_to_cel(item, items) for item in value])
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    return celtypes.MapType(
        {
            celtypes.StringType(key): _to_cel(
                child, properties.get(key, extra if isinstance(extra, dict) else {})
            )
            for key, child in value.items()
        }
    )


def _cel_error_text(error: Any) -> str:
    """The innermost message of a cel-python CELEvalError.

    Its args are (message, exception type, exception args), or just (message,); an error
    combined by && or || nests the first one in its message.
    """
    from celpy.evaluation import CELEvalError

    while True:
        args = getattr(error, "args", ())
        if len(args) >= 3 and args[2]:
            inner = args[2][0] if isinstance(args[2], tuple) else args[2]
        elif args:
            inner = args[0]
        else:
            return str(error)
        if isinstance(inner, CELEvalError):
            error = inner
            continue
        # && and || over two errors raise a TypeError that quotes both errors' reprs.
        quoted = re.search(
            r"CELEvalError\(\*\('[^']*', <class '[^']*'>, \((['\"])(.*?)\1,\)", str(inner)
        )
        return quoted[2] if quoted else str(inner)


def _cel_violation(
    rule: Mapping[str, Any], value: Any, schema: Schema, path: FieldPath
) -> str | None:
    """The reason `value` breaks one x-kubernetes-validations rule; None when it holds or is
    skipped (see unevaluable_cel_rules)."""
    if _static_problem(rule, schema):
        return None
    from celpy import celtypes
    from celpy.evaluation import CELEvalError

    message = str(rule.get("message") or rule["rule"]).strip()
    activation = {"self": _to_cel(value, schema)}
    try:
        result = _compiled_rule(rule["rule"]).program.evaluate(activation)
    except CELEvalError as error:
        result = error
    except Exception as error:  # noqa: BLE001 - a cel-python failure must not fail validation
        _crashed_rules[rule["rule"]] = f"cel-python raised {type(error).__name__} at {_field(path)}"
        return None
    if isinstance(result, CELEvalError):
        # The API server's wording for a rule that errs on this value (a bad duration string).
        return f"{_cel_error_text(result)} evaluating rule: {message}"
    if not isinstance(result, celtypes.BoolType):
        return f"rule did not evaluate to a bool: {message}"
    if result:
        return None
    if "messageExpression" in rule:
        compiled = _compiled_rule(rule["messageExpression"])
        if compiled.program is not None:
            try:
                text = compiled.program.evaluate(activation)
            except CELEvalError:
                text = None
            if isinstance(text, celtypes.StringType) and text.strip():
                return str(text).strip()
    return message


def _schema_rules(schema: Schema, path: str) -> Iterator[tuple[str, Schema, Mapping[str, Any]]]:
    """(path, node, rule) for every CEL rule in a schema; [*] an array item, {*} a map value."""
    for rule in schema.get("x-kubernetes-validations", ()):
        yield path or "<root>", schema, rule
    for key, child in schema.get("properties", {}).items():
        yield from _schema_rules(child, _join_field(path, key))
    if isinstance(schema.get("items"), dict):
        yield from _schema_rules(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _schema_rules(schema["additionalProperties"], f"{path}{{*}}")


def istio_cel_rule_count(minor: str) -> tuple[int, int]:
    """(rules evaluated, rules skipped) over every Istio schema, counting each placement."""
    skipped = len(unevaluable_cel_rules(minor))
    return len(_all_rules(minor)) - skipped, skipped


@functools.cache
def _all_rules(minor: str) -> tuple[UnevaluableRule, ...]:
    """Every Istio CEL rule placement as (kind/version, path, rule, static problem or "")."""
    return tuple(
        UnevaluableRule(
            f"{kind}/{api_version.partition('/')[2]}",
            path,
            rule["rule"],
            _static_problem(rule, node),
        )
        for api_version, kinds in _istio_document(minor)["schemas"].items()
        for kind, schema in kinds.items()
        for path, node, rule in _schema_rules(schema, "")
    )


@functools.cache
def _unevaluable(minor: str) -> tuple[UnevaluableRule, ...]:
    return tuple(sorted(rule for rule in _all_rules(minor) if rule.reason))


def unevaluable_cel_rules(minor: str) -> list[UnevaluableRule]:
    """The Istio CEL rules validation skips: (kind/version, path, rule, reason), sorted.

    cel-python cannot parse or lacks a function for them, or they are transition rules
    (oldSelf), which a create never triggers; after a validation, also rules cel-python
    crashed on (a library bug, not the value's fault). The API server still enforces them.
    """
    crashed = [
        UnevaluableRule(kind_version, path, rule, _crashed_rules[rule])
        for kind_version, path, rule, _ in _all_rules(minor)
        if rule in _crashed_rules
    ]
    return sorted([*_unevaluable(minor), *crashed])


# ---- Entry point ----------------------------------------------------------------------------


def _jsonable(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not plain JSON data; render the manifest first")


def validate_manifests(
    docs: Sequence[Mapping[str, Any]], kubernetes_version: str, istio_version: str
) -> list[SchemaViolation]:
    """Schema violations of rendered manifests in document order; [] when all are valid.

    Built-in kinds are checked with kubernetes-validate's strict schemas for
    `kubernetes_version` ("1.34"), *.istio.io kinds with the CRD schemas of the minor of
    `istio_version` (the release whose base chart installs the CRDs; their metadata as
    that Kubernetes version's ObjectMeta); any other apiVersion is itself a violation. An
    Istio object's violations come sorted by field path.
    """
    version = re.fullmatch(r"v?(\d+\.\d+)(?:\.\d+)?", kubernetes_version)
    if version is None:
        raise ValueError(f"kubernetes_version must look like '1.34', not {kubernetes_version!r}")
    minor = version[1]
    # A JSON round trip turns Mappings and tuples into the dicts and lists both expect.
    plain: list[Any] = json.loads(json.dumps(list(docs), default=_jsonable))
    violations: list[SchemaViolation] = []
    for index, doc in enumerate(plain):
        found: list[tuple[str, str]]
        if not isinstance(doc, dict):
            found = [("", "must be an object")]
        elif not isinstance(doc.get("apiVersion"), str) or not doc["apiVersion"]:
            found = [("apiVersion", "is required")]
        elif not isinstance(doc.get("kind"), str) or not doc["kind"]:
            found = [("kind", "is required")]
        elif _is_istio(doc["apiVersion"]):
            found = [
                (_field(path), reason)
                for path, reason in _istio_violations(doc, minor, istio_minor(istio_version))
            ]
        else:
            found = _kubernetes_violations(doc, minor)
        ref = _object_ref(doc, index)
        violations.extend(SchemaViolation(ref, field, reason) for field, reason in found)
    return violations
