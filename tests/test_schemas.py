"""Offline checks of rendered manifests (bookinfo_mesh.schemas): Kubernetes' schemas for the
built-in kinds, the real istioctl for Istio's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bookinfo_mesh import schemas
from bookinfo_mesh.schemas import SchemaViolation, Validation, validate_manifests

KUBERNETES_VERSION = "1.34"
ISTIO = "1.31.0"
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


def checked(docs: list[dict[str, Any]]) -> list[SchemaViolation]:
    found = validate_manifests(docs, KUBERNETES_VERSION, ISTIO)
    assert found.unchecked is None, found.unchecked
    return found.violations


def test_correct_kubernetes_and_istio_objects_have_no_violations() -> None:
    docs = [namespace(), service_account(), service(), deployment(), virtual_service()]
    docs += [destination_rule(), gateway(), peer_authentication()]
    assert checked(docs) == []


def test_a_string_replica_count_is_reported_as_must_be_integer() -> None:
    deploy = deployment()
    deploy["spec"]["replicas"] = "two"
    assert checked([deploy]) == [
        SchemaViolation("Deployment bookinfo/reviews-v2", "spec.replicas", "must be integer")
    ]


def test_a_missing_required_kubernetes_field_is_reported_at_its_path() -> None:
    deploy = deployment()
    del deploy["spec"]["template"]["spec"]["containers"][0]["name"]
    assert checked([deploy]) == [
        SchemaViolation(
            "Deployment bookinfo/reviews-v2", "spec.template.spec.containers[0].name", "is required"
        )
    ]


def test_an_unknown_field_in_a_kubernetes_kind_is_reported() -> None:
    svc = service()
    svc["spec"]["ports"][0]["targetPortt"] = 9080
    assert checked([svc]) == [
        SchemaViolation("Service bookinfo/reviews", "spec.ports[0].targetPortt", "unknown field")
    ]


def test_a_bogus_kind_and_an_unknown_api_version_have_no_schema() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert checked([service() | {"kind": "Servise"}, widget]) == [
        SchemaViolation(
            "Servise bookinfo/reviews", "kind", "no schema known for kind Servise in v1"
        ),
        SchemaViolation("Widget w", "apiVersion", "no schema known for apiVersion example.com/v1"),
    ]


def test_keys_with_dots_and_slashes_are_quoted_in_the_field_path() -> None:
    ns = namespace()
    ns["metadata"]["labels"]["app.kubernetes.io/part-of"] = 1
    assert checked([ns]) == [
        SchemaViolation(
            "Namespace bookinfo", 'metadata.labels["app.kubernetes.io/part-of"]', "must be string"
        )
    ]


def test_an_unsupported_kubernetes_version_is_refused_with_the_supported_list() -> None:
    with pytest.raises(ValueError, match=r"no schemas for Kubernetes 1\.20;.*1\.34"):
        validate_manifests([namespace()], "1.20", ISTIO)


def test_a_violation_reads_as_object_field_and_reason() -> None:
    violation = SchemaViolation("VirtualService bookinfo/reviews", "spec.hosts", "is required")
    assert str(violation) == "VirtualService bookinfo/reviews: spec.hosts: is required"
    assert str(SchemaViolation("Widget w", "", "bad")) == "Widget w: bad"


def test_istioctl_names_each_istio_object_it_refuses_and_why() -> None:
    """istioctl validate judges Istio's kinds: an unknown field, a wrong type, a status out of
    Istio's range, an unknown enum value; the good objects beside them pass."""
    typo = virtual_service()
    typo["spec"]["http"][0]["routee"] = typo["spec"]["http"][0].pop("route")
    wrong_type = destination_rule() | {"metadata": {"name": "typed", "namespace": "bookinfo"}}
    wrong_type["spec"]["host"] = 5
    status = virtual_service() | {"metadata": {"name": "status", "namespace": "bookinfo"}}
    status["spec"]["http"][0]["fault"] = {"abort": {"httpStatus": 700, "percentage": {"value": 1}}}
    mode = peer_authentication()
    mode["spec"]["mtls"]["mode"] = "STRICTLY"
    found = checked([typo, wrong_type, gateway(), status, mode])
    assert [v.object_ref for v in found] == [
        "VirtualService bookinfo/reviews",
        "DestinationRule bookinfo/typed",
        "VirtualService bookinfo/status",
        "PeerAuthentication istio-system/default",
    ], found
    assert 'unknown field "routee"' in found[0].reason
    assert "HTTP status 700 is not in range 200-599" in found[2].reason
    assert "STRICTLY" in found[3].reason


def test_built_in_kinds_come_first_then_what_istioctl_refuses() -> None:
    bad_svc = service()
    bad_svc["spec"]["ports"][0]["port"] = "http"
    bad_vs = virtual_service()
    bad_vs["spec"]["http"][0]["route"][0]["weight"] = "x"
    refs = [v.object_ref for v in checked([bad_vs, namespace(), bad_svc])]
    assert refs == ["Service bookinfo/reviews", "VirtualService bookinfo/reviews"]


def test_without_istioctl_istio_objects_are_said_to_be_unchecked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(schemas, "TOOLS_BIN", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    schemas.find_istioctl.cache_clear()
    try:
        found = validate_manifests([namespace(), virtual_service()], KUBERNETES_VERSION, ISTIO)
    finally:
        schemas.find_istioctl.cache_clear()
    assert found == Validation(
        [],
        "Istio's objects were not checked: no istioctl 1.31 in .tools/bin or on PATH "
        "(`make tools` obtains it)",
    )


def test_an_istioctl_on_path_counts_only_at_the_stacks_minor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "istioctl"
    fake.write_text("#!/bin/sh\necho 1.30.4\n")
    fake.chmod(0o755)
    monkeypatch.setattr(schemas, "TOOLS_BIN", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path))
    schemas.find_istioctl.cache_clear()
    try:
        assert schemas.find_istioctl("1.31") is None
        assert schemas.find_istioctl("1.30") == fake
    finally:
        schemas.find_istioctl.cache_clear()


def test_importing_the_module_loads_no_jsonschema() -> None:
    code = "import sys, bookinfo_mesh.schemas; print('jsonschema' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
