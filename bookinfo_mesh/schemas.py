"""Offline schema validation of rendered Kubernetes and Istio manifests."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

_TOOL_DIR = Path(__file__).resolve().parent.parent / "tools" / "istio-schemas"
_ISTIO_PACKAGE = "@kubernetes-models/istio"
_INSTALLED_MANIFEST = _TOOL_DIR / "node_modules" / _ISTIO_PACKAGE / "package.json"
_INSTALL_HINT = "run `make` or `npm ci --prefix tools/istio-schemas --no-audit --no-fund`"


def _locked_istio_package_version() -> str:
    lock = json.loads((_TOOL_DIR / "package-lock.json").read_text())
    return str(lock["packages"][f"node_modules/{_ISTIO_PACKAGE}"]["version"])


def _istio_schema_source() -> str:
    # Both files are committed, so this works before `npm ci`; each pin is written once.
    manifest = json.loads((_TOOL_DIR / "package.json").read_text())
    package = f"{_ISTIO_PACKAGE} {_locked_istio_package_version()}"
    istio = manifest["config"]["istioVersion"]
    return f"npm {package} (generated from Istio {istio} CRDs)"


ISTIO_SCHEMA_SOURCE: str = _istio_schema_source()


class SchemaToolMissingError(RuntimeError):
    """Node.js or the installed Istio models needed for Istio validation are missing."""


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
    """validate.mjs's path syntax: `a.b[0]`, odd keys quoted as `labels["a.io/b"]`."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if not re.fullmatch(r"[A-Za-z_][\w-]*", key):
        return f"{parent}[{json.dumps(key)}]"
    return f"{parent}.{key}" if parent else key


def _is_istio(api_version: str) -> bool:
    return api_version.partition("/")[0].endswith(".istio.io")


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
        from jsonschema import Draft202012Validator

        name = self._names.get((api_version, kind))
        if name is None:
            return None
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


def _kubernetes_error_fields(error: ValidationError) -> Iterator[tuple[str, str]]:
    """(field, reason) pairs for a jsonschema error, worded like validate.mjs's."""
    field = ""
    for key in error.absolute_path:
        field = _join_field(field, key)
    if error.validator == "required":
        # The error does not name the missing key, so every missing key is derived here.
        for key in error.validator_value:
            if key not in error.instance:
                yield _join_field(field, key), "is required"
    elif error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        for key in error.instance:
            if key not in known:
                yield _join_field(field, key), "unknown field"
    elif error.validator == "type":
        types = (
            [error.validator_value]
            if isinstance(error.validator_value, str)
            else error.validator_value
        )
        yield field, "must be " + " or ".join(t for t in types if t != "null")
    elif error.validator == "enum":
        yield (
            field,
            "must be one of " + ", ".join(json.dumps(v) for v in error.validator_value),
        )
    else:
        yield field, error.message


def _jsonable(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not plain JSON data; render the manifest first")


def _run_istio_validator(docs: list[Any]) -> list[dict[str, Any]]:
    """Violations {index, field, reason} from one validate.mjs run for the batch."""
    if not docs:
        return []
    node = shutil.which("node")
    if node is None:
        raise SchemaToolMissingError(
            f"node is not on PATH; install Node.js 20+, then {_INSTALL_HINT}"
        )
    if not _INSTALLED_MANIFEST.is_file():
        raise SchemaToolMissingError(
            f"{_ISTIO_PACKAGE} is not installed in {_TOOL_DIR}; {_INSTALL_HINT}"
        )
    installed = json.loads(_INSTALLED_MANIFEST.read_text())["version"]
    locked = _locked_istio_package_version()
    if installed != locked:
        raise SchemaToolMissingError(
            f"{_ISTIO_PACKAGE} {installed} is installed but the lock pins {locked}; {_INSTALL_HINT}"
        )
    result = subprocess.run(
        [node, str(_TOOL_DIR / "validate.mjs")],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"validate.mjs failed with exit code {result.returncode}:\n{result.stderr}"
        )
    return list(json.loads(result.stdout))


def _kubernetes_violations(doc: dict[str, Any], minor: str) -> list[tuple[str, str]]:
    """(field, reason) pairs for one object of a built-in Kubernetes kind."""
    api_version, kind = doc["apiVersion"], doc["kind"]
    schemas = _kubernetes_schemas(minor)
    validator = schemas.validator(api_version, kind)
    if validator is not None:
        # dict.fromkeys: jsonschema repeats "required" once per missing key.
        fields = (f for e in validator.iter_errors(doc) for f in _kubernetes_error_fields(e))
        return list(dict.fromkeys(fields))
    if api_version in schemas.api_versions:
        return [("kind", f"no schema known for kind {kind} in {api_version}")]
    return [("apiVersion", f"no schema known for apiVersion {api_version}")]


def validate_manifests(
    docs: Sequence[Mapping[str, Any]], kubernetes_version: str
) -> list[SchemaViolation]:
    """Schema violations of rendered manifests in document order; [] when all are valid.

    Built-in kinds are checked with kubernetes-validate's strict schemas for
    `kubernetes_version` ("1.34"), *.istio.io kinds with the Istio CRD models named by
    ISTIO_SCHEMA_SOURCE; any other apiVersion is itself a violation.
    """
    version = re.fullmatch(r"v?(\d+\.\d+)(?:\.\d+)?", kubernetes_version)
    if version is None:
        raise ValueError(f"kubernetes_version must look like '1.34', not {kubernetes_version!r}")
    # A JSON round trip turns Mappings and tuples into the dicts and lists both expect.
    plain: list[Any] = json.loads(json.dumps(list(docs), default=_jsonable))
    found: list[list[tuple[str, str]]] = [[] for _ in plain]
    istio_indexes: list[int] = []
    kubernetes_indexes: list[int] = []
    for index, doc in enumerate(plain):
        if not isinstance(doc, dict):
            found[index].append(("", "must be an object"))
            continue
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not api_version:
            found[index].append(("apiVersion", "is required"))
        elif not isinstance(kind, str) or not kind:
            found[index].append(("kind", "is required"))
        elif _is_istio(api_version):
            istio_indexes.append(index)
        else:
            kubernetes_indexes.append(index)
    # Node starts in a thread while Python checks the built-in kinds: the two together
    # take as long as the slower one, which keeps render close to import time.
    with ThreadPoolExecutor(max_workers=1) as pool:
        istio = pool.submit(_run_istio_validator, [plain[i] for i in istio_indexes])
        for index in kubernetes_indexes:
            found[index] = _kubernetes_violations(plain[index], version[1])
        for violation in istio.result():
            found[istio_indexes[violation["index"]]].append(
                (violation["field"], violation["reason"])
            )
    return [
        SchemaViolation(_object_ref(doc, index), field, reason)
        for index, doc in enumerate(plain)
        for field, reason in found[index]
    ]
