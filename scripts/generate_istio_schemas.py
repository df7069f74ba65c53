"""Compacts Istio's crd-all.gen.yaml into bookinfo_mesh/istio_schemas.json.

Usage (crd-all.gen.yaml read from an istio/istio checkout at the release tag):

    git --git-dir=<istio.git> show 1.30.3:manifests/charts/base/files/crd-all.gen.yaml > crds.yaml
    python scripts/generate_istio_schemas.py crds.yaml --tag 1.30.3 \\
        --commit 56df41f63e513f834c9a3af33d8aed82d1d961f2 --out bookinfo_mesh/istio_schemas.json

Only what structural validation needs is kept; descriptions go. The output is a pure function
of the input and the arguments (sorted keys, no indent), so regenerating gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

SOURCE_PATH = "manifests/charts/base/files/crd-all.gen.yaml"
GENERATOR = "scripts/generate_istio_schemas.py"
REPOSITORY = "istio/istio"

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


def generate(crds: Iterable[Any], tag: str, commit: str) -> str:
    """The JSON text of istio_schemas.json for the CRD documents of crd-all.gen.yaml."""
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
            "commit": commit,
            "generator": GENERATOR,
            "path": SOURCE_PATH,
            "repository": REPOSITORY,
            "tag": tag,
        },
        "schemas": _sorted(schemas),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crds", type=Path, help=f"the release's {SOURCE_PATH}")
    parser.add_argument("--tag", required=True, help="Istio release tag, e.g. 1.30.3")
    parser.add_argument("--commit", required=True, help="the 40-hex commit the tag points to")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{40}", args.commit):
        parser.error(f"--commit must be 40 lowercase hex digits, not {args.commit!r}")
    with args.crds.open(encoding="utf-8") as stream:
        crds = list(yaml.load_all(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    args.out.write_text(generate(crds, args.tag, args.commit), encoding="utf-8")


if __name__ == "__main__":
    main()
