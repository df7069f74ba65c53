"""Offline checks of rendered manifests: built-in kinds by their schemas, Istio's by istioctl.

Built-in kinds are checked with kubernetes-validate's strict schemas (unknown fields refused).
*.istio.io kinds are checked by `istioctl validate` of the Istio minor whose base chart installs
the CRDs: Istio's own validation, which istiod's webhook runs on a cluster, where a CRD's
schema alone would let much through. Without that istioctl (`make tools` obtains it), Istio's
objects go unchecked here and the check says so; `pulumi preview`'s server-side dry run and the
suite's real tools still judge them.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from stacks.project import ROOT

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

Segment = str | int
FieldPath = tuple[Segment, ...]
TOOLS_BIN = ROOT / ".tools" / "bin"
# `istioctl validate` names each refused object as "\t* Kind/namespace/name: reason".
_ISTIOCTL_ERROR = re.compile(
    r"^\t\* (?P<kind>\w+)/(?:(?P<namespace>[^/:]+)/)?(?P<name>[^/:]+): (?P<reason>.*)$"
)


def istioctl_name(minor: str) -> str:
    """The name `make tools` links istioctl of an Istio minor under in .tools/bin."""
    return f"istioctl-{minor}"


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


@dataclass(frozen=True)
class Validation:
    """What the checks found, and what they could not check."""

    violations: list[SchemaViolation]
    unchecked: str | None = None  # why Istio's objects were not checked, if they were not


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


# ---- Istio kinds: istioctl validate -----------------------------------------------------------


@functools.cache
def find_istioctl(minor: str) -> Path | None:
    """istioctl of `minor`: the one `make tools` linked, else one on PATH of that minor."""
    linked = TOOLS_BIN / istioctl_name(minor)
    if linked.exists():
        return linked
    found = shutil.which("istioctl")
    if found is None:
        return None
    done = subprocess.run(
        [found, "version", "--remote=false", "--short"], capture_output=True, text=True, check=False
    )
    printed = done.stdout.split()
    return Path(found) if printed and istio_minor(printed[-1]) == minor else None


def _istioctl_violations(istioctl: Path, docs: list[dict[str, Any]]) -> list[SchemaViolation]:
    """What `istioctl validate` refuses among `docs`, one violation per refused object."""
    with tempfile.TemporaryDirectory() as scratch:
        file = Path(scratch) / "istio.yaml"
        file.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        done = subprocess.run(
            [str(istioctl), "validate", "-f", str(file)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode == 0:
        return []
    found = [m for line in done.stderr.splitlines() if (m := _ISTIOCTL_ERROR.match(line))]
    if not found:
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return [SchemaViolation("istioctl validate", "", reason[0])]
    return [
        SchemaViolation(
            f"{m['kind']} {m['namespace']}/{m['name']}"
            if m["namespace"]
            else f"{m['kind']} {m['name']}",
            "",
            m["reason"],
        )
        for m in found
    ]


def _jsonable(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not plain JSON data; render the manifest first")


def validate_manifests(
    docs: Sequence[Mapping[str, Any]], kubernetes_version: str, istio_version: str
) -> Validation:
    """The violations of rendered manifests, built-in kinds first in document order, then the
    Istio objects istioctl of `istio_version`'s minor refuses; any other apiVersion is itself
    a violation."""
    version = re.fullmatch(r"v?(\d+\.\d+)(?:\.\d+)?", kubernetes_version)
    if version is None:
        raise ValueError(f"kubernetes_version must look like '1.34', not {kubernetes_version!r}")
    minor = version[1]
    # A JSON round trip turns Mappings and tuples into the dicts and lists both expect.
    plain: list[Any] = json.loads(json.dumps(list(docs), default=_jsonable))
    violations: list[SchemaViolation] = []
    istio: list[dict[str, Any]] = []
    for index, doc in enumerate(plain):
        found: list[tuple[str, str]]
        if not isinstance(doc, dict):
            found = [("", "must be an object")]
        elif not isinstance(doc.get("apiVersion"), str) or not doc["apiVersion"]:
            found = [("apiVersion", "is required")]
        elif not isinstance(doc.get("kind"), str) or not doc["kind"]:
            found = [("kind", "is required")]
        elif _is_istio(doc["apiVersion"]):
            istio.append(doc)
            found = []
        else:
            found = _kubernetes_violations(doc, minor)
        ref = _object_ref(doc, index)
        violations.extend(SchemaViolation(ref, field, reason) for field, reason in found)
    if not istio:
        return Validation(violations)
    istio_minor_ = istio_minor(istio_version)
    istioctl = find_istioctl(istio_minor_)
    if istioctl is None:
        why = (
            f"Istio's objects were not checked: no istioctl {istio_minor_} in .tools/bin or on "
            "PATH (`make tools` obtains it)"
        )
        return Validation(violations, unchecked=why)
    return Validation(violations + _istioctl_violations(istioctl, istio))
