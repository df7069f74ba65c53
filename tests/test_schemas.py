"""Tests for the offline Kubernetes + Istio schema validator in bookinfo_mesh.schemas."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bookinfo_mesh import schemas
from bookinfo_mesh.schemas import (
    ISTIO_SCHEMA_SOURCE,
    SchemaToolMissingError,
    SchemaViolation,
    validate_manifests,
)

KUBERNETES_VERSION = "1.34"
REPO_ROOT = Path(__file__).resolve().parent.parent


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "bookinfo", "labels": {"istio-injection": "enabled"}},
    }


def service_account() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "bookinfo-reviews", "namespace": "bookinfo"},
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "reviews",
            "namespace": "bookinfo",
            "labels": {"app": "reviews"},
        },
        "spec": {
            "selector": {"app": "reviews"},
            "ports": [{"name": "http", "port": 9080, "targetPort": 9080}],
        },
    }


def deployment() -> dict[str, Any]:
    labels = {"app": "reviews", "version": "v2"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "reviews-v2", "namespace": "bookinfo", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "bookinfo-reviews",
                    "containers": [
                        {
                            "name": "reviews",
                            "image": "istio/examples-bookinfo-reviews-v2:1.20.3",
                            "ports": [{"containerPort": 9080}],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        }
                    ],
                },
            },
        },
    }


def virtual_service() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {
            "hosts": ["reviews"],
            "http": [
                {
                    "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                    "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 100}}},
                    "route": [
                        {
                            "destination": {"host": "reviews", "subset": "v2"},
                            "weight": 100,
                        }
                    ],
                },
                {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]},
            ],
        },
    }


def destination_rule() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {
            "host": "reviews",
            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"}},
            ],
        },
    }


def gateway() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "bookinfo-gateway", "namespace": "bookinfo"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": 8080, "name": "http", "protocol": "HTTP"},
                    "hosts": ["*"],
                }
            ],
        },
    }


def peer_authentication() -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "istio-system"},
        "spec": {"mtls": {"mode": "STRICT"}},
    }


def rendered(violations: list[SchemaViolation]) -> str:
    return "\n".join(map(str, violations)) or "(none)"


def assert_only_violation(violations: list[SchemaViolation], expected: SchemaViolation) -> None:
    assert violations == [expected], f"expected only [{expected}], got:\n{rendered(violations)}"


def test_correct_kubernetes_objects_have_no_violations() -> None:
    violations = validate_manifests(
        [namespace(), service_account(), service(), deployment()], KUBERNETES_VERSION
    )
    assert violations == [], f"valid core objects were rejected:\n{rendered(violations)}"


def test_correct_istio_objects_have_no_violations() -> None:
    docs = [virtual_service(), destination_rule(), gateway(), peer_authentication()]
    violations = validate_manifests(docs, KUBERNETES_VERSION)
    assert violations == [], f"valid Istio objects were rejected:\n{rendered(violations)}"


def test_a_string_weight_is_reported_as_must_be_integer() -> None:
    vs = virtual_service()
    vs["spec"]["http"][0]["route"][0]["weight"] = "x"
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION),
        SchemaViolation(
            "VirtualService bookinfo/reviews",
            "spec.http[0].route[0].weight",
            "must be integer",
        ),
    )


def test_a_string_replica_count_is_reported_as_must_be_integer() -> None:
    deploy = deployment()
    deploy["spec"]["replicas"] = "two"
    assert_only_violation(
        validate_manifests([deploy], KUBERNETES_VERSION),
        SchemaViolation("Deployment bookinfo/reviews-v2", "spec.replicas", "must be integer"),
    )


def test_a_missing_required_kubernetes_field_is_reported_at_its_path() -> None:
    deploy = deployment()
    del deploy["spec"]["template"]["spec"]["containers"][0]["name"]
    assert_only_violation(
        validate_manifests([deploy], KUBERNETES_VERSION),
        SchemaViolation(
            "Deployment bookinfo/reviews-v2",
            "spec.template.spec.containers[0].name",
            "is required",
        ),
    )


def test_a_missing_required_istio_field_is_reported_at_its_path() -> None:
    vs = virtual_service()
    del vs["spec"]["http"][1]["route"][0]["destination"]["host"]
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION),
        SchemaViolation(
            "VirtualService bookinfo/reviews",
            "spec.http[1].route[0].destination.host",
            "is required",
        ),
    )


def test_an_unknown_field_in_a_kubernetes_kind_is_reported() -> None:
    svc = service()
    svc["spec"]["ports"][0]["targetPortt"] = 9080
    assert_only_violation(
        validate_manifests([svc], KUBERNETES_VERSION),
        SchemaViolation("Service bookinfo/reviews", "spec.ports[0].targetPortt", "unknown field"),
    )


def test_an_unknown_field_in_a_virtual_service_http_rule_is_reported() -> None:
    # The Istio CRD schemas have no additionalProperties, so this comes from the models' .d.ts.
    vs = virtual_service()
    vs["spec"]["http"][0]["routee"] = vs["spec"]["http"][0].pop("route")
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION),
        SchemaViolation("VirtualService bookinfo/reviews", "spec.http[0].routee", "unknown field"),
    )


def test_an_unknown_field_in_a_route_destination_is_reported() -> None:
    vs = virtual_service()
    vs["spec"]["http"][1]["route"][0]["destination"]["subsett"] = "v1"
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION),
        SchemaViolation(
            "VirtualService bookinfo/reviews",
            "spec.http[1].route[0].destination.subsett",
            "unknown field",
        ),
    )


def test_an_unknown_field_in_a_destination_rule_subset_is_reported() -> None:
    dr = destination_rule()
    dr["spec"]["subsets"][1]["lables"] = dr["spec"]["subsets"][1].pop("labels")
    assert_only_violation(
        validate_manifests([dr], KUBERNETES_VERSION),
        SchemaViolation(
            "DestinationRule bookinfo/reviews", "spec.subsets[1].lables", "unknown field"
        ),
    )


def test_an_unknown_field_in_a_gateway_server_is_reported() -> None:
    gw = gateway()
    gw["spec"]["servers"][0]["host"] = ["bookinfo.example.com"]
    assert_only_violation(
        validate_manifests([gw], KUBERNETES_VERSION),
        SchemaViolation(
            "Gateway bookinfo/bookinfo-gateway", "spec.servers[0].host", "unknown field"
        ),
    )


def test_unknown_fields_are_found_at_the_top_in_metadata_and_in_peer_authentication() -> None:
    pa = peer_authentication()
    # An unknown field is reported once: its value is not walked.
    pa["specc"] = {"mtls": {"mode": "STRICT"}}
    # metadata is checked against the IObjectMeta that the models import.
    pa["metadata"]["lables"] = {"app": "mesh"}
    pa["spec"]["mtls"]["modee"] = "STRICT"
    violations = validate_manifests([pa], KUBERNETES_VERSION)
    assert violations == [
        SchemaViolation("PeerAuthentication istio-system/default", field, "unknown field")
        for field in ("metadata.lables", "spec.mtls.modee", "specc")
    ], f"unexpected violations:\n{rendered(violations)}"


def test_header_match_names_are_map_keys_not_fields() -> None:
    vs = virtual_service()
    headers = vs["spec"]["http"][0]["match"][0]["headers"]
    headers["x-request-id"] = {"prefix": "abc"}
    headers["x.odd/header name"] = {"regex": ".*"}
    violations = validate_manifests([vs], KUBERNETES_VERSION)
    assert violations == [], f"header names were taken for fields:\n{rendered(violations)}"


def test_a_typo_inside_a_header_match_is_reported_under_the_header_name() -> None:
    vs = virtual_service()
    vs["spec"]["http"][0]["match"][0]["headers"]["end-user"] = {"exakt": "jason"}
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION),
        SchemaViolation(
            "VirtualService bookinfo/reviews",
            "spec.http[0].match[0].headers.end-user.exakt",
            "unknown field",
        ),
    )


def test_label_and_selector_keys_are_map_keys_not_fields() -> None:
    dr = destination_rule()
    dr["spec"]["subsets"][0]["labels"]["app.kubernetes.io/version"] = "v1"
    dr["metadata"]["labels"] = {"app.kubernetes.io/part-of": "bookinfo"}
    dr["metadata"]["annotations"] = {"example.com/owner": "mesh team"}
    gw = gateway()
    gw["spec"]["selector"]["topology.istio.io/network"] = "net1"
    violations = validate_manifests([dr, gw], KUBERNETES_VERSION)
    assert violations == [], f"map keys were taken for fields:\n{rendered(violations)}"


def test_istio_violations_of_both_kinds_come_sorted_by_field_path() -> None:
    vs = virtual_service()
    vs["spec"]["http"][1]["route"][0]["weight"] = "x"
    vs["spec"]["http"][0]["route"][0]["destination"]["subsett"] = "v2"
    vs["spec"]["http"][1]["timeoutt"] = "1s"
    violations = validate_manifests([vs], KUBERNETES_VERSION)
    assert [(v.field, v.reason) for v in violations] == [
        ("spec.http[0].route[0].destination.subsett", "unknown field"),
        ("spec.http[1].route[0].weight", "must be integer"),
        ("spec.http[1].timeoutt", "unknown field"),
    ], f"unexpected violations or order:\n{rendered(violations)}"


def test_an_invalid_enum_value_in_an_istio_kind_is_reported() -> None:
    pa = peer_authentication()
    pa["spec"]["mtls"]["mode"] = "STRICTLY"
    violations = validate_manifests([pa], KUBERNETES_VERSION)
    assert [(v.object_ref, v.field) for v in violations] == [
        ("PeerAuthentication istio-system/default", "spec.mtls.mode")
    ], f"expected one violation at spec.mtls.mode, got:\n{rendered(violations)}"


def test_a_bogus_kubernetes_kind_is_reported_on_the_kind_field() -> None:
    svc = service() | {"kind": "Servise"}
    assert_only_violation(
        validate_manifests([svc], KUBERNETES_VERSION),
        SchemaViolation(
            "Servise bookinfo/reviews", "kind", "no schema known for kind Servise in v1"
        ),
    )


def test_a_bogus_istio_kind_is_reported_on_the_kind_field() -> None:
    vs = virtual_service() | {"kind": "VirtualServise"}
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION),
        SchemaViolation(
            "VirtualServise bookinfo/reviews",
            "kind",
            "no Istio schema known for kind VirtualServise in networking.istio.io/v1",
        ),
    )


def test_an_unknown_api_version_is_reported_as_having_no_schema() -> None:
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "bookinfo"},
    }
    assert_only_violation(
        validate_manifests([widget], KUBERNETES_VERSION),
        SchemaViolation(
            "Widget bookinfo/w",
            "apiVersion",
            "no schema known for apiVersion example.com/v1",
        ),
    )


def test_an_unknown_istio_version_is_reported_as_having_no_schema() -> None:
    gw = gateway() | {"apiVersion": "networking.istio.io/v9"}
    assert_only_violation(
        validate_manifests([gw], KUBERNETES_VERSION),
        SchemaViolation(
            "Gateway bookinfo/bookinfo-gateway",
            "apiVersion",
            "no Istio schema known for apiVersion networking.istio.io/v9",
        ),
    )


def test_violations_come_back_in_document_order_across_both_validators() -> None:
    bad_vs = virtual_service()
    bad_vs["spec"]["http"][0]["route"][0]["weight"] = "x"
    bad_svc = service()
    bad_svc["spec"]["ports"][0]["port"] = "http"
    bad_gw = gateway()
    bad_gw["spec"]["servers"][0]["port"]["number"] = "80"
    docs = [bad_vs, namespace(), bad_svc, destination_rule(), bad_gw]
    refs = [v.object_ref for v in validate_manifests(docs, KUBERNETES_VERSION)]
    assert refs == [
        "VirtualService bookinfo/reviews",
        "Service bookinfo/reviews",
        "Gateway bookinfo/bookinfo-gateway",
    ], f"violations out of document order: {refs}"


def test_a_violation_reads_as_object_field_and_reason() -> None:
    violation = SchemaViolation(
        "VirtualService bookinfo/reviews",
        "spec.http[0].route[0].weight",
        "must be integer",
    )
    expected = "VirtualService bookinfo/reviews: spec.http[0].route[0].weight: must be integer"
    assert str(violation) == expected, f"str() gave {violation}"
    assert str(SchemaViolation("Widget w", "", "bad")) == "Widget w: bad", (
        "an empty field must not leave ': :'"
    )


def test_keys_with_dots_and_slashes_are_quoted_in_the_field_path() -> None:
    ns = namespace()
    ns["metadata"]["labels"]["app.kubernetes.io/part-of"] = 1
    assert_only_violation(
        validate_manifests([ns], KUBERNETES_VERSION),
        SchemaViolation(
            "Namespace bookinfo",
            'metadata.labels["app.kubernetes.io/part-of"]',
            "must be string",
        ),
    )


def test_an_unsupported_kubernetes_version_is_refused_with_the_supported_list() -> None:
    with pytest.raises(ValueError, match=r"no schemas for Kubernetes 1\.20;.*1\.34"):
        validate_manifests([namespace()], "1.20")


def test_missing_node_raises_schema_tool_missing_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schemas.shutil, "which", lambda _name: None)
    with pytest.raises(SchemaToolMissingError, match=r"npm ci --prefix tools/istio-schemas"):
        validate_manifests([gateway()], KUBERNETES_VERSION)


def test_kubernetes_only_batches_do_not_need_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schemas.shutil, "which", lambda _name: None)
    assert validate_manifests([namespace()], KUBERNETES_VERSION) == [], (
        "a core-only batch must not call node"
    )


def test_the_istio_schema_source_names_the_locked_package_and_istio_version() -> None:
    lock = json.loads((REPO_ROOT / "tools/istio-schemas/package-lock.json").read_text())
    locked = lock["packages"]["node_modules/@kubernetes-models/istio"]["version"]
    assert (
        f"npm @kubernetes-models/istio {locked} (generated from Istio 1.29.2 CRDs)"
        == ISTIO_SCHEMA_SOURCE
    )


def test_importing_the_module_loads_neither_jsonschema_nor_node() -> None:
    code = (
        "import sys, bookinfo_mesh.schemas;"
        "print('jsonschema' in sys.modules, 'kubernetes_validate' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["False", "False"], (
        f"import is not cheap: {result.stdout}{result.stderr}"
    )


# ---- The fields-tree cache of validate.mjs ----------------------------------------------------

TOOL_DIR = REPO_ROOT / "tools" / "istio-schemas"
VALIDATE_MJS = TOOL_DIR / "validate.mjs"
V1_MODELS = [
    *(
        f"networking.istio.io/v1/{kind}"
        for kind in (
            "DestinationRule",
            "Gateway",
            "ServiceEntry",
            "Sidecar",
            "VirtualService",
            "WorkloadEntry",
            "WorkloadGroup",
        )
    ),
    *(
        f"security.istio.io/v1/{kind}"
        for kind in ("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication")
    ),
]


def run_validate_mjs(
    docs: list[Any], *args: str, node_args: Sequence[str] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """validate.mjs run directly, with extra environment variables; it must succeed."""
    node = shutil.which("node")
    assert node is not None, "node is not on PATH"
    result = subprocess.run(
        [node, *node_args, str(VALIDATE_MJS), *args],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | env,
    )
    assert result.returncode == 0, f"validate.mjs {' '.join(args)} failed:\n{result.stderr}"
    return result


def raw_violations(docs: list[Any], **env: str) -> list[dict[str, Any]]:
    return list(json.loads(run_validate_mjs(docs, **env).stdout))


def cache_files(cache_dir: Path) -> dict[str, Path]:
    """The cached trees under cache_dir by model ("networking.istio.io/v1/Gateway")."""
    return {
        str(path.relative_to(key_dir).with_suffix("")): path
        for key_dir in cache_dir.iterdir()
        for path in key_dir.rglob("*.json")
    }


def objects_with_unknown_fields() -> list[Any]:
    """Valid and invalid Istio objects, unknown fields from the top down to 8 levels deep."""
    vs = virtual_service()
    vs["specc"] = {}
    vs["metadata"]["lables"] = {"app": "reviews"}
    vs["metadata"]["managedFields"] = [
        {"manager": "kubectl", "fieldsV1": {"f:spec": {}}, "managr": "x"}  # fieldsV1 is open
    ]
    vs["metadata"]["ownerReferences"] = [{"kind": "X", "name": "x", "uid": "1", "kindd": "X"}]
    http = vs["spec"]["http"][0]
    http["routee"] = []
    http["match"][0]["headers"]["end-user"]["exakt"] = "jason"
    http["match"][0]["headers"]["x.odd/name"] = {"prefix": "a"}  # a map key, not a field
    http["fault"]["delay"]["percentage"]["valu"] = 1
    http["route"][0]["destination"]["port"] = {"number": 9080, "numbr": 9080}
    vs["spec"]["http"][1]["route"][0]["headers"] = {"request": {"add": {"x": "1"}, "sett": {}}}

    dr = destination_rule()
    dr["spec"]["trafficPolicy"]["loadBalancer"] = {
        # consistentHash is an intersection of unions with Exclude<> in the declarations.
        "consistentHash": {"httpCookie": {"name": "c", "ttl": "0s", "ttll": "1s"}, "ringHahs": {}},
    }
    dr["spec"]["trafficPolicy"]["connectionPool"] = {"tcp": {"tcpKeepalive": {"probs": 3}}}
    dr["spec"]["subsets"][0]["trafficPolicy"] = {
        "portLevelSettings": [{"port": {"number": 80, "numbr": 80}, "tls": {"modee": "x"}}]
    }
    dr["spec"]["subsets"][1]["labels"]["app.kubernetes.io/any"] = "v2"

    gw = gateway()
    gw["spec"]["servers"][0]["tls"] = {"mode": "SIMPLE", "modee": "SIMPLE"}
    gw["spec"]["servers"][0]["port"]["nmber"] = 1
    gw["spec"]["selector"]["any.key/at-all"] = "x"

    pa = peer_authentication()
    pa["spec"]["portLevelMtls"] = {"8080": {"mode": "DISABLE", "modee": "x"}}
    pa["spec"]["selector"] = {"matchLabels": {"app": "x"}, "matchLabelz": {}}

    authz = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow", "namespace": "bookinfo"},
        "spec": {
            "rules": [
                {
                    "from": [{"source": {"principals": ["a"], "principalz": ["b"]}}],
                    "when": [{"key": "request.auth.claims[iss]", "valuez": ["x"]}],
                }
            ],
        },
    }
    # Wrong JSON types are left to ajv: an object where an array belongs is not walked.
    wrong_types = virtual_service()
    wrong_types["spec"]["http"] = {"routee": 1}
    wrong_types["spec"]["hosts"] = [{"anything": 1}]
    return [vs, dr, gw, pa, authz, wrong_types, service(), virtual_service() | {"kind": "Nope"}]


EXPECTED_UNKNOWN_FIELDS = [
    (0, "metadata.lables"),
    (0, "metadata.managedFields[0].managr"),
    (0, "metadata.ownerReferences[0].kindd"),
    (0, "spec.http[0].fault.delay.percentage.valu"),
    (0, "spec.http[0].match[0].headers.end-user.exakt"),
    (0, "spec.http[0].route[0].destination.port.numbr"),
    (0, "spec.http[0].routee"),
    (0, "spec.http[1].route[0].headers.request.sett"),
    (0, "specc"),
    (1, "spec.subsets[0].trafficPolicy.portLevelSettings[0].port.numbr"),
    (1, "spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.modee"),
    (1, "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.probs"),
    (1, "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttll"),
    (1, "spec.trafficPolicy.loadBalancer.consistentHash.ringHahs"),
    (2, "spec.servers[0].port.nmber"),
    (2, "spec.servers[0].tls.modee"),
    (3, 'spec.portLevelMtls["8080"].modee'),
    (3, "spec.selector.matchLabelz"),
    (4, "spec.rules[0].from[0].source.principalz"),
    (4, "spec.rules[0].when[0].valuez"),
]


def unknown_fields(violations: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(v["index"], v["field"]) for v in violations if v["reason"] == "unknown field"]


@pytest.fixture(scope="module")
def reference() -> list[dict[str, Any]]:
    """Violations of objects_with_unknown_fields() found by walking the declarations, no cache."""
    return raw_violations(objects_with_unknown_fields(), ISTIO_FIELDS_CACHE="off")


@pytest.fixture(scope="module")
def seeded_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding the trees of objects_with_unknown_fields(); tests change copies of it."""
    cache_dir = tmp_path_factory.mktemp("seeded-cache")
    raw_violations(objects_with_unknown_fields(), ISTIO_FIELDS_CACHE_DIR=str(cache_dir))
    return cache_dir


def test_cached_fields_trees_find_exactly_what_walking_the_declarations_finds(
    tmp_path: Path, reference: list[dict[str, Any]]
) -> None:
    docs = objects_with_unknown_fields()
    assert unknown_fields(reference) == EXPECTED_UNKNOWN_FIELDS, (
        f"the declarations walk itself changed: {unknown_fields(reference)}"
    )
    derived = raw_violations(docs, ISTIO_FIELDS_CACHE_DIR=str(tmp_path))
    files = cache_files(tmp_path)
    assert set(files) == {
        "networking.istio.io/v1/VirtualService",
        "networking.istio.io/v1/DestinationRule",
        "networking.istio.io/v1/Gateway",
        "security.istio.io/v1/PeerAuthentication",
        "security.istio.io/v1/AuthorizationPolicy",
    }, f"unexpected cache files: {sorted(files)}"
    inodes = {model: path.stat().st_ino for model, path in files.items()}
    cached = raw_violations(docs, ISTIO_FIELDS_CACHE_DIR=str(tmp_path))
    assert {model: path.stat().st_ino for model, path in cache_files(tmp_path).items()} == inodes, (
        "the second run rewrote cache files instead of reading them"
    )
    assert derived == reference, "trees derived in this run disagree with the declarations walk"
    assert cached == reference, "trees read from the cache disagree with the declarations walk"


TYPESCRIPT_PROBE = """
const Module = require("node:module");
const load = Module._load;
let loaded = false;
Module._load = function (request, ...rest) {
  if (request === "typescript") loaded = true;
  return load.call(this, request, ...rest);
};
process.on("exit", () => process.stderr.write(`typescript loaded: ${loaded}\\n`));
"""


def test_warm_caches_every_v1_model_keyed_by_versions_and_spares_typescript(
    tmp_path: Path,
) -> None:
    cache_dir = tmp_path / "cache"
    warm = run_validate_mjs([], "--warm", ISTIO_FIELDS_CACHE_DIR=str(cache_dir))
    assert str(cache_dir) in warm.stdout, f"--warm did not say where: {warm.stdout}"
    missing = set(V1_MODELS) - set(cache_files(cache_dir))
    assert not missing, f"--warm did not cache {sorted(missing)}"

    def version(package: str) -> str:
        manifest = TOOL_DIR / "node_modules" / package / "package.json"
        return str(json.loads(manifest.read_text())["version"])

    versions = (
        f"istio-{version('@kubernetes-models/istio')}"
        f"_apimachinery-{version('@kubernetes-models/apimachinery')}"
        f"_typescript-{version('typescript')}_"
    )
    key_dirs = [path.name for path in cache_dir.iterdir()]
    assert len(key_dirs) == 1, f"expected one cache key, got {key_dirs}"
    assert key_dirs[0].startswith(versions), f"cache key {key_dirs[0]} lacks {versions}"

    probe = tmp_path / "probe.cjs"
    probe.write_text(TYPESCRIPT_PROBE)
    docs = [virtual_service(), destination_rule(), gateway(), peer_authentication()]
    for env, loads in (
        ({"ISTIO_FIELDS_CACHE_DIR": str(cache_dir)}, False),
        ({"ISTIO_FIELDS_CACHE_DIR": str(tmp_path / "empty")}, True),
        ({"ISTIO_FIELDS_CACHE": "off"}, True),
    ):
        result = run_validate_mjs(docs, node_args=["--require", str(probe)], **env)
        assert json.loads(result.stdout) == [], f"valid objects were rejected: {result.stdout}"
        assert f"typescript loaded: {str(loads).lower()}" in result.stderr, (
            f"with {env} expected TypeScript loaded={loads}: {result.stderr}"
        )


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "empty", "body edited", "another model's tree", "another key"],
)
def test_a_damaged_cache_file_is_rebuilt_not_trusted(
    tmp_path: Path, damage: str, seeded_cache: Path, reference: list[dict[str, Any]]
) -> None:
    cache_dir = tmp_path / "cache"
    shutil.copytree(seeded_cache, cache_dir)
    files = cache_files(cache_dir)
    target = files["networking.istio.io/v1/VirtualService"]
    good = target.read_text()
    header, body = good.split("\n", 1)
    if damage == "garbage":
        target.write_bytes(b"\x00\xff not json {{{")
    elif damage == "truncated":
        target.write_text(good[: len(good) // 2])
    elif damage == "empty":
        target.write_text("")
    elif damage == "body edited":
        # A tree that allows anything, behind the header of the real one.
        target.write_text(header + "\n" + json.dumps({"root": 0, "nodes": [{}]}))
    elif damage == "another model's tree":
        # Intact in itself, but a Gateway's tree would reject every VirtualService field.
        target.write_text(files["networking.istio.io/v1/Gateway"].read_text())
    else:
        meta = json.loads(header) | {"key": "istio-0.0.0_apimachinery-0.0.0_typescript-0.0.0"}
        target.write_text(json.dumps(meta) + "\n" + body)
    docs = objects_with_unknown_fields()
    assert raw_violations(docs, ISTIO_FIELDS_CACHE_DIR=str(cache_dir)) == reference, (
        f"a cache file with {damage} changed the violations"
    )
    assert target.read_text() == good, f"a cache file with {damage} was not rebuilt"
    leftovers = [path.name for path in cache_dir.rglob("*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_an_unwritable_cache_dir_means_deriving_in_memory(
    tmp_path: Path, reference: list[dict[str, Any]]
) -> None:
    docs = objects_with_unknown_fields()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    unwritable = raw_violations(docs, ISTIO_FIELDS_CACHE_DIR=str(blocker / "cache"))
    assert unwritable == reference, "an unwritable cache directory changed the violations"
    node = shutil.which("node")
    assert node is not None
    warm = subprocess.run(
        [node, str(VALIDATE_MJS), "--warm"],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"ISTIO_FIELDS_CACHE_DIR": str(blocker / "cache")},
    )
    assert warm.returncode == 1, "--warm must fail when it cannot write the cache"
    assert "could not cache" in warm.stderr, warm.stderr


def test_concurrent_first_runs_share_one_cache_safely(
    tmp_path: Path, reference: list[dict[str, Any]]
) -> None:
    docs = objects_with_unknown_fields()
    node = shutil.which("node")
    assert node is not None
    env = os.environ | {"ISTIO_FIELDS_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.Popen(
            [node, str(VALIDATE_MJS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(json.dumps(docs)) for run in runs]
    for run, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr
        assert json.loads(stdout) == reference, "a concurrent run disagreed"
    assert raw_violations(docs, ISTIO_FIELDS_CACHE_DIR=str(tmp_path)) == reference
    leftovers = [path.name for path in tmp_path.rglob("*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
