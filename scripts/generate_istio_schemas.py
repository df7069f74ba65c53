"""Compacts a release's crd-all.gen.yaml into bookinfo_mesh/istio_schemas/<minor>.json.

Usage, for a minor of model.istio_releases.ISTIO_MINORS (needs `go` and the Go module proxy,
which serves istio.io/istio at the release as the module version recorded there):

    .venv/bin/python scripts/generate_istio_schemas.py 1.31

Only what structural validation needs is kept; descriptions go. The output is a pure function
of the input and the arguments (sorted keys, no indent), so regenerating gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from model.istio_releases import ISTIO_MINORS

SOURCE_PATH = "manifests/charts/base/files/crd-all.gen.yaml"
GENERATOR = "scripts/generate_istio_schemas.py"
MODULE = "istio.io/istio"
OUT_DIR = Path(__file__).resolve().parent.parent / "bookinfo_mesh" / "istio_schemas"

# Keywords whose value is a schema, or a list or a map of schemas.
_SCHEMA_KEYWORDS = frozenset({"items", "not", "additionalProperties"})
_SCHEMA_LIST_KEYWORDS = frozenset({"oneOf", "anyOf", "allOf"})
_VALUE_KEYWORDS = frozenset(
    {
        "type",
        "required",
        "enum",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "nullable",
    }
)
# Documentation only: dropped without a word. Anything else dropped is reported on stderr,
# so a new keyword in a later Istio release (a `default`, say) is not lost silently.
_DOC_KEYWORDS = frozenset({"description", "title", "example", "externalDocs"})


def compact_schema(schema: dict[str, Any], dropped: set[str]) -> dict[str, Any]:
    """The validation-relevant part of one OpenAPI v3 schema node, recursively."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: compact_schema(sub, dropped) for name, sub in value.items()}
        elif key in _SCHEMA_KEYWORDS:
            out[key] = compact_schema(value, dropped) if isinstance(value, dict) else value
        elif key in _SCHEMA_LIST_KEYWORDS:
            out[key] = [compact_schema(sub, dropped) for sub in value]
        elif key in _VALUE_KEYWORDS or key.startswith("x-kubernetes-"):
            out[key] = value
        elif key not in _DOC_KEYWORDS:
            dropped.add(key)
    return out


def _sorted(value: Any) -> Any:
    """value with every mapping's keys sorted, so the JSON text is deterministic."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def generate(crds: Iterable[Any], release: str, module_version: str) -> str:
    """The JSON text of a minor's schemas file for the CRD documents of crd-all.gen.yaml."""
    schemas: dict[str, dict[str, Any]] = {}
    dropped: set[str] = set()
    for crd in crds:
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        kind = spec["names"]["kind"]
        for version in spec["versions"]:
            # A version that is not served cannot be created, so it needs no schema.
            if not version.get("served", False):
                continue
            api_version = f"{spec['group']}/{version['name']}"
            schema = version["schema"]["openAPIV3Schema"]
            schemas.setdefault(api_version, {})[kind] = compact_schema(schema, dropped)
    if not schemas:
        raise ValueError("no served CustomResourceDefinition versions in the input")
    if dropped:
        print(f"{GENERATOR}: dropped keywords {sorted(dropped)}", file=sys.stderr)
    # The provenance stays first (json.dumps keeps insertion order; everything below is sorted).
    document = {
        "source": {
            "generator": GENERATOR,
            "module": MODULE,
            "moduleVersion": module_version,
            "path": SOURCE_PATH,
            "release": release,
        },
        "schemas": _sorted(schemas),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n"


def module_dir(module_version: str) -> Path:
    """The folder of istio.io/istio at `module_version` in Go's module cache (downloaded)."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{module_version}"],
        capture_output=True,
        text=True,
        check=False,
    )
    found = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Dir" not in found:
        raise SystemExit(
            f"go mod download {MODULE}@{module_version}: {found.get('Error', done.stderr)}"
        )
    return Path(found["Dir"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("minor", choices=sorted(ISTIO_MINORS), help="Istio minor, e.g. 1.31")
    args = parser.parse_args(argv)
    minor = ISTIO_MINORS[args.minor]
    crds_file = module_dir(minor.module_version) / SOURCE_PATH
    with crds_file.open(encoding="utf-8") as stream:
        crds = list(yaml.load_all(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    OUT_DIR.mkdir(exist_ok=True)
    out = OUT_DIR / f"{minor.minor}.json"
    out.write_text(generate(crds, minor.files_read_at, minor.module_version), encoding="utf-8")
    print(f"wrote {out.relative_to(OUT_DIR.parent.parent)}")


if __name__ == "__main__":
    main()
