"""Which version answers a subset: DestinationRule labels -> Deployments' pods -> `version`."""

from __future__ import annotations

from typing import Any

import pytest

from model.serving import program_serving, serving_from_manifests

NS = "bookinfo"


def service(name: str, selector: dict[str, str], namespace: str = NS) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": selector},
    }


def deployment(
    app: str, labels: dict[str, str], replicas: int | None = None, namespace: str = NS
) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"metadata": {"labels": {"app": app, **labels}}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "kind": "Deployment",
        "metadata": {"name": f"{app}-{labels.get('version', 'x')}", "namespace": namespace},
        "spec": spec,
    }


def rule(host: str, subsets: dict[str, dict[str, str]], namespace: str = NS) -> dict[str, Any]:
    return {
        "kind": "DestinationRule",
        "metadata": {"name": host.split(".")[0], "namespace": namespace},
        "spec": {
            "host": host,
            "subsets": [{"name": n, "labels": labels} for n, labels in subsets.items()],
        },
    }


REVIEWS_PODS = [deployment("reviews", {"version": v}) for v in ("v1", "v2", "v3")]
REVIEWS_SERVICE = service("reviews", {"app": "reviews"})


def test_the_programs_subsets_are_served_by_the_versions_bookinfo_yaml_deploys() -> None:
    # destination-rule-all.yaml's subsets over bookinfo.yaml's Deployments (Istio 1.30.3):
    # ratings v2 and details v2 are subsets without pods in the plain sample.
    assert program_serving("1.30.3") == {
        "productpage": {"v1": (("v1", 1.0),)},
        "reviews": {"v1": (("v1", 1.0),), "v2": (("v2", 1.0),), "v3": (("v3", 1.0),)},
        "ratings": {"v1": (("v1", 1.0),), "v2": (), "v2-mysql": (), "v2-mysql-vm": ()},
        "details": {"v1": (("v1", 1.0),), "v2": ()},
    }


def test_a_subset_named_v3_whose_labels_select_v1_pods_is_served_by_v1() -> None:
    serving = serving_from_manifests(
        [REVIEWS_SERVICE, *REVIEWS_PODS, rule("reviews", {"v3": {"version": "v1"}})]
    )
    assert serving == {"reviews": {"v3": (("v1", 1.0),)}}


def test_a_subset_over_two_deployments_is_shared_by_their_replicas() -> None:
    pods = [
        deployment("reviews", {"version": "v1", "track": "stable"}, replicas=3),
        deployment("reviews", {"version": "v2", "track": "stable"}),  # replicas default to 1
        deployment("reviews", {"version": "v3", "track": "canary"}, replicas=5),
    ]
    serving = serving_from_manifests(
        [REVIEWS_SERVICE, *pods, rule("reviews", {"stable": {"track": "stable"}})]
    )
    assert serving == {"reviews": {"stable": (("v1", 0.75), ("v2", 0.25))}}


def test_a_deployment_scaled_to_zero_serves_nothing() -> None:
    pods = [deployment("reviews", {"version": "v2"}, replicas=0)]
    serving = serving_from_manifests([REVIEWS_SERVICE, *pods, rule("reviews", {"v2": {}})])
    assert serving == {"reviews": {"v2": ()}}


def test_the_services_selector_narrows_the_subsets_labels() -> None:
    # A ratings pod labelled version v1 must not serve the reviews subset v1.
    pods = [deployment("ratings", {"version": "v1"})]
    serving = serving_from_manifests(
        [REVIEWS_SERVICE, *pods, rule("reviews", {"v1": {"version": "v1"}})]
    )
    assert serving == {"reviews": {"v1": ()}}


@pytest.mark.parametrize(
    ("host", "rule_namespace", "service_name", "served"),
    [
        ("reviews", NS, "reviews", (("v2", 1.0),)),
        ("reviews.bookinfo.svc.cluster.local", NS, "reviews", (("v2", 1.0),)),
        ("reviews.bookinfo.svc.cluster.local", "istio-system", "reviews", (("v2", 1.0),)),
        # A short name is a Service in the rule's own namespace, which has no reviews pods.
        ("reviews", "istio-system", "reviews", ()),
        # Not the name of a Kubernetes Service at all.
        ("reviews.bookinfo", NS, "reviews.bookinfo", ()),
    ],
)
def test_a_hosts_namespace_comes_from_its_full_name_or_else_the_rules_own(
    host: str, rule_namespace: str, service_name: str, served: tuple
) -> None:
    serving = serving_from_manifests(
        [
            REVIEWS_SERVICE,
            service("reviews", {"app": "reviews"}, namespace="istio-system"),
            *REVIEWS_PODS,
            rule(host, {"v2": {"version": "v2"}}, namespace=rule_namespace),
        ]
    )
    assert serving == {service_name: {"v2": served}}


def test_without_a_service_no_pod_serves_the_host() -> None:
    serving = serving_from_manifests([*REVIEWS_PODS, rule("reviews", {"v1": {"version": "v1"}})])
    assert serving == {"reviews": {"v1": ()}}


def test_the_larger_share_comes_first_and_equal_shares_by_version_name() -> None:
    pods = [
        deployment("reviews", {"version": "v3", "track": "a"}, replicas=3),
        deployment("reviews", {"version": "v2", "track": "a"}),
        deployment("reviews", {"version": "v1", "track": "a"}),
    ]
    serving = serving_from_manifests(
        [REVIEWS_SERVICE, *pods, rule("reviews", {"a": {"track": "a"}})]
    )
    assert serving == {"reviews": {"a": (("v3", 0.6), ("v1", 0.2), ("v2", 0.2))}}


def test_two_deployments_of_one_version_add_up_their_replicas() -> None:
    pods = [
        deployment("reviews", {"version": "v1", "track": "a"}, replicas=1),
        deployment("reviews", {"version": "v2", "track": "a"}, replicas=1),
        deployment("reviews", {"version": "v1", "track": "b"}, replicas=2),
    ]
    serving = serving_from_manifests([REVIEWS_SERVICE, *pods, rule("reviews", {"all": {}})])
    assert serving == {"reviews": {"all": (("v1", 0.75), ("v2", 0.25))}}


def test_pods_without_a_version_label_serve_an_unnamed_version() -> None:
    pods = [deployment("reviews", {"track": "a"}, replicas=3)]
    serving = serving_from_manifests([REVIEWS_SERVICE, *pods, rule("reviews", {"a": {}})])
    assert serving == {"reviews": {"a": (("", 1.0),)}}


def unnamespaced(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k != "namespace"}
    return {**obj, "metadata": meta}


def test_objects_without_a_namespace_share_one() -> None:
    """kubectl applies them all to the same (current) namespace, so they still select."""
    serving = serving_from_manifests(
        [
            unnamespaced(REVIEWS_SERVICE),
            *map(unnamespaced, REVIEWS_PODS),
            unnamespaced(rule("reviews", {"v2": {"version": "v2"}})),
        ]
    )
    assert serving == {"reviews": {"v2": (("v2", 1.0),)}}


@pytest.mark.parametrize("missing", ["Service", "Deployment", "DestinationRule"])
def test_one_object_without_a_namespace_is_apart_from_the_bookinfo_ones(missing: str) -> None:
    objects = [REVIEWS_SERVICE, *REVIEWS_PODS, rule("reviews", {"v2": {"version": "v2"}})]
    objects = [unnamespaced(o) if o["kind"] == missing else o for o in objects]
    serving = serving_from_manifests(objects)
    assert serving == {"reviews": {"v2": ()}}


def test_a_service_without_a_selector_gets_no_pods_as_endpoints() -> None:
    for selectorless in (service("reviews", {}), {**REVIEWS_SERVICE, "spec": {}}):
        serving = serving_from_manifests([selectorless, *REVIEWS_PODS, rule("reviews", {"a": {}})])
        assert serving == {"reviews": {"a": ()}}


def test_a_destination_rule_without_a_host_is_served_by_no_pod() -> None:
    hostless = {
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": NS},
        "spec": {"subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
    }
    serving = serving_from_manifests([REVIEWS_SERVICE, *REVIEWS_PODS, hostless])
    assert serving == {"": {"v1": ()}}
