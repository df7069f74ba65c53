"""Tests for the offline Kubernetes + Istio schema validator in stacks.schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stacks import schemas
from stacks.schemas import (
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
        "import sys, stacks.schemas;"
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
