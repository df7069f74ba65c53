"""Tests for the offline Kubernetes + Istio schema validator in bookinfo_mesh.schemas."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from bookinfo_mesh import schemas
from bookinfo_mesh.schemas import (
    SchemaViolation,
    istio_schema_source,
    unevaluable_cel_rules,
    validate_manifests,
)
from model.istio_releases import ISTIO_MINORS

KUBERNETES_VERSION = "1.34"
# The cases below were written against the 1.30 CRDs (identical at 1.30.3 and 1.30.4).
ISTIO = "1.30"
REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = REPO_ROOT / "bookinfo_mesh" / "istio_schemas"
SCHEMAS_JSON = SCHEMAS_DIR / f"{ISTIO}.json"


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
        [namespace(), service_account(), service(), deployment()], KUBERNETES_VERSION, ISTIO
    )
    assert violations == [], f"valid core objects were rejected:\n{rendered(violations)}"


def test_correct_istio_objects_have_no_violations() -> None:
    docs = [virtual_service(), destination_rule(), gateway(), peer_authentication()]
    violations = validate_manifests(docs, KUBERNETES_VERSION, ISTIO)
    assert violations == [], f"valid Istio objects were rejected:\n{rendered(violations)}"


def test_a_string_weight_is_reported_as_must_be_integer() -> None:
    vs = virtual_service()
    vs["spec"]["http"][0]["route"][0]["weight"] = "x"
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION, ISTIO),
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
        validate_manifests([deploy], KUBERNETES_VERSION, ISTIO),
        SchemaViolation("Deployment bookinfo/reviews-v2", "spec.replicas", "must be integer"),
    )


def test_a_missing_required_kubernetes_field_is_reported_at_its_path() -> None:
    deploy = deployment()
    del deploy["spec"]["template"]["spec"]["containers"][0]["name"]
    assert_only_violation(
        validate_manifests([deploy], KUBERNETES_VERSION, ISTIO),
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
        validate_manifests([vs], KUBERNETES_VERSION, ISTIO),
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
        validate_manifests([svc], KUBERNETES_VERSION, ISTIO),
        SchemaViolation("Service bookinfo/reviews", "spec.ports[0].targetPortt", "unknown field"),
    )


def test_an_unknown_field_in_a_virtual_service_http_rule_is_reported() -> None:
    # Strict field validation: a CRD schema without additionalProperties rejects other keys.
    vs = virtual_service()
    vs["spec"]["http"][0]["routee"] = vs["spec"]["http"][0].pop("route")
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION, ISTIO),
        SchemaViolation("VirtualService bookinfo/reviews", "spec.http[0].routee", "unknown field"),
    )


def test_an_unknown_field_in_a_route_destination_is_reported() -> None:
    vs = virtual_service()
    vs["spec"]["http"][1]["route"][0]["destination"]["subsett"] = "v1"
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION, ISTIO),
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
        validate_manifests([dr], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "DestinationRule bookinfo/reviews", "spec.subsets[1].lables", "unknown field"
        ),
    )


def test_an_unknown_field_in_a_gateway_server_is_reported() -> None:
    gw = gateway()
    gw["spec"]["servers"][0]["host"] = ["bookinfo.example.com"]
    assert_only_violation(
        validate_manifests([gw], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "Gateway bookinfo/bookinfo-gateway", "spec.servers[0].host", "unknown field"
        ),
    )


def test_unknown_fields_are_found_at_the_top_in_metadata_and_in_peer_authentication() -> None:
    pa = peer_authentication()
    # An unknown field is reported once: its value is not walked.
    pa["specc"] = {"mtls": {"mode": "STRICT"}}
    # metadata is checked as the strict ObjectMeta of the Kubernetes version.
    pa["metadata"]["lables"] = {"app": "mesh"}
    pa["spec"]["mtls"]["modee"] = "STRICT"
    violations = validate_manifests([pa], KUBERNETES_VERSION, ISTIO)
    assert violations == [
        SchemaViolation("PeerAuthentication istio-system/default", field, "unknown field")
        for field in ("metadata.lables", "spec.mtls.modee", "specc")
    ], f"unexpected violations:\n{rendered(violations)}"


def test_header_match_names_are_map_keys_not_fields() -> None:
    vs = virtual_service()
    headers = vs["spec"]["http"][0]["match"][0]["headers"]
    headers["x-request-id"] = {"prefix": "abc"}
    headers["x.odd/header name"] = {"regex": ".*"}
    violations = validate_manifests([vs], KUBERNETES_VERSION, ISTIO)
    assert violations == [], f"header names were taken for fields:\n{rendered(violations)}"


def test_a_typo_inside_a_header_match_is_reported_under_the_header_name() -> None:
    vs = virtual_service()
    vs["spec"]["http"][0]["match"][0]["headers"]["end-user"] = {"exakt": "jason"}
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION, ISTIO),
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
    violations = validate_manifests([dr, gw], KUBERNETES_VERSION, ISTIO)
    assert violations == [], f"map keys were taken for fields:\n{rendered(violations)}"


def test_istio_violations_of_both_kinds_come_sorted_by_field_path() -> None:
    vs = virtual_service()
    vs["spec"]["http"][1]["route"][0]["weight"] = "x"
    vs["spec"]["http"][0]["route"][0]["destination"]["subsett"] = "v2"
    vs["spec"]["http"][1]["timeoutt"] = "1s"
    violations = validate_manifests([vs], KUBERNETES_VERSION, ISTIO)
    assert [(v.field, v.reason) for v in violations] == [
        ("spec.http[0].route[0].destination.subsett", "unknown field"),
        ("spec.http[1].route[0].weight", "must be integer"),
        ("spec.http[1].timeoutt", "unknown field"),
    ], f"unexpected violations or order:\n{rendered(violations)}"


def test_an_invalid_enum_value_in_an_istio_kind_is_reported() -> None:
    pa = peer_authentication()
    pa["spec"]["mtls"]["mode"] = "STRICTLY"
    violations = validate_manifests([pa], KUBERNETES_VERSION, ISTIO)
    assert [(v.object_ref, v.field) for v in violations] == [
        ("PeerAuthentication istio-system/default", "spec.mtls.mode")
    ], f"expected one violation at spec.mtls.mode, got:\n{rendered(violations)}"


def test_a_bogus_kubernetes_kind_is_reported_on_the_kind_field() -> None:
    svc = service() | {"kind": "Servise"}
    assert_only_violation(
        validate_manifests([svc], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "Servise bookinfo/reviews", "kind", "no schema known for kind Servise in v1"
        ),
    )


def test_a_bogus_istio_kind_is_reported_on_the_kind_field() -> None:
    vs = virtual_service() | {"kind": "VirtualServise"}
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION, ISTIO),
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
        validate_manifests([widget], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "Widget bookinfo/w",
            "apiVersion",
            "no schema known for apiVersion example.com/v1",
        ),
    )


def test_an_unknown_istio_version_is_reported_as_having_no_schema() -> None:
    gw = gateway() | {"apiVersion": "networking.istio.io/v9"}
    assert_only_violation(
        validate_manifests([gw], KUBERNETES_VERSION, ISTIO),
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
    refs = [v.object_ref for v in validate_manifests(docs, KUBERNETES_VERSION, ISTIO)]
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
        validate_manifests([ns], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "Namespace bookinfo",
            'metadata.labels["app.kubernetes.io/part-of"]',
            "must be string",
        ),
    )


def test_an_unsupported_kubernetes_version_is_refused_with_the_supported_list() -> None:
    with pytest.raises(ValueError, match=r"no schemas for Kubernetes 1\.20;.*1\.34"):
        validate_manifests([namespace()], "1.20", ISTIO)


def test_an_istio_enum_violation_lists_the_allowed_values() -> None:
    pa = peer_authentication()
    pa["spec"]["mtls"]["mode"] = "STRICTLY"
    assert_only_violation(
        validate_manifests([pa], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "PeerAuthentication istio-system/default",
            "spec.mtls.mode",
            'must be one of "UNSET", "DISABLE", "PERMISSIVE", "STRICT"',
        ),
    )


def test_importing_the_module_loads_neither_jsonschema_nor_cel() -> None:
    code = (
        "import sys, bookinfo_mesh.schemas;"
        "print(*(m in sys.modules for m in ('jsonschema', 'kubernetes_validate', 'celpy')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["False", "False", "False"], (
        f"import is not cheap (jsonschema, kubernetes_validate, celpy): {result.stdout}"
        f"{result.stderr}"
    )


# ---- Unknown fields at every depth ------------------------------------------------------------


def objects_with_unknown_fields() -> list[Any]:
    """Valid and invalid Istio objects, unknown fields from the top down to 8 levels deep."""
    vs = virtual_service()
    vs["specc"] = {}
    vs["metadata"]["lables"] = {"app": "reviews"}
    vs["metadata"]["managedFields"] = [
        {"manager": "kubectl", "fieldsV1": {"f:spec": {}}, "managr": "x"}  # fieldsV1 is open
    ]
    vs["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "X", "name": "x", "uid": "1", "kindd": "X"}
    ]
    http = vs["spec"]["http"][0]
    http["routee"] = []
    http["match"][0]["headers"]["end-user"]["exakt"] = "jason"
    http["match"][0]["headers"]["x.odd/name"] = {"prefix": "a"}  # a map key, not a field
    http["fault"]["delay"]["percentage"]["valu"] = 1
    http["route"][0]["destination"]["port"] = {"number": 9080, "numbr": 9080}
    vs["spec"]["http"][1]["route"][0]["headers"] = {"request": {"add": {"x": "1"}, "sett": {}}}

    dr = destination_rule()
    dr["spec"]["trafficPolicy"]["loadBalancer"] = {
        "consistentHash": {"httpCookie": {"name": "c", "ttl": "1s", "ttll": "1s"}, "ringHahs": {}},
    }
    dr["spec"]["trafficPolicy"]["connectionPool"] = {"tcp": {"tcpKeepalive": {"probs": 3}}}
    dr["spec"]["subsets"][0]["trafficPolicy"] = {
        "portLevelSettings": [
            {"port": {"number": 80, "numbr": 80}, "tls": {"mode": "SIMPLE", "modee": "x"}}
        ]
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
    return [vs, dr, gw, pa, authz, service()]


EXPECTED_UNKNOWN_FIELDS = [
    ("VirtualService bookinfo/reviews", "metadata.lables"),
    ("VirtualService bookinfo/reviews", "metadata.managedFields[0].managr"),
    ("VirtualService bookinfo/reviews", "metadata.ownerReferences[0].kindd"),
    ("VirtualService bookinfo/reviews", "spec.http[0].fault.delay.percentage.valu"),
    ("VirtualService bookinfo/reviews", "spec.http[0].match[0].headers.end-user.exakt"),
    ("VirtualService bookinfo/reviews", "spec.http[0].route[0].destination.port.numbr"),
    ("VirtualService bookinfo/reviews", "spec.http[0].routee"),
    ("VirtualService bookinfo/reviews", "spec.http[1].route[0].headers.request.sett"),
    ("VirtualService bookinfo/reviews", "specc"),
    (
        "DestinationRule bookinfo/reviews",
        "spec.subsets[0].trafficPolicy.portLevelSettings[0].port.numbr",
    ),
    (
        "DestinationRule bookinfo/reviews",
        "spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.modee",
    ),
    (
        "DestinationRule bookinfo/reviews",
        "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.probs",
    ),
    (
        "DestinationRule bookinfo/reviews",
        "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttll",
    ),
    ("DestinationRule bookinfo/reviews", "spec.trafficPolicy.loadBalancer.consistentHash.ringHahs"),
    ("Gateway bookinfo/bookinfo-gateway", "spec.servers[0].port.nmber"),
    ("Gateway bookinfo/bookinfo-gateway", "spec.servers[0].tls.modee"),
    ("PeerAuthentication istio-system/default", 'spec.portLevelMtls["8080"].modee'),
    ("PeerAuthentication istio-system/default", "spec.selector.matchLabelz"),
    ("AuthorizationPolicy bookinfo/allow", "spec.rules[0].from[0].source.principalz"),
    ("AuthorizationPolicy bookinfo/allow", "spec.rules[0].when[0].valuez"),
]


def test_unknown_fields_are_found_at_every_depth_and_nothing_else_is_reported() -> None:
    violations = validate_manifests(objects_with_unknown_fields(), KUBERNETES_VERSION, ISTIO)
    assert [(v.object_ref, v.reason) for v in violations if v.reason != "unknown field"] == [], (
        f"only unknown fields were planted:\n{rendered(violations)}"
    )
    found = [(v.object_ref, v.field) for v in violations]
    assert found == EXPECTED_UNKNOWN_FIELDS, f"unexpected unknown fields:\n{rendered(violations)}"


def test_an_object_where_an_array_belongs_is_a_type_error_and_not_walked() -> None:
    vs = virtual_service()
    vs["spec"]["http"] = {"routee": 1}
    vs["spec"]["hosts"] = [{"anything": 1}]
    violations = validate_manifests([vs], KUBERNETES_VERSION, ISTIO)
    assert [(v.field, v.reason) for v in violations] == [
        ("spec.hosts[0]", "must be string"),
        ("spec.http", "must be array"),
    ], f"unexpected violations:\n{rendered(violations)}"


def test_preserve_unknown_fields_lets_any_envoy_filter_patch_value_through() -> None:
    # EnvoyFilter's patch.value is x-kubernetes-preserve-unknown-fields: raw Envoy config.
    envoy_filter = {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "lua", "namespace": "bookinfo"},
        "spec": {
            "configPatches": [
                {
                    "applyTo": "HTTP_FILTER",
                    "patch": {
                        "operation": "INSERT_BEFORE",
                        "value": {
                            "name": "envoy.filters.http.lua",
                            "typed_config": {"@type": "type.googleapis.com/x", "any": {"d": 1}},
                        },
                    },
                }
            ]
        },
    }
    violations = validate_manifests([envoy_filter], KUBERNETES_VERSION, ISTIO)
    assert violations == [], (
        f"a preserved value was checked field by field:\n{rendered(violations)}"
    )
    envoy_filter["spec"]["configPatches"][0]["patch"]["valu"] = {}
    assert_only_violation(
        validate_manifests([envoy_filter], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "EnvoyFilter bookinfo/lua", "spec.configPatches[0].patch.valu", "unknown field"
        ),
    )


def test_preserve_unknown_fields_in_a_synthetic_schema_keeps_strictness_beside_it() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    }
    walk = schemas._Walk()
    walk.value({"open": {"x": {"y": 1}}, "closed": {"a": "1", "b": 2}}, schema, ())
    assert walk.found == [(("closed", "b"), "unknown field")], f"got {walk.found}"


def test_a_null_the_api_server_would_drop_is_not_reported() -> None:
    # Non-nullable nulls without a default are pruned before validation, as on a real create.
    vs = virtual_service()
    vs["spec"]["http"][1]["timeout"] = None
    violations = validate_manifests([vs], KUBERNETES_VERSION, ISTIO)
    assert violations == [], f"a droppable null was reported:\n{rendered(violations)}"


def test_two_string_match_kinds_at_once_break_the_one_of_group_by_name() -> None:
    vs = virtual_service()
    vs["spec"]["http"][0]["match"][0]["headers"]["end-user"]["prefix"] = "ja"
    assert_only_violation(
        validate_manifests([vs], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "VirtualService bookinfo/reviews",
            "spec.http[0].match[0].headers.end-user",
            "must validate one and only one schema (oneOf): set at most one of exact, prefix, "
            "regex (found exact, prefix)",
        ),
    )


def test_a_number_out_of_its_bounds_is_reported_with_the_bound() -> None:
    vs = virtual_service()
    vs["spec"]["http"][0]["route"][0]["destination"]["port"] = {"number": -1}
    vs["spec"]["http"][1]["route"][0]["destination"]["port"] = {"number": 2**32}
    violations = validate_manifests([vs], KUBERNETES_VERSION, ISTIO)
    assert [(v.field, v.reason) for v in violations] == [
        ("spec.http[0].route[0].destination.port.number", "must be greater than or equal to 0"),
        (
            "spec.http[1].route[0].destination.port.number",
            "must be less than or equal to 4294967295",
        ),
    ], f"unexpected violations:\n{rendered(violations)}"


# ---- CEL rules (x-kubernetes-validations) ----------------------------------------------------


def test_port_level_mtls_without_a_selector_breaks_the_crd_rule() -> None:
    pa = peer_authentication()
    pa["spec"]["portLevelMtls"] = {"9080": {"mode": "DISABLE"}}
    assert_only_violation(
        validate_manifests([pa], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "PeerAuthentication istio-system/default", "spec", "portLevelMtls requires selector"
        ),
    )
    pa["spec"]["selector"] = {"matchLabels": {"app": "reviews"}}
    violations = validate_manifests([pa], KUBERNETES_VERSION, ISTIO)
    assert violations == [], f"portLevelMtls with a selector was rejected:\n{rendered(violations)}"


def test_a_port_level_mtls_key_out_of_port_range_breaks_the_crd_rule() -> None:
    pa = peer_authentication()
    pa["spec"]["selector"] = {"matchLabels": {"app": "reviews"}}
    pa["spec"]["portLevelMtls"] = {"9080": {"mode": "DISABLE"}, "70000": {"mode": "DISABLE"}}
    assert_only_violation(
        validate_manifests([pa], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "PeerAuthentication istio-system/default",
            "spec.portLevelMtls",
            "port must be between 1-65535",
        ),
    )


def test_a_rule_that_errs_on_the_value_is_reported_the_way_the_api_server_words_it() -> None:
    pa = peer_authentication()
    pa["spec"]["selector"] = {"matchLabels": {"app": "reviews"}}
    pa["spec"]["portLevelMtls"] = {"http": {"mode": "DISABLE"}}
    violations = validate_manifests([pa], KUBERNETES_VERSION, ISTIO)
    assert [
        (v.field, v.reason.endswith(" evaluating rule: port must be between 1-65535"))
        for v in violations
    ] == [("spec.portLevelMtls", True)], (
        f"int('http') must fail the rule as an evaluation error:\n{rendered(violations)}"
    )


@pytest.mark.parametrize(
    ("delay", "reason"),
    [
        ("7s", None),
        ("1ms", None),
        ("1.5s", None),
        ("1m30s", None),
        ("999us", "must be a valid duration greater than 1ms"),
        ("0.5ms", "must be a valid duration greater than 1ms"),
        ("0s", "must be a valid duration greater than 1ms"),
        (
            "7 seconds",
            'time: invalid duration "7 seconds" evaluating rule: '
            "must be a valid duration greater than 1ms",
        ),
    ],
)
def test_a_fault_delay_must_be_a_go_duration_of_at_least_one_millisecond(
    delay: str, reason: str | None
) -> None:
    vs = virtual_service()
    vs["spec"]["http"][0]["fault"]["delay"]["fixedDelay"] = delay
    expected = (
        []
        if reason is None
        else [
            SchemaViolation(
                "VirtualService bookinfo/reviews", "spec.http[0].fault.delay.fixedDelay", reason
            )
        ]
    )
    violations = validate_manifests([vs], KUBERNETES_VERSION, ISTIO)
    assert violations == expected, f"fixedDelay {delay!r}:\n{rendered(violations)}"


def test_a_service_entry_with_a_duplicate_port_number_breaks_the_crd_rule() -> None:
    entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "ext", "namespace": "bookinfo"},
        "spec": {
            "hosts": ["api.example.com"],
            "resolution": "DNS",
            "ports": [
                {"number": 443, "name": "https", "protocol": "TLS"},
                {"number": 443, "name": "https-2", "protocol": "TLS"},
            ],
        },
    }
    assert_only_violation(
        validate_manifests([entry], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "ServiceEntry bookinfo/ext", "spec.ports", "port number cannot be duplicated"
        ),
    )
    entry["spec"]["ports"][1]["number"] = 8443
    violations = validate_manifests([entry], KUBERNETES_VERSION, ISTIO)
    assert violations == [], f"distinct ports were rejected:\n{rendered(violations)}"


def test_an_authorization_policy_with_selector_and_target_refs_breaks_the_crd_rule() -> None:
    authz = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow", "namespace": "bookinfo"},
        "spec": {
            "selector": {"matchLabels": {"app": "reviews"}},
            "targetRefs": [{"kind": "Service", "group": "", "name": "reviews"}],
        },
    }
    assert_only_violation(
        validate_manifests([authz], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "AuthorizationPolicy bookinfo/allow",
            "spec",
            "only one of targetRefs or selector can be set",
        ),
    )


def test_a_wildcard_in_a_selector_label_value_is_reported_at_the_label() -> None:
    pa = peer_authentication()
    pa["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": "review*"}}
    assert_only_violation(
        validate_manifests([pa], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "PeerAuthentication istio-system/default",
            'spec.selector.matchLabels["app.kubernetes.io/name"]',
            "wildcard not allowed in label value match",
        ),
    )


def test_a_unix_socket_address_needs_an_absolute_path_which_substring_checks() -> None:
    entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "WorkloadEntry",
        "metadata": {"name": "vm", "namespace": "bookinfo"},
        "spec": {"address": "unix://relative/sock"},
    }
    assert_only_violation(
        validate_manifests([entry], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "WorkloadEntry bookinfo/vm",
            "spec.address",
            "UDS must be an absolute path or abstract socket",
        ),
    )
    entry["spec"]["address"] = "unix:///var/run/sock"
    violations = validate_manifests([entry], KUBERNETES_VERSION, ISTIO)
    assert violations == [], f"an absolute socket path was rejected:\n{rendered(violations)}"


def test_a_wasm_plugin_url_scheme_is_checked_with_is_url_and_url() -> None:
    plugin = {
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": "auth", "namespace": "bookinfo"},
        "spec": {"url": "oci://ghcr.io/example/auth:1.0"},
    }
    for url in ("oci://ghcr.io/example/auth:1.0", "ghcr.io/example/auth:1.0", "file:///p.wasm"):
        plugin["spec"]["url"] = url
        violations = validate_manifests([plugin], KUBERNETES_VERSION, ISTIO)
        assert violations == [], f"url {url!r} was rejected:\n{rendered(violations)}"
    plugin["spec"]["url"] = "ftp://example.com/auth.wasm"
    assert_only_violation(
        validate_manifests([plugin], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "WasmPlugin bookinfo/auth",
            "spec.url",
            "url must have schema one of [http, https, file, oci]",
        ),
    )


def test_no_cel_rule_runs_on_a_value_with_a_wrong_type_below_it() -> None:
    # As on the API server: a type error blocks the rules that would read the bad value.
    pa = peer_authentication()
    pa["spec"]["portLevelMtls"] = {"9080": {"mode": 1}}
    assert_only_violation(
        validate_manifests([pa], KUBERNETES_VERSION, ISTIO),
        SchemaViolation(
            "PeerAuthentication istio-system/default",
            'spec.portLevelMtls["9080"].mode',
            "must be string",
        ),
    )


# Rule placements per minor's CRDs, pinned: a cel-python upgrade or a regenerated schema
# that changes them must be noticed.
CEL_RULE_PLACEMENTS = {"1.30": 362, "1.31": 398}


@pytest.mark.parametrize("minor", sorted(ISTIO_MINORS))
def test_every_cel_rule_of_the_istio_crds_is_evaluated_none_skipped(minor: str) -> None:
    # Were any skipped, each would be (kind/version, path, rule, reason).
    skipped = unevaluable_cel_rules(minor)
    print(*skipped, sep="\n")
    assert skipped == [], "rules are now skipped:\n" + "\n".join(map(str, skipped))
    count = schemas.istio_cel_rule_count(minor)
    assert count == (CEL_RULE_PLACEMENTS[minor], 0), (
        f"the {minor} CRDs hold {CEL_RULE_PLACEMENTS[minor]} rule placements, got {count}"
    )


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (
            "quantity(self).isGreaterThan(quantity('1'))",
            "cel-python lacks isGreaterThan(), quantity()",
        ),
        ("self == oldSelf", "transition rule (oldSelf): does not apply to a create"),
        ("self ==", "cel-python cannot parse it"),
    ],
)
def test_a_rule_cel_python_cannot_evaluate_is_skipped_not_failed(rule: str, problem: str) -> None:
    compiled = schemas._compiled_rule(rule)
    assert compiled.program is None, f"{rule!r} was thought evaluable"
    assert compiled.problem.startswith(problem), f"{rule!r}: {compiled.problem}"
    schema = {"type": "string", "x-kubernetes-validations": [{"rule": rule, "message": "no"}]}
    walk = schemas._Walk()
    walk.value("1", schema, ("spec",))
    assert walk.found == [], f"a skipped rule failed validation: {walk.found}"


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("7s", 7 * 10**9),
        ("-1.5h", -5400 * 10**9),
        ("1h2m3.5s", 3723 * 10**9 + 5 * 10**8),
        (".5s", 5 * 10**8),
        ("1.s", 10**9),
        ("3µs", 3000),
        ("100ns", 100),
        ("1d", None),
        ("", None),
        ("s", None),
        ("1", None),
        ("1 s", None),
        ("3000000h", None),
    ],
)
def test_durations_parse_as_go_parses_them(text: str, nanos: int | None) -> None:
    assert schemas._go_duration_nanos(text) == nanos, f"time.ParseDuration({text!r})"


@pytest.mark.parametrize(
    ("url", "is_url", "scheme"),
    [
        ("https://example.com/a?b", True, "https"),
        ("HTTP://example.com:8080", True, "http"),
        ("oci://ghcr.io/x/y:1.0", True, "oci"),
        ("file:///plugins/auth.wasm", True, "file"),
        ("/just/a/path", True, ""),
        ("mailto:someone", True, "mailto"),
        ("ghcr.io/x/y:1.0", False, None),
        ("http://exa mple.com", False, None),
        ("http://example.com:port", False, None),
        ("http://example.com/%zz", False, None),
        ("", False, None),
    ],
)
def test_urls_parse_as_go_parse_request_uri_does(
    url: str, is_url: bool, scheme: str | None
) -> None:
    parsed = schemas._parse_request_uri(url)
    assert (parsed is not None) == is_url, f"isURL({url!r})"
    if parsed is not None:
        assert parsed.scheme == scheme, f"url({url!r}).getScheme() gave {parsed.scheme!r}"


# ---- The release the schemas come from --------------------------------------------------------


@pytest.mark.parametrize("minor", sorted(ISTIO_MINORS))
def test_each_minor_has_schemas_read_at_its_release_through_the_go_module_proxy(
    minor: str,
) -> None:
    source = json.loads((SCHEMAS_DIR / f"{minor}.json").read_text())["source"]
    expected = ISTIO_MINORS[minor]
    assert source == {
        "generator": "scripts/generate_istio_schemas.py",
        "module": "istio.io/istio",
        "moduleVersion": expected.module_version,
        "path": "manifests/charts/base/files/crd-all.gen.yaml",
        "release": expected.files_read_at,
    }, f"{minor}.json was not generated from {expected}: {source}"
    assert istio_schema_source(f"{minor}.7") == (
        f"Istio {expected.files_read_at} CRDs (istio.io/istio {expected.module_version})"
    )


def test_the_schema_files_are_exactly_the_supported_minors() -> None:
    files = sorted(p.name for p in SCHEMAS_DIR.iterdir())
    assert files == [f"{minor}.json" for minor in sorted(ISTIO_MINORS)], files


@pytest.mark.parametrize("minor", sorted(ISTIO_MINORS))
def test_the_committed_schemas_are_compact_and_sorted_as_the_generator_writes_them(
    minor: str,
) -> None:
    text = (SCHEMAS_DIR / f"{minor}.json").read_text()
    document = json.loads(text)
    assert list(document) == ["source", "schemas"], f"top-level keys: {list(document)}"
    generator = load_generator()
    rewritten = json.dumps(
        {
            "source": generator._sorted(document["source"]),
            "schemas": generator._sorted(document["schemas"]),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert text == rewritten + "\n", f"{minor}.json is not in the generator's canonical form"
    assert '"description"' not in text, "descriptions must be dropped"
    served = {
        (api_version, kind) for api_version, kinds in document["schemas"].items() for kind in kinds
    }
    assert {
        ("networking.istio.io/v1", "VirtualService"),
        ("networking.istio.io/v1alpha3", "VirtualService"),
        ("networking.istio.io/v1beta1", "VirtualService"),
        ("networking.istio.io/v1alpha3", "EnvoyFilter"),
        ("security.istio.io/v1beta1", "PeerAuthentication"),
        ("telemetry.istio.io/v1alpha1", "Telemetry"),
    } <= served, f"served versions missing from {sorted(served)}"


def test_a_minor_without_schemas_is_refused_with_the_generated_minors() -> None:
    with pytest.raises(ValueError, match=r"no Istio 1\.29 schemas; generated minors: 1\.30"):
        validate_manifests([virtual_service()], KUBERNETES_VERSION, "1.29.9")


# ---- The generator ----------------------------------------------------------------------------

TINY_CRDS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.istio.io
spec:
  group: example.istio.io
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        description: A widget.
        type: object
        properties:
          spec:
            description: Its spec.
            type: object
            x-kubernetes-validations:
            - rule: has(self.size)
              message: size is required
            properties:
              size:
                description: How big.
                type: integer
                format: int32
                minimum: 1
                maximum: 10
                exclusiveMaximum: true
              port:
                x-kubernetes-int-or-string: true
                anyOf: [{type: integer}, {type: string}]
              labels:
                type: object
                additionalProperties: {type: string, maxLength: 63}
                maxProperties: 4
              raw:
                type: object
                x-kubernetes-preserve-unknown-fields: true
              items:
                type: array
                items: {type: string, enum: [a, b], pattern: '^[ab]$'}
                x-kubernetes-list-type: set
                minItems: 1
              description:
                type: string
                nullable: true
  - name: v1alpha1
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-crd}
"""

TINY_EXPECTED_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [{"message": "size is required", "rule": "has(self.size)"}],
            "properties": {
                "size": {
                    "type": "integer",
                    "format": "int32",
                    "minimum": 1,
                    "maximum": 10,
                    "exclusiveMaximum": True,
                },
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": 63},
                    "maxProperties": 4,
                },
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "items": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["a", "b"], "pattern": "^[ab]$"},
                    "x-kubernetes-list-type": "set",
                    "minItems": 1,
                },
                # A field named "description" is a property, not documentation.
                "description": {"type": "string", "nullable": True},
            },
        }
    },
}


def load_generator() -> ModuleType:
    path = REPO_ROOT / "scripts" / "generate_istio_schemas.py"
    spec = importlib.util.spec_from_file_location("generate_istio_schemas", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generator_keeps_markers_drops_descriptions_and_unserved_versions() -> None:
    generator = load_generator()
    crds = list(yaml.safe_load_all(TINY_CRDS))
    text = generator.generate(copy.deepcopy(crds), "9.9.9", "v0.0.0-20260101000000-0123456789ab")
    document = json.loads(text)
    assert document["source"] == {
        "generator": "scripts/generate_istio_schemas.py",
        "module": "istio.io/istio",
        "moduleVersion": "v0.0.0-20260101000000-0123456789ab",
        "path": "manifests/charts/base/files/crd-all.gen.yaml",
        "release": "9.9.9",
    }, f"unexpected provenance: {document['source']}"
    assert document["schemas"] == {"example.istio.io/v1": {"Widget": TINY_EXPECTED_SCHEMA}}, (
        f"unexpected schemas: {json.dumps(document['schemas'], indent=1)}"
    )
    assert "A widget." not in text and "How big." not in text, "a description survived"
    again = generator.generate(copy.deepcopy(crds), "9.9.9", "v0.0.0-20260101000000-0123456789ab")
    assert again == text, "two runs gave different bytes"
    assert "\n" not in text.rstrip("\n") and ": " not in text, "output is not compact"


def test_the_generated_tiny_schema_validates_like_the_api_server() -> None:
    walk = schemas._Walk()
    root = schemas._root_schema(TINY_EXPECTED_SCHEMA)
    widget = {
        "apiVersion": "example.istio.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {
            "size": 10,
            "port": 1.5,
            "labels": {"a/b": "x" * 64},
            "raw": {"anything": [1]},
            "items": ["a", "a"],
            "description": None,
        },
    }
    walk.value(widget, root, ())
    assert sorted(walk.found) == [
        (("spec", "items", 1), 'duplicate entry: "a"'),
        (("spec", "labels", "a/b"), "must be at most 63 characters"),
        (("spec", "port"), "must be integer or string"),
        (("spec", "size"), "must be less than 10"),
    ], f"got {walk.found}"
