"""The policy pack: every rule on the real program's registrations, on mutations, and wired."""

from __future__ import annotations

import copy
import functools
import json
import runpy
import select
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import PolicyResource as EnginePolicyResource
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from bookinfo_mesh import engine
from model import policy_manifests
from policy import rules
from policy.rules import PolicyResource
from stacks import program
from tests.programs import shared_run

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"
MODES = ("all-v1", "user-v2", "delay", "abort", "split50", "v3")
PROD_FAULTS_ALLOWED = (("mode", "delay"), ("allowFaultInjection", "true"))
PROGRAM_RUNS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    *(("dev", (("mode", m),)) for m in MODES),
    ("prod", ()),
    ("prod", PROD_FAULTS_ALLOWED),
    ("prod", (("mode", "abort"), ("allowFaultInjection", "true"))),
)
RULES_BY_NAME = {rule.name: rule for rule in rules.RULES}
# The pack's six policies, in the order the pack lists them.
SIX_POLICIES = (
    "virtual-service-weights-sum-to-100",
    "routed-subsets-exist-and-select-pods",
    "gateway-selects-ingress-gateway-pods",
    "no-fault-injection-in-production",
    "container-images-pinned",
    "containers-request-cpu-and-memory",
)
PER_RESOURCE_RULES = (
    "virtual-service-weights-sum-to-100",
    "container-images-pinned",
    "containers-request-cpu-and-memory",
)


@functools.cache
def registrations(stack: str, overrides: tuple[tuple[str, str], ...] = ()) -> list[PolicyResource]:
    """What a stack policy sees of one mocked `pulumi up`: (type, name, props) per resource."""
    run = shared_run(stack, dict(overrides))
    assert run.error is None, f"the program failed for {stack} {dict(overrides)}: {run.error}"
    return [PolicyResource(r.type, r.name, r.inputs) for r in run.resources]


def dev(mode: str) -> list[PolicyResource]:
    return registrations("dev", (("mode", mode),))


def resource(resources: Sequence[PolicyResource], name: str) -> PolicyResource:
    matches = [r for r in resources if r.name == name]
    assert len(matches) == 1, f"{len(matches)} resources named {name!r}"
    return matches[0]


def mutated(
    resources: Sequence[PolicyResource], name: str, change: Callable[[dict[str, Any]], None]
) -> list[PolicyResource]:
    """A copy of `resources` where `change` has edited a deep copy of one resource's props."""
    target = resource(resources, name)
    props = copy.deepcopy(dict(target.props))
    change(props)
    return [PolicyResource(r.type, r.name, props) if r is target else r for r in resources]


def without(resources: Sequence[PolicyResource], name: str) -> list[PolicyResource]:
    target = resource(resources, name)
    return [r for r in resources if r is not target]


def the_violation(violations: list[str], *fragments: str) -> str:
    """The single violation, checked to mention every fragment (resource, field, problem)."""
    assert len(violations) == 1, f"expected one violation, got {violations}"
    for fragment in fragments:
        assert fragment in violations[0], f"{fragment!r} is missing from: {violations[0]}"
    return violations[0]


# --- the real program passes every rule ---------------------------------------------------


@pytest.mark.parametrize("rule", rules.RULES, ids=lambda r: r.name)
@pytest.mark.parametrize(
    ("stack", "overrides"),
    PROGRAM_RUNS,
    ids=lambda v: v if isinstance(v, str) else "-".join(val for _, val in v) or "default",
)
def test_the_real_program_passes_every_rule(
    stack: str, overrides: tuple[tuple[str, str], ...], rule: rules.Rule
) -> None:
    assert rule.check(registrations(stack, overrides)) == []


def test_the_rules_see_the_objects_the_program_registers() -> None:
    """Guards against vacuous passes: a renamed type token would hide objects from a rule."""
    resources = dev("split50")

    def count(predicate: Callable[[PolicyResource], bool]) -> int:
        return sum(1 for r in resources if predicate(r))

    assert count(lambda r: rules._is_istio(r, "VirtualService")) == 5
    assert count(lambda r: rules._is_istio(r, "DestinationRule")) == 4
    assert count(lambda r: rules._is_istio(r, "Gateway")) == 1
    assert count(lambda r: r.type == rules.DEPLOYMENT) == 6
    assert count(lambda r: r.type == rules.SERVICE) >= 4
    assert count(rules._is_gateway_release) == 1
    assert sum(1 for _ in rules._containers(resources)) == 6


def test_production_is_read_from_the_tags_the_program_puts_on_aws_resources() -> None:
    assert rules.production_evidence(dev("delay")) == []
    evidence = rules.production_evidence(registrations("prod"))
    assert resource(evidence, "network-vpc"), "the prod VPC should carry environment=production"


def test_the_policy_copies_of_the_programs_markers_are_equal() -> None:
    assert rules.FAULT_INJECTION_ANNOTATION == policy_manifests.FAULT_INJECTION_ANNOTATION
    assert rules.FAULT_INJECTION_ALLOWED == policy_manifests.FAULT_INJECTION_ALLOWED
    assert rules.PRODUCTION_TAG == program.PRODUCTION_TAG


def test_the_program_marks_allowed_production_faults_exactly_as_the_policy_expects() -> None:
    ratings = resource(registrations("prod", PROD_FAULTS_ALLOWED), "traffic-vs-ratings")
    annotations = ratings.props["metadata"]["annotations"]
    assert annotations == {rules.FAULT_INJECTION_ANNOTATION: rules.FAULT_INJECTION_ALLOWED}
    assert "fault" in ratings.props["spec"]["http"][0]


def test_the_unknown_marker_is_the_mock_engines() -> None:
    assert rules.UNKNOWN == engine.UNKNOWN


# --- rule 1: weights ----------------------------------------------------------------------


def set_weights(*weights: int | None) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        for destination, weight in zip(props["spec"]["http"][0]["route"], weights, strict=True):
            if weight is None:
                destination.pop("weight", None)
            else:
                destination["weight"] = weight

    return change


def test_weights_of_60_and_50_are_a_violation() -> None:
    resources = mutated(dev("split50"), "traffic-vs-reviews", set_weights(60, 50))
    the_violation(
        rules.check_route_weights(resources),
        "VirtualService bookinfo/reviews [traffic-vs-reviews]",
        "spec.http[0].route[*].weight",
        "sum to 110",
        "reviews/v1=60, reviews/v3=50",
    )


def test_a_missing_weight_beside_another_destination_counts_as_zero() -> None:
    resources = mutated(dev("split50"), "traffic-vs-reviews", set_weights(50, None))
    the_violation(rules.check_route_weights(resources), "[traffic-vs-reviews]", "sum to 50")


def test_a_negative_weight_is_a_violation_even_when_the_sum_is_100() -> None:
    resources = mutated(dev("split50"), "traffic-vs-reviews", set_weights(110, -10))
    the_violation(
        rules.check_route_weights(resources), "spec.http[0].route[1].weight is -10", "0 to 100"
    )


def test_a_single_destination_with_an_explicit_weight_must_say_100() -> None:
    resources = mutated(dev("all-v1"), "traffic-vs-details", set_weights(100))
    assert rules.check_route_weights(resources) == []
    resources = mutated(dev("all-v1"), "traffic-vs-details", set_weights(50))
    the_violation(rules.check_route_weights(resources), "[traffic-vs-details]", "sum to 50")


def weighted(host: str, subset: str | None, weight: Any) -> dict[str, Any]:
    return {**to(host, subset), "weight": weight}


def test_weights_of_tcp_and_tls_routes_are_judged_like_http_ones() -> None:
    split = [weighted("reviews", "v1", 50), weighted("reviews", None, 40)]
    vs = PolicyResource(
        VS_TYPE,
        "vs-reviews",
        {
            "metadata": {"name": "reviews", "namespace": "bookinfo"},
            "spec": {"tcp": [{"route": split}], "tls": [{"route": split}]},
        },
    )
    tail = "sum to 90, not 100 (reviews/v1=50, reviews/-=40); traffic would not split as written"
    assert rules.check_route_weights([vs]) == [
        f"{REVIEWS_VS}: spec.tcp[0].route[*].weight {tail}",
        f"{REVIEWS_VS}: spec.tls[0].route[*].weight {tail}",
    ]


def test_every_route_is_judged_past_unknown_single_and_non_numeric_ones() -> None:
    http = [
        {"route": [weighted("reviews", "v1", UNKNOWN_VALUE), weighted("reviews", "v2", 10)]},
        {"route": [to("reviews", "v1")]},
        {"route": [weighted("reviews", "v1", "50"), weighted("reviews", "v2", 50)]},
        {"route": [weighted("reviews", "v1", True), weighted("reviews", "v2", 50)]},
        {"route": [weighted("reviews", "v1", 60.5), weighted("reviews", "v2", 39.5)]},
        {"route": [weighted("reviews", "v1", 110), weighted("reviews", "v2", -10)]},
        {"route": [weighted("reviews", "v1", 60), weighted("reviews", "v2", 50)]},
    ]
    assert rules.check_route_weights([virtual_service("reviews", http)]) == [
        f"{REVIEWS_VS}: spec.http[2].route[0].weight is '50', not a number",
        f"{REVIEWS_VS}: spec.http[3].route[0].weight is True, not a number",
        f"{REVIEWS_VS}: spec.http[4].route[0].weight is 60.5; Istio weights are whole numbers",
        f"{REVIEWS_VS}: spec.http[4].route[1].weight is 39.5; Istio weights are whole numbers",
        f"{REVIEWS_VS}: spec.http[5].route[1].weight is -10; weights are percentages from 0 to 100",
        f"{REVIEWS_VS}: spec.http[6].route[*].weight sum to 110, not 100 (reviews/v1=60, "
        "reviews/v2=50); traffic would not split as written",
    ]


@given(st.lists(st.integers(min_value=0, max_value=100), min_size=2, max_size=4))
def test_a_split_is_a_violation_exactly_when_its_weights_do_not_sum_to_100(
    weights: list[int],
) -> None:
    route = [{"destination": {"host": "reviews", "subset": f"v{i}"}} for i in range(len(weights))]
    for destination, weight in zip(route, weights, strict=True):
        destination["weight"] = weight
    vs = PolicyResource(
        "kubernetes:networking.istio.io/v1:VirtualService",
        "vs",
        {
            "metadata": {"name": "reviews"},
            "spec": {"hosts": ["reviews"], "http": [{"route": route}]},
        },
    )
    assert bool(rules.check_route_weights([vs])) == (sum(weights) != 100)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=2, max_size=2).map(sorted), st.booleans())
def test_every_split_the_config_accepts_passes_the_routing_rules(
    cuts: list[int], name_zero_weights: bool
) -> None:
    low, high = cuts
    weights = {"v1": low, "v2": high - low, "v3": 100 - high}
    if not name_zero_weights:
        weights = {subset: w for subset, w in weights.items() if w}
    overrides = (("mode", "split50"), ("splitWeights", json.dumps(weights)))
    resources = registrations("dev", overrides)
    assert rules.check_route_weights(resources) == []
    assert rules.check_routed_subsets(resources) == []


# --- rule 2: subsets exist and select pods ------------------------------------------------


def test_a_subset_missing_from_the_destination_rule_is_a_violation() -> None:
    def drop_v3(props: dict[str, Any]) -> None:
        props["spec"]["subsets"] = [s for s in props["spec"]["subsets"] if s["name"] != "v3"]

    resources = mutated(dev("split50"), "traffic-dr-reviews", drop_v3)
    the_violation(
        rules.check_routed_subsets(resources),
        "VirtualService bookinfo/reviews [traffic-vs-reviews]",
        "spec.http[0].route[1].destination.subset 'v3'",
        "DestinationRule bookinfo/reviews [traffic-dr-reviews]",
        "its subsets: v1, v2",
    )


def test_a_subset_of_a_host_without_destination_rule_is_a_violation() -> None:
    resources = without(dev("all-v1"), "traffic-dr-ratings")
    the_violation(
        rules.check_routed_subsets(resources),
        "[traffic-vs-ratings]",
        "spec.http[0].route[0].destination.subset 'v1'",
        "no DestinationRule has host ratings.bookinfo.svc.cluster.local",
    )


def test_a_destination_rule_in_another_namespace_does_not_define_a_short_host() -> None:
    def move(props: dict[str, Any]) -> None:
        props["metadata"]["namespace"] = "elsewhere"

    resources = mutated(dev("all-v1"), "traffic-dr-ratings", move)
    the_violation(rules.check_routed_subsets(resources), "[traffic-vs-ratings]", "ratings")


def test_a_subset_whose_pods_no_deployment_runs_is_a_violation() -> None:
    resources = without(dev("v3"), "bookinfo-reviews-v3")
    the_violation(
        rules.check_routed_subsets(resources),
        "[traffic-vs-reviews]",
        "spec.http[0].route[0].destination.subset 'v3'",
        "app=reviews, version=v3",
        "Service bookinfo/reviews [bookinfo-reviews-svc]",
        "no Deployment",
    )


def test_a_deployment_scaled_to_zero_runs_no_pods_for_its_subset() -> None:
    def scale_to_zero(props: dict[str, Any]) -> None:
        props["spec"]["replicas"] = 0

    resources = mutated(dev("v3"), "bookinfo-reviews-v3", scale_to_zero)
    the_violation(rules.check_routed_subsets(resources), "[traffic-vs-reviews]", "version=v3")


def test_subset_labels_only_count_together_with_the_services_selector() -> None:
    def select_other_app(props: dict[str, Any]) -> None:
        props["spec"]["selector"] = {"app": "reviewz"}

    resources = mutated(dev("all-v1"), "bookinfo-reviews-svc", select_other_app)
    the_violation(
        rules.check_routed_subsets(resources),
        "[traffic-vs-reviews]",
        "app=reviewz, version=v1",
    )


def test_a_routed_host_without_a_service_is_a_violation() -> None:
    resources = without(dev("all-v1"), "bookinfo-details-svc")
    the_violation(
        rules.check_routed_subsets(resources),
        "[traffic-vs-details]",
        "no Service details in namespace bookinfo",
    )


def test_fully_qualified_hosts_name_the_same_service_as_short_ones() -> None:
    fqdn = "reviews.bookinfo.svc.cluster.local"

    def route_by_fqdn(props: dict[str, Any]) -> None:
        for destination in props["spec"]["http"][0]["route"]:
            destination["destination"]["host"] = fqdn

    def rule_by_fqdn(props: dict[str, Any]) -> None:
        props["spec"]["host"] = fqdn

    by_vs = mutated(dev("split50"), "traffic-vs-reviews", route_by_fqdn)
    assert rules.check_routed_subsets(by_vs) == []
    assert rules.check_routed_subsets(mutated(by_vs, "traffic-dr-reviews", rule_by_fqdn)) == []


# --- rule 3: Gateway selector and the gateway chart's pod labels --------------------------


@pytest.mark.parametrize(
    ("release", "values", "app", "istio"),
    [
        ("istio-ingressgateway", {}, "istio-ingressgateway", "ingressgateway"),
        ("istio-ingress", {}, "istio-ingress", "ingress"),
        ("edge", {}, "edge", "edge"),
        ("istio-ingress", {"name": "istio-public"}, "istio-public", "public"),
        (
            "istio-ingress",
            {"labels": {"istio": "ingressgateway"}},
            "istio-ingress",
            "ingressgateway",
        ),
        ("edge", {"labels": {"app": "web", "team": "mesh"}}, "web", "edge"),
    ],
)
def test_gateway_pod_labels_follow_the_charts_helpers(
    release: str, values: dict[str, Any], app: str, istio: str
) -> None:
    labels = rules.gateway_pod_labels(release, values)
    assert (labels["app"], labels["istio"]) == (app, istio)
    assert labels["sidecar.istio.io/inject"] == "true"
    assert labels.get("team") == values.get("labels", {}).get("team")


def gateway_selects(selector: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        props["spec"]["selector"] = selector

    return change


def set_release(**props_: Any) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        props.update(props_)

    return change


def test_a_gateway_selecting_istio_ingress_misses_the_istio_ingressgateway_release() -> None:
    resources = mutated(dev("all-v1"), "bookinfo-gateway", gateway_selects({"istio": "ingress"}))
    the_violation(
        rules.check_gateway_selectors(resources),
        "Gateway bookinfo/bookinfo-gateway [bookinfo-gateway]",
        "spec.selector istio=ingress",
        "Release [istio-gateway] labels its pods app=istio-ingressgateway, istio=ingressgateway",
    )


def test_a_release_overriding_the_istio_label_moves_its_pods_away_from_the_selector() -> None:
    overridden = {"labels": {"istio": "ingress"}}
    resources = mutated(dev("all-v1"), "istio-gateway", set_release(values=overridden))
    the_violation(
        rules.check_gateway_selectors(resources),
        "[bookinfo-gateway]",
        "spec.selector istio=ingressgateway",
        "istio=ingress)",
    )


def test_a_release_overriding_the_istio_label_can_also_bring_its_pods_to_the_selector() -> None:
    renamed = set_release(name="edge", values={"labels": {"istio": "ingressgateway"}})
    assert rules.check_gateway_selectors(mutated(dev("all-v1"), "istio-gateway", renamed)) == []


def test_a_release_named_istio_ingress_matches_a_selector_istio_ingress() -> None:
    resources = mutated(dev("all-v1"), "istio-gateway", set_release(name="istio-ingress"))
    resources = mutated(resources, "bookinfo-gateway", gateway_selects({"istio": "ingress"}))
    assert rules.check_gateway_selectors(resources) == []


def test_values_name_overrides_the_release_name() -> None:
    renamed = set_release(values={"name": "istio-public"})
    the_violation(
        rules.check_gateway_selectors(mutated(dev("all-v1"), "istio-gateway", renamed)),
        "istio=public",
    )


def test_a_gateway_release_without_a_name_is_a_violation() -> None:
    def unnamed(props: dict[str, Any]) -> None:
        del props["name"]

    violations = rules.check_gateway_selectors(mutated(dev("all-v1"), "istio-gateway", unnamed))
    assert any("[istio-gateway]: name is not set" in v for v in violations), violations


def test_the_gateway_chart_is_recognised_from_an_oci_reference() -> None:
    oci = set_release(chart="oci://registry.istio.io/release/charts/gateway")
    assert rules.check_gateway_selectors(mutated(dev("all-v1"), "istio-gateway", oci)) == []


def test_a_gateway_with_no_gateway_release_in_the_stack_is_a_violation() -> None:
    the_violation(
        rules.check_gateway_selectors(without(dev("all-v1"), "istio-gateway")),
        "[bookinfo-gateway]",
        "installs no Helm release of chart 'gateway'",
    )


# --- rule 4: faults in production ---------------------------------------------------------


def annotate(value: str | None) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        if value is None:
            props["metadata"].pop("annotations", None)
        else:
            props["metadata"]["annotations"] = {rules.FAULT_INJECTION_ANNOTATION: value}

    return change


def test_a_fault_on_production_without_the_annotation_is_a_violation() -> None:
    resources = mutated(
        registrations("prod", PROD_FAULTS_ALLOWED), "traffic-vs-ratings", annotate(None)
    )
    the_violation(
        rules.check_production_faults(resources),
        "VirtualService bookinfo/ratings [traffic-vs-ratings]",
        "spec.http[0].fault injects delay",
        "environment=production",
        f'metadata.annotations["{rules.FAULT_INJECTION_ANNOTATION}"]: "allowed"',
    )


def test_a_fault_on_production_with_the_annotation_is_allowed() -> None:
    resources = registrations("prod", PROD_FAULTS_ALLOWED)
    assert resource(resources, "traffic-vs-ratings").props["metadata"]["annotations"]
    assert rules.check_production_faults(resources) == []


def test_an_annotation_with_another_value_does_not_allow_a_production_fault() -> None:
    resources = mutated(
        registrations("prod", PROD_FAULTS_ALLOWED), "traffic-vs-ratings", annotate("yes")
    )
    the_violation(rules.check_production_faults(resources), "[traffic-vs-ratings]")


def test_a_fault_on_a_development_stack_needs_no_annotation() -> None:
    assert rules.check_production_faults(dev("abort")) == []


def test_production_tags_alone_make_a_stack_production() -> None:
    def tag_production(props: dict[str, Any]) -> None:
        props["tags"]["environment"] = "production"

    resources = mutated(dev("abort"), "network-vpc", tag_production)
    the_violation(
        rules.check_production_faults(resources),
        "[traffic-vs-ratings]",
        "spec.http[0].fault injects abort",
        "network-vpc carry tag environment=production",
    )


# --- rules 5 and 6: containers ------------------------------------------------------------


def set_container(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        container = props["spec"]["template"]["spec"]["containers"][0]
        for key, value in fields.items():
            if value is None:
                container.pop(key, None)
            else:
                container[key] = value

    return change


NO_TAG = "has no tag or digest, so it pulls whatever :latest is at the time"
LATEST = "is tagged latest, which moves; pin a version tag or a digest"
NOT_A_REFERENCE = (
    "is not an image reference the kubelet can pull: [registry[:port]/]name[:tag][@digest], "
    "with a lower-case name"
)
SHA256 = "sha256:" + "0123456789abcdef" * 4


# distribution/reference's grammar (reference.go): reference := name [":" tag] ["@" digest],
# name := [domain "/"] path-component ["/" path-component]*, lower-case path components,
# domain := host [":" port], tag := [\w][\w.-]{0,127}; OCI digests sha256 (64 hex), sha512 (128).
@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("registry.istio.io/release/examples-bookinfo-reviews-v2:1.20.3", None),
        ("nginx@" + SHA256, None),
        ("nginx:1.27@" + SHA256, None),
        ("nginx@sha512:" + "0123456789abcdef" * 8, None),
        ("localhost:5000/app:2.1", None),  # a registry port is not a tag
        ("[::1]:5000/team/app:2.1", None),
        ("my__app_v2.x-y:1", None),
        ("", "is not set"),
        (None, "is not set"),
        ("nginx", NO_TAG),
        ("localhost:5000/app", NO_TAG),
        ("nginx:latest", LATEST),
        ("nginx:Latest", LATEST),  # registries treat tags case-sensitively; people do not
        ("nginx:", NOT_A_REFERENCE),
        ("Nginx:1.27", NOT_A_REFERENCE),
        ("nginx:1.27:latest", NOT_A_REFERENCE),
        ("nginx:-1", NOT_A_REFERENCE),
        ("my___app:1", NOT_A_REFERENCE),
        ("registry/-app:1", NOT_A_REFERENCE),
        (
            "nginx@sha256:abc",
            "has a malformed digest 'sha256:abc'; want sha256: and 64 lower-case hex characters "
            "(or sha512: and 128)",
        ),
        (
            "nginx@md5:" + "0" * 32,
            "has a malformed digest 'md5:00000000000000000000000000000000'; want sha256: and 64 "
            "lower-case hex characters (or sha512: and 128)",
        ),
    ],
)
def test_image_pin_problem(image: Any, problem: str | None) -> None:
    assert rules.image_pin_problem(image) == problem


def test_an_image_tagged_latest_is_a_violation() -> None:
    bad = "registry.istio.io/release/examples-bookinfo-reviews-v2:latest"
    resources = mutated(dev("all-v1"), "bookinfo-reviews-v2", set_container(image=bad))
    the_violation(
        rules.check_images_pinned(resources),
        "Deployment bookinfo/reviews-v2 [bookinfo-reviews-v2]",
        "spec.template.spec.containers[0].image",
        "'reviews'",
        "tagged latest",
    )


def test_an_image_without_tag_is_a_violation() -> None:
    bad = "registry.istio.io/release/examples-bookinfo-details-v1"
    resources = mutated(dev("all-v1"), "bookinfo-details-v1", set_container(image=bad))
    the_violation(
        rules.check_images_pinned(resources),
        "[bookinfo-details-v1]",
        "spec.template.spec.containers[0].image",
        "no tag or digest",
    )


def test_init_containers_are_checked_too() -> None:
    def add_init(props: dict[str, Any]) -> None:
        props["spec"]["template"]["spec"]["initContainers"] = [
            {"name": "wait", "image": "busybox", "resources": {"requests": {"cpu": "1m"}}}
        ]

    resources = mutated(dev("all-v1"), "bookinfo-ratings-v1", add_init)
    the_violation(rules.check_images_pinned(resources), "spec.initContainers[0].image")
    the_violation(rules.check_resource_requests(resources), "initContainers[0]", "no memory")


def test_a_container_without_requests_is_a_violation() -> None:
    resources = mutated(dev("all-v1"), "bookinfo-productpage-v1", set_container(resources=None))
    the_violation(
        rules.check_resource_requests(resources),
        "Deployment bookinfo/productpage-v1 [bookinfo-productpage-v1]",
        "spec.template.spec.containers[0].resources.requests",
        "'productpage'",
        "no cpu or memory",
    )


def test_a_container_requesting_only_cpu_is_a_violation_naming_memory() -> None:
    only_cpu = set_container(resources={"requests": {"cpu": "50m"}})
    resources = mutated(dev("all-v1"), "bookinfo-productpage-v1", only_cpu)
    the_violation(rules.check_resource_requests(resources), "no memory")


def test_limits_alone_count_as_requests_as_kubernetes_copies_them() -> None:
    limits = set_container(resources={"limits": {"cpu": "1", "memory": "1Gi"}})
    resources = mutated(dev("all-v1"), "bookinfo-productpage-v1", limits)
    assert rules.check_resource_requests(resources) == []


# --- the pack as pulumi_policy runs it ----------------------------------------------------


@functools.cache
def pack() -> dict[str, Any]:
    """policy/__main__.py as `pulumi.policy` runs it, but under another name: it then
    defines the policies without starting PolicyPack, whose constructor serves them over
    gRPC until killed (that path is tested below in a child process)."""
    return runpy.run_path(str(POLICY_DIR), run_name="bookinfo_policy_pack")


OPTIONS = PolicyResourceOptions(False, [], None, [], None, [], None)  # type: ignore[arg-type]


def engine_view(resources: Sequence[PolicyResource]) -> StackValidationArgs:
    """StackValidationArgs as pulumi_policy builds them: props behind its unknown-checking proxy."""
    return StackValidationArgs(
        [
            EnginePolicyResource(
                r.type,
                unknown_checking_proxy(dict(r.props)),
                "urn",
                r.name,
                OPTIONS,
                None,
                None,
                [],
                {},
            )
            for r in resources
        ]
    )


def urn_of(r: PolicyResource) -> str:
    return f"urn:pulumi:dev::bookinfo-mesh::{r.type}::{r.name}"


def resource_view(r: PolicyResource) -> ResourceValidationArgs:
    """ResourceValidationArgs as pulumi_policy's Analyze builds them for one resource."""
    return ResourceValidationArgs(
        r.type, unknown_checking_proxy(dict(r.props)), urn_of(r), r.name, OPTIONS, None
    )


def violations_reported(
    policy: ResourceValidationPolicy | StackValidationPolicy, resources: Sequence[PolicyResource]
) -> list[str]:
    """A stack policy sees all resources at once; a resource policy sees each on its own,
    as the engine calls it while registering, and must report against that resource."""
    reported: list[str] = []
    if isinstance(policy, StackValidationPolicy):
        policy.validate(engine_view(resources), lambda message, urn=None: reported.append(message))
        return reported
    for r in resources:

        def report(message: str, urn: str | None = None, expected: str = urn_of(r)) -> None:
            assert urn == expected, (urn, expected)
            reported.append(message)

        policy.validate(resource_view(r), report)
    return reported


def test_the_pack_wires_each_rule_as_a_mandatory_policy_of_its_kind() -> None:
    policies = pack()["POLICIES"]
    assert tuple(p.name for p in policies) == SIX_POLICIES, "the pack lost or gained a policy"
    assert [r.name for r in rules.RULES if r.per_resource] == list(PER_RESOURCE_RULES)
    for policy in policies:
        kind = (
            ResourceValidationPolicy if policy.name in PER_RESOURCE_RULES else StackValidationPolicy
        )
        assert type(policy) is kind, policy.name
        assert policy.enforcement_level is EnforcementLevel.MANDATORY, policy.name
        assert policy.description == RULES_BY_NAME[policy.name].description


def test_per_resource_rules_judge_each_resource_on_its_own() -> None:
    """What makes a rule safe to run per resource: over any set of resources it reports
    exactly what it reports for each resource alone, in the same order."""
    bad_image = set_container(image="nginx:latest", resources=None)
    cases = [
        *(registrations(stack, overrides) for stack, overrides in PROGRAM_RUNS),
        mutated(dev("split50"), "traffic-vs-reviews", set_weights(60, 50)),
        mutated(dev("all-v1"), "bookinfo-reviews-v2", bad_image),
    ]
    for rule in (r for r in rules.RULES if r.per_resource):
        reported = 0
        for resources in cases:
            alone = [v for r in resources for v in rule.check([r])]
            assert rule.check(resources) == alone, rule.name
            reported += len(alone)
        assert reported >= 1, f"{rule.name}: the mutations should be violations"


def test_the_pack_reports_nothing_for_the_program_and_each_mutation_through_pulumi_policy() -> None:
    policies = {p.name: p for p in pack()["POLICIES"]}
    program = registrations("prod", PROD_FAULTS_ALLOWED)
    for name, policy in policies.items():
        assert violations_reported(policy, program) == [], name
    bad = mutated(program, "traffic-vs-ratings", annotate(None))
    reported = violations_reported(policies["no-fault-injection-in-production"], bad)
    the_violation(reported, "[traffic-vs-ratings]")
    bad = mutated(program, "traffic-vs-reviews", set_weights(50))
    reported = violations_reported(policies["virtual-service-weights-sum-to-100"], bad)
    the_violation(reported, "[traffic-vs-reviews]", "sum to 50")


def test_values_unknown_in_preview_are_skipped_not_misreported() -> None:
    policies = {p.name: p for p in pack()["POLICIES"]}
    unknown = mutated(
        dev("all-v1"), "bookinfo-reviews-v2", set_container(image=UNKNOWN_STRING_VALUE)
    )
    assert violations_reported(policies["container-images-pinned"], unknown) == []
    plain = pack()["plain"](unknown_checking_proxy({"a": [UNKNOWN_STRING_VALUE, {"b": 1}]}))
    assert plain == {"a": [rules.UNKNOWN, {"b": 1}]}


def test_rules_that_cannot_prove_absence_in_preview_stay_silent() -> None:
    def unknown_subsets(props: dict[str, Any]) -> None:
        props["spec"]["subsets"] = rules.UNKNOWN

    def unknown_release_name(props: dict[str, Any]) -> None:
        props["name"] = rules.UNKNOWN

    resources = mutated(
        without(dev("v3"), "bookinfo-reviews-v3"), "traffic-dr-reviews", unknown_subsets
    )
    assert rules.check_routed_subsets(resources) == []
    resources = mutated(dev("all-v1"), "istio-gateway", unknown_release_name)
    assert (
        rules.check_gateway_selectors(
            mutated(resources, "bookinfo-gateway", gateway_selects({"istio": "x"}))
        )
        == []
    )


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack served exactly as the Pulumi CLI starts it: python -u -m pulumi.policy."""
    child = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(POLICY_DIR)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=POLICY_DIR,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)
        port = child.stdout.readline().strip() if ready else b""
        if not port.isdigit():
            child.kill()
            _, stderr = child.communicate(timeout=10)
            pytest.fail(f"the policy pack did not start: {stderr.decode(errors='replace')}")
        with grpc.insecure_channel(f"127.0.0.1:{int(port)}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        child.terminate()
        child.wait(timeout=10)


def analyze_stack(
    stub: analyzer_pb2_grpc.AnalyzerStub, resources: Sequence[PolicyResource]
) -> list[Any]:
    def as_proto(r: PolicyResource) -> analyzer_pb2.AnalyzerResource:
        props = json_format.ParseDict(r.props, struct_pb2.Struct())
        return analyzer_pb2.AnalyzerResource(type=r.type, name=r.name, urn=r.name, properties=props)

    request = analyzer_pb2.AnalyzeStackRequest(resources=[as_proto(r) for r in resources])
    return list(stub.AnalyzeStack(request, timeout=30).diagnostics)


def analyze(stub: analyzer_pb2_grpc.AnalyzerStub, r: PolicyResource) -> list[Any]:
    """The engine's per-resource call, made as each resource is registered."""
    props = json_format.ParseDict(r.props, struct_pb2.Struct())
    request = analyzer_pb2.AnalyzeRequest(type=r.type, properties=props, urn=urn_of(r), name=r.name)
    return list(stub.Analyze(request, timeout=30).diagnostics)


def test_the_served_pack_lists_six_mandatory_policies_of_their_kinds(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "bookinfo-mesh"
    assert tuple(p.name for p in info.policies) == SIX_POLICIES, "the pack lost a policy"
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}
    assert [p.policy_type for p in info.policies] == [
        analyzer_pb2.POLICY_TYPE_RESOURCE
        if n in PER_RESOURCE_RULES
        else analyzer_pb2.POLICY_TYPE_STACK
        for n in SIX_POLICIES
    ]
    assert {
        p.name for p in info.policies if p.policy_type == analyzer_pb2.POLICY_TYPE_RESOURCE
    } == set(PER_RESOURCE_RULES)


def test_the_served_pack_passes_the_program_and_blocks_a_stack_mutation(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    program = dev("split50")
    assert analyze_stack(analyzer, program) == []

    def drop_v3(props: dict[str, Any]) -> None:
        props["spec"]["subsets"] = [s for s in props["spec"]["subsets"] if s["name"] != "v3"]

    diagnostics = analyze_stack(analyzer, mutated(program, "traffic-dr-reviews", drop_v3))
    assert [d.policyName for d in diagnostics] == ["routed-subsets-exist-and-select-pods"]
    assert diagnostics[0].enforcementLevel == analyzer_pb2.MANDATORY
    assert "[traffic-vs-reviews]" in diagnostics[0].message
    # The weights rule runs per resource now, so the stack analysis does not report it again.
    bad_weights = mutated(program, "traffic-vs-reviews", set_weights(60, 50))
    assert analyze_stack(analyzer, bad_weights) == []


def test_the_served_pack_rejects_a_bad_resource_as_it_is_registered(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    program = dev("split50")
    for r in program:
        assert analyze(analyzer, r) == [], r.name
    bad = resource(
        mutated(program, "traffic-vs-reviews", set_weights(60, 50)), "traffic-vs-reviews"
    )
    diagnostics = analyze(analyzer, bad)
    assert [d.policyName for d in diagnostics] == ["virtual-service-weights-sum-to-100"]
    assert diagnostics[0].enforcementLevel == analyzer_pb2.MANDATORY
    assert diagnostics[0].urn == urn_of(bad)
    assert "[traffic-vs-reviews]" in diagnostics[0].message
    assert "sum to 110" in diagnostics[0].message


# --- gaps closed in issue #10 -------------------------------------------------------------


def test_fractional_weights_that_sum_to_100_are_a_violation() -> None:
    resources = mutated(dev("split50"), "traffic-vs-reviews", set_weights(50.5, 49.5))
    violations = rules.check_route_weights(resources)
    assert len(violations) == 2, f"expected one violation per fractional weight: {violations}"
    assert "route[0].weight is 50.5" in violations[0] and "whole numbers" in violations[0]
    assert "route[1].weight is 49.5" in violations[1], violations


def test_a_zero_cpu_request_is_a_violation() -> None:
    zero = set_container(resources={"requests": {"cpu": "0", "memory": "128Mi"}})
    resources = mutated(dev("all-v1"), "bookinfo-productpage-v1", zero)
    the_violation(rules.check_resource_requests(resources), "no cpu (or a zero one)")


def test_a_zero_memory_request_on_an_init_container_is_a_violation() -> None:
    def add_init(props: dict[str, Any]) -> None:
        props["spec"]["template"]["spec"]["initContainers"] = [
            {
                "name": "wait",
                "image": "busybox:1.37",
                "resources": {"requests": {"cpu": "10m", "memory": "0Mi"}},
            }
        ]

    resources = mutated(dev("all-v1"), "bookinfo-ratings-v1", add_init)
    the_violation(rules.check_resource_requests(resources), "initContainers[0]", "no memory")


@pytest.mark.parametrize("tag", ["Latest", "LATEST"])
def test_a_latest_tag_in_another_case_is_a_violation(tag: str) -> None:
    resources = mutated(
        dev("all-v1"), "bookinfo-productpage-v1", set_container(image=f"nginx:{tag}")
    )
    the_violation(rules.check_images_pinned(resources), "tagged latest")


@pytest.mark.parametrize(
    "digest", ["sha256:" + "a" * 32, "sha256:" + "A" * 64, "sha256:" + "a" * 65, "md5:" + "a" * 64]
)
def test_a_digest_that_is_not_64_lower_case_hex_characters_is_a_violation(digest: str) -> None:
    image = set_container(image=f"docker.io/istio/examples-bookinfo-productpage-v1@{digest}")
    resources = mutated(dev("all-v1"), "bookinfo-productpage-v1", image)
    the_violation(rules.check_images_pinned(resources), "malformed digest", "64 lower-case hex")


def test_a_well_formed_digest_passes() -> None:
    image = set_container(image="nginx@sha256:" + "0123456789abcdef" * 4)
    resources = mutated(dev("all-v1"), "bookinfo-productpage-v1", image)
    assert rules.check_images_pinned(resources) == []


def test_a_subset_whose_labels_select_another_versions_pods_is_a_violation() -> None:
    def v3_selects_v1(props: dict[str, Any]) -> None:
        for subset in props["spec"]["subsets"]:
            if subset["name"] == "v3":
                subset["labels"] = {"version": "v1"}

    resources = mutated(dev("v3"), "traffic-dr-reviews", v3_selects_v1)
    the_violation(
        rules.check_routed_subsets(resources),
        "subset 'v3'",
        "select pods of version v1",
        "reaches another version",
    )


def test_a_mirror_to_an_undefined_subset_is_a_violation() -> None:
    def mirror(props: dict[str, Any]) -> None:
        props["spec"]["http"][0]["mirror"] = {"host": "reviews", "subset": "v9"}

    resources = mutated(dev("all-v1"), "traffic-vs-reviews", mirror)
    the_violation(rules.check_routed_subsets(resources), "spec.http[0].mirror.subset 'v9'")


# --- crafted resources: whole messages and edge cases -------------------------------------
# Small hand-written stacks, so each test shows every resource a rule sees. Expected messages
# are written out whole: they are what a user reads when `pulumi up` is blocked.

VS_TYPE = "kubernetes:networking.istio.io/v1:VirtualService"
DR_TYPE = "kubernetes:networking.istio.io/v1beta1:DestinationRule"
GATEWAY_TYPE = "kubernetes:networking.istio.io/v1:Gateway"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
# The engine's marker for a value it does not know yet (preview), written out as the oracle.
UNKNOWN_VALUE = "[unknown]"


def to(host: str, subset: str | None = None) -> dict[str, Any]:
    """One route entry sending all its traffic to host (and subset)."""
    target = {"host": host} if subset is None else {"host": host, "subset": subset}
    return {"destination": target}


def virtual_service(
    name: str, http: list[dict[str, Any]], namespace: str | None = "bookinfo", **metadata: Any
) -> PolicyResource:
    meta: dict[str, Any] = {"name": name, **metadata}
    if namespace is not None:
        meta["namespace"] = namespace
    return PolicyResource(VS_TYPE, f"vs-{name}", {"metadata": meta, "spec": {"http": http}})


def destination_rule(
    pulumi_name: str,
    host: Any,
    subsets: dict[str, dict[str, str]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> PolicyResource:
    spec: dict[str, Any] = {"host": host}
    if subsets is not None:
        spec["subsets"] = [{"name": n, "labels": labels} for n, labels in subsets.items()]
    meta = {"name": pulumi_name.removeprefix("dr-"), "namespace": "bookinfo"}
    return PolicyResource(DR_TYPE, pulumi_name, {"metadata": metadata or meta, "spec": spec})


def service(name: str, selector: Any, namespace: str = "bookinfo") -> PolicyResource:
    spec = {} if selector is None else {"selector": selector}
    meta = {"name": name, "namespace": namespace}
    return PolicyResource(rules.SERVICE, f"svc-{name}", {"metadata": meta, "spec": spec})


def deployment(
    pulumi_name: str,
    labels: dict[str, Any],
    replicas: int = 1,
    name: str | None = "",
    containers: list[dict[str, Any]] | None = None,
) -> PolicyResource:
    meta = {"name": pulumi_name if name == "" else name, "namespace": "bookinfo"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": containers or []}}
    spec = {"replicas": replicas, "template": template}
    return PolicyResource(rules.DEPLOYMENT, pulumi_name, {"metadata": meta, "spec": spec})


REVIEWS_WORLD = (
    service("reviews", {"app": "reviews"}),
    deployment("reviews-v1", {"app": "reviews", "version": "v1"}),
    deployment("reviews-v2", {"app": "reviews", "version": "v2"}),
    destination_rule("dr-reviews", "reviews", {"v1": {"version": "v1"}, "v2": {"version": "v2"}}),
)
REVIEWS_VS = "VirtualService bookinfo/reviews [vs-reviews]"
REVIEWS_DR = "DestinationRule bookinfo/reviews [dr-reviews]"


@pytest.mark.parametrize(
    ("metadata", "described"),
    [
        ({"name": "reviews", "namespace": "bookinfo"}, "VirtualService bookinfo/reviews [vs-x]"),
        ({"name": "reviews"}, "VirtualService default/reviews [vs-x]"),
        ({"name": 123, "namespace": "bookinfo"}, "VirtualService [vs-x]"),
        ({"name": "", "namespace": "bookinfo"}, "VirtualService [vs-x]"),
        ({"name": UNKNOWN_VALUE, "namespace": "bookinfo"}, "VirtualService [vs-x]"),
        ({"name": "reviews", "namespace": UNKNOWN_VALUE}, "VirtualService [vs-x]"),
    ],
)
def test_a_resource_is_named_by_namespace_and_name_only_when_both_are_known(
    metadata: dict[str, Any], described: str
) -> None:
    assert rules.describe(PolicyResource(VS_TYPE, "vs-x", {"metadata": metadata})) == described


def test_a_route_to_a_host_without_destination_rule_reads_whole() -> None:
    vs = virtual_service("reviews", [{"route": [to("reviews", "v1")]}])
    assert rules.check_routed_subsets([vs]) == [
        f"{REVIEWS_VS}: spec.http[0].route[0].destination.subset 'v1' of host 'reviews': "
        "no DestinationRule has host reviews.bookinfo.svc.cluster.local (short names resolve "
        "in the rule's namespace); Istio answers 503"
    ]


def test_each_problem_of_a_route_is_reported_not_only_the_first() -> None:
    """A route's later destinations are still checked after an earlier one is skipped or bad."""
    vs = virtual_service(
        "reviews",
        [
            {
                "route": [
                    to("reviews"),  # no subset: nothing to check
                    to("external.example.com", "v1"),  # not an in-cluster Service
                    to("legacy", "v1"),  # a Service without selector
                    to("ratings", "v1"),  # no DestinationRule
                    to("reviews", "v9"),  # not defined
                    to("details", "v1"),  # no Service
                    to("reviews", "v3"),  # defined, but no pods
                ]
            }
        ],
    )
    resources = [
        *REVIEWS_WORLD[:3],
        vs,
        destination_rule(
            "dr-reviews", "reviews", {"v1": {"version": "v1"}, "v3": {"version": "v3"}}
        ),
        destination_rule("dr-external", "external.example.com", {"v1": {}}),
        destination_rule("dr-legacy", "legacy", {"v1": {}}),
        destination_rule("dr-details", "details", {"v1": {"version": "v1"}}),
        service("legacy", None),
    ]
    where = f"{REVIEWS_VS}: spec.http[0].route"
    assert rules.check_routed_subsets(resources) == [
        f"{where}[3].destination.subset 'v1' of host 'ratings': no DestinationRule has host "
        "ratings.bookinfo.svc.cluster.local (short names resolve in the rule's namespace); "
        "Istio answers 503",
        f"{where}[4].destination.subset 'v9' is not defined by {REVIEWS_DR} for host "
        "'reviews' (its subsets: v1, v3); Istio answers 503",
        f"{where}[5].destination.subset 'v1' of host 'details': no Service details in "
        "namespace bookinfo, so no pod can receive its traffic",
        f"{where}[6].destination.subset 'v3' of host 'reviews' selects pods labelled "
        "app=reviews, version=v3 (selector of Service bookinfo/reviews [svc-reviews] and "
        f"subset labels of {REVIEWS_DR}), but no Deployment (or other workload) in namespace "
        "bookinfo runs such pods",
    ]


def test_a_subset_undefined_by_every_rule_of_its_host_names_them_all() -> None:
    vs = virtual_service("reviews", [{"route": [to("reviews", "v1")]}])
    first = destination_rule("dr-reviews", "reviews")
    second = destination_rule(
        "dr-reviews-2",
        "reviews.bookinfo.svc.cluster.local",
        metadata={"name": "reviews-2", "namespace": "bookinfo"},
    )
    assert rules.check_routed_subsets([vs, first, second]) == [
        f"{REVIEWS_VS}: spec.http[0].route[0].destination.subset 'v1' is not defined by "
        f"{REVIEWS_DR}, DestinationRule bookinfo/reviews-2 [dr-reviews-2] for host 'reviews' "
        "(its subsets: none); Istio answers 503"
    ]


def test_pods_of_a_service_in_a_namespace_without_workloads_are_missing() -> None:
    vs = virtual_service("reviews", [{"route": [to("reviews.shop.svc.cluster.local", "v1")]}])
    shop_rule = destination_rule(
        "dr-shop", "reviews", {"v1": {"version": "v1"}}, {"name": "reviews", "namespace": "shop"}
    )
    assert rules.check_routed_subsets([vs, shop_rule, service("reviews", {}, "shop")]) == [
        f"{REVIEWS_VS}: spec.http[0].route[0].destination.subset 'v1' of host 'reviews' "
        "selects pods labelled version=v1 (selector of Service shop/reviews [svc-reviews] "
        "and subset labels of DestinationRule shop/reviews [dr-shop]), but no Deployment "
        "(or other workload) in namespace shop runs such pods"
    ]


def test_a_subset_without_labels_selecting_several_versions_names_them() -> None:
    unlabelled_v3 = destination_rule("dr-reviews", "reviews", {"v3": {}})
    vs = virtual_service("reviews", [{"route": [to("reviews", "v3")]}])
    resources = [*REVIEWS_WORLD[:3], unlabelled_v3, vs]
    assert rules.check_routed_subsets(resources) == [
        f"{REVIEWS_VS}: spec.http[0].route[0].destination.subset 'v3' of host 'reviews': its "
        f"labels (none) in {REVIEWS_DR} select pods of version v1, v2, so traffic meant for "
        "v3 reaches another version"
    ]


def test_a_canary_subset_named_after_a_version_must_select_that_version() -> None:
    dr = destination_rule("dr-reviews", "reviews", {"v2-canary-1": {"version": "v1"}})
    vs = virtual_service("reviews", [{"route": [to("reviews", "v2-canary-1")]}])
    assert rules.check_routed_subsets([*REVIEWS_WORLD[:3], dr, vs]) == [
        f"{REVIEWS_VS}: spec.http[0].route[0].destination.subset 'v2-canary-1' of host "
        f"'reviews': its labels version=v1 in {REVIEWS_DR} select pods of version v1, so "
        "traffic meant for v2 reaches another version"
    ]


def test_a_canary_subset_selecting_the_version_it_is_named_after_passes() -> None:
    dr = destination_rule("dr-reviews", "reviews", {"v2-canary": {"version": "v2"}})
    vs = virtual_service("reviews", [{"route": [to("reviews", "v2-canary")]}])
    assert rules.check_routed_subsets([*REVIEWS_WORLD[:3], dr, vs]) == []


@pytest.mark.parametrize("subset", ["stable", "v2x", "version2", "v-2"])
def test_a_subset_whose_name_promises_no_version_may_select_any(subset: str) -> None:
    dr = destination_rule("dr-reviews", "reviews", {subset: {"version": "v1"}})
    vs = virtual_service("reviews", [{"route": [to("reviews", subset)]}])
    assert rules.check_routed_subsets([*REVIEWS_WORLD[:3], dr, vs]) == []


def test_mirrors_to_an_undefined_subset_are_violations() -> None:
    http = [
        {
            "route": [to("reviews", "v1")],
            "mirrors": [
                {"destination": {"host": "reviews", "subset": "v2"}, "percentage": {"value": 5}},
                {"destination": {"host": "reviews", "subset": "v9"}},
            ],
        }
    ]
    vs = virtual_service("reviews", http)
    assert rules.check_routed_subsets([*REVIEWS_WORLD, vs]) == [
        f"{REVIEWS_VS}: spec.http[0].mirrors[1].destination.subset 'v9' is not defined by "
        f"{REVIEWS_DR} for host 'reviews' (its subsets: v1, v2); Istio answers 503"
    ]


def test_the_closest_wildcard_destination_rule_applies() -> None:
    cluster = destination_rule(
        "dr-cluster", "*.svc.cluster.local", {"v1": {}}, {"name": "all", "namespace": "mesh"}
    )
    namespace = destination_rule(
        "dr-bookinfo", "*.bookinfo.svc.cluster.local", {"v2": {}}, {"name": "bookinfo"}
    )
    vs = virtual_service("reviews", [{"route": [to("reviews", "v3")]}])
    assert rules.check_routed_subsets([cluster, namespace, vs]) == [
        f"{REVIEWS_VS}: spec.http[0].route[0].destination.subset 'v3' is not defined by "
        "DestinationRule default/bookinfo [dr-bookinfo] for host 'reviews' (its subsets: v2); "
        "Istio answers 503"
    ]


def test_a_wildcard_destination_rule_defines_subsets_for_the_hosts_it_covers() -> None:
    for host in ("*", "*.bookinfo.svc.cluster.local"):
        wildcard = destination_rule(
            "dr-any", host, {"v1": {"version": "v1"}}, {"name": "any", "namespace": "mesh"}
        )
        vs = virtual_service("reviews", [{"route": [to("reviews", "v1")]}])
        assert rules.check_routed_subsets([*REVIEWS_WORLD[:3], wildcard, vs]) == [], host


@pytest.mark.parametrize(
    "host", ["reviews.bookinfo.svc.cluster.local", "shop.myexample.com", "example.com"]
)
def test_a_wildcard_destination_rule_does_not_cover_other_domains(host: str) -> None:
    wildcard = destination_rule("dr-any", "*.example.com", {"v1": {}})
    vs = virtual_service("reviews", [{"route": [to(host, "v1")]}])
    assert rules.check_routed_subsets([wildcard, vs]) == [
        f"{REVIEWS_VS}: spec.http[0].route[0].destination.subset 'v1' of host {host!r}: no "
        f"DestinationRule has host {host} (short names resolve in the rule's namespace); "
        "Istio answers 503"
    ]


@pytest.mark.parametrize(
    "host", ["shop.example.com", "api.eu.shop.example.com", "*.bookinfo.svc.cluster.local"]
)
def test_hosts_that_name_no_single_service_are_not_checked_for_pods(host: str) -> None:
    rule = destination_rule("dr-external", host, {"v1": {"version": "v1"}})
    vs = virtual_service("reviews", [{"route": [to(host, "v1")]}])
    assert rules.check_routed_subsets([*REVIEWS_WORLD, rule, vs]) == []


def test_destination_rules_without_name_or_host_are_ignored_not_fatal() -> None:
    vs = virtual_service("reviews", [{"route": [to("reviews", "v1")]}])
    no_host = destination_rule("dr-no-host", None, {"v1": {}})
    no_name = destination_rule("dr-no-name", "reviews", {"v9": {}}, {"namespace": "bookinfo"})
    assert rules.check_routed_subsets([no_host, no_name, *REVIEWS_WORLD, vs]) == []
    assert rules.check_routed_subsets([no_host, no_name, vs]) == [
        f"{REVIEWS_VS}: spec.http[0].route[0].destination.subset 'v1' of host 'reviews': no "
        "DestinationRule has host reviews.bookinfo.svc.cluster.local (short names resolve in "
        "the rule's namespace); Istio answers 503"
    ]


def test_workloads_without_name_or_pods_do_not_hide_the_workloads_after_them() -> None:
    unnamed = deployment("unnamed", {"app": "reviews", "version": "v9"}, name=None)
    idle = deployment("idle", {"app": "reviews", "version": "v0"}, replicas=0)
    vs = virtual_service("reviews", [{"route": [to("reviews", "v1")]}])
    assert rules.check_routed_subsets([unnamed, idle, *REVIEWS_WORLD, vs]) == []


def test_an_unnamed_virtual_service_does_not_hide_the_next_one() -> None:
    unnamed = virtual_service("x", [{"route": [to("reviews", "v9")]}], namespace=UNKNOWN_VALUE)
    named = virtual_service("reviews", [{"route": [to("reviews", "v9")]}])
    violations = rules.check_routed_subsets([*REVIEWS_WORLD, unnamed, named])
    the_violation(violations, f"{REVIEWS_VS}: spec.http[0].route[0].destination.subset 'v9'")


def test_unknown_values_in_preview_silence_the_subset_rule() -> None:
    """Each of these hides what the rule would need to prove a subset missing or empty."""
    missing_v9 = virtual_service("reviews", [{"route": [to("reviews", "v9")]}])
    unknown_rule_namespace = destination_rule(
        "dr-other", "ratings", {}, {"name": "ratings", "namespace": UNKNOWN_VALUE}
    )
    assert rules.check_routed_subsets([*REVIEWS_WORLD, unknown_rule_namespace, missing_v9]) == []
    unknown_subset = virtual_service("reviews", [{"route": [to("reviews", UNKNOWN_VALUE)]}])
    assert rules.check_routed_subsets([*REVIEWS_WORLD, unknown_subset]) == []
    to_v1 = virtual_service("reviews", [{"route": [to("reviews", "v1")]}])
    unknown_version = deployment("reviews-v1", {"app": "reviews", "version": UNKNOWN_VALUE})
    world = [unknown_version, *REVIEWS_WORLD[2:]]
    assert rules.check_routed_subsets([*world, REVIEWS_WORLD[0], to_v1]) == []
    unknown_selector = service("reviews", {"app": UNKNOWN_VALUE})
    assert rules.check_routed_subsets([*REVIEWS_WORLD[1:], unknown_selector, to_v1]) == []


def test_gateway_pod_labels_default_to_the_charts_own_name() -> None:
    assert rules.gateway_pod_labels("", {}) == {
        "sidecar.istio.io/inject": "true",
        "app": "istio-ingressgateway",
        "istio": "ingressgateway",
        "app.kubernetes.io/name": "istio-ingressgateway",
        "app.kubernetes.io/part-of": "istio",
    }


def test_gateway_pod_labels_carry_release_revision_network_and_extra_labels() -> None:
    """Null app/istio overrides fall back to the chart's defaults and are not copied."""
    values = {
        "revision": "1-24",
        "networkGateway": "network-east",
        "labels": {"app": None, "istio": None, "team": "mesh"},
    }
    assert rules.gateway_pod_labels("istio-ingress", values) == {
        "sidecar.istio.io/inject": "true",
        "app": "istio-ingress",
        "istio": "ingress",
        "app.kubernetes.io/name": "istio-ingress",
        "app.kubernetes.io/part-of": "istio",
        "app.kubernetes.io/instance": "istio-ingress",
        "istio.io/rev": "1-24",
        "topology.istio.io/network": "network-east",
        "team": "mesh",
    }


def gateway_release(pulumi_name: str, **props: Any) -> PolicyResource:
    return PolicyResource(RELEASE_TYPE, pulumi_name, {"chart": "gateway", **props})


def istio_gateway(name: str, selector: Any) -> PolicyResource:
    props = {"metadata": {"name": name, "namespace": "bookinfo"}, "spec": {"selector": selector}}
    return PolicyResource(GATEWAY_TYPE, f"gw-{name}", props)


def test_every_gateway_is_judged_and_each_miss_names_every_gateway_release() -> None:
    releases = [
        gateway_release("rel-ingress", name="istio-ingressgateway"),
        gateway_release("rel-edge", name="edge", values={}),
    ]
    gateways = [
        istio_gateway("preview", {"istio": UNKNOWN_VALUE}),
        istio_gateway("empty", {}),
        istio_gateway("ingress", {"istio": "ingressgateway"}),
        istio_gateway("public", {"istio": "public", "app": "edge"}),
    ]
    assert rules.check_gateway_selectors([*releases, *gateways]) == [
        "Gateway bookinfo/empty [gw-empty]: spec.selector is empty or missing",
        "Gateway bookinfo/public [gw-public]: spec.selector app=edge, istio=public matches no "
        "ingress gateway pod (Release [rel-ingress] labels its pods app=istio-ingressgateway, "
        "istio=ingressgateway; Release [rel-edge] labels its pods app=edge, istio=edge); the "
        "gateway would accept no traffic",
    ]


def test_a_gateway_release_named_only_in_its_values_is_named() -> None:
    release = gateway_release("rel", values={"name": "istio-ingressgateway"})
    gateway = istio_gateway("ingress", {"istio": "ingressgateway"})
    assert rules.check_gateway_selectors([release, gateway]) == []


def test_an_unnamed_gateway_release_reads_whole() -> None:
    gateway = istio_gateway("ingress", {"istio": "ingressgateway"})
    assert rules.check_gateway_selectors([gateway_release("rel", values={}), gateway]) == [
        "Release [rel]: name is not set, so Pulumi names the Helm release with a random suffix "
        "and the chart derives the pods' istio label from it; set name (or values.labels.istio)",
        "Gateway bookinfo/ingress [gw-ingress]: spec.selector istio=ingressgateway matches no "
        "ingress gateway pod (the stack installs no Helm release of chart 'gateway'); the "
        "gateway would accept no traffic",
    ]


def test_unknown_gateway_release_values_silence_the_selector_rule() -> None:
    release = gateway_release("rel", name="edge", values={"labels": {"istio": UNKNOWN_VALUE}})
    gateway = istio_gateway("ingress", {"istio": "ingressgateway"})
    assert rules.check_gateway_selectors([release, gateway]) == []


def test_a_gateway_chart_reference_with_a_trailing_slash_is_the_gateway_chart() -> None:
    release = gateway_release(
        "rel", name="istio-ingressgateway", chart="oci://registry.istio.io/release/charts/gateway/"
    )
    gateway = istio_gateway("ingress", {"istio": "ingressgateway"})
    assert rules.check_gateway_selectors([release, gateway]) == []


def test_production_faults_read_whole_and_count_every_tagged_resource() -> None:
    """Tags or tagsAll mark production; a fault of unknown shape is still a fault."""
    vpc = PolicyResource("aws:ec2/vpc:Vpc", "network-vpc", {"tags": {"environment": "production"}})
    bucket = PolicyResource(
        "aws:s3/bucket:Bucket", "logs", {"tags": {}, "tagsAll": {"environment": "production"}}
    )
    faults = [
        {"fault": {"delay": {"fixedDelay": "7s"}, "abort": {"httpStatus": 500}}},
        {"fault": UNKNOWN_VALUE},
    ]
    vs = virtual_service("ratings", faults)
    tail = (
        "but the stack is production (network-vpc and 1 more carry tag environment=production); "
        'only metadata.annotations["bookinfo-mesh/fault-injection"]: "allowed" allows that '
        "(stack config allowFaultInjection: true sets it)"
    )
    ratings = "VirtualService bookinfo/ratings [vs-ratings]"
    assert rules.check_production_faults([vpc, bucket, vs]) == [
        f"{ratings}: spec.http[0].fault injects abort/delay {tail}",
        f"{ratings}: spec.http[1].fault injects fault {tail}",
    ]


def test_a_bare_pods_containers_are_checked_and_unknowns_skipped() -> None:
    pod = PolicyResource(
        "kubernetes:core/v1:Pod",
        "debug-pod",
        {
            "metadata": {"name": "debug"},
            "spec": {
                "initContainers": [
                    {"name": "wait", "image": UNKNOWN_VALUE, "resources": UNKNOWN_VALUE}
                ],
                "containers": [{"name": "shell", "image": "busybox"}],
            },
        },
    )
    assert rules.check_images_pinned([pod]) == [
        "Pod default/debug [debug-pod]: spec.containers[0].image 'busybox' of container "
        "'shell' has no tag or digest, so it pulls whatever :latest is at the time"
    ]
    assert rules.check_resource_requests([pod]) == [
        "Pod default/debug [debug-pod]: spec.containers[0].resources.requests of container "
        "'shell' has no cpu or memory (or a zero one); the scheduler would place it as if it "
        "needed nothing"
    ]


@pytest.mark.parametrize(
    ("resources", "missing"),
    [
        ({"requests": {"cpu": 1, "memory": 134217728}}, None),
        ({"requests": {"cpu": 0, "memory": 134217728}}, "cpu"),
        ({"requests": {"cpu": 0.0, "memory": 1e9}}, "cpu"),
        ({"requests": {"cpu": 0.5, "memory": 1e9}}, None),
        ({"requests": {"cpu": "", "memory": ""}, "limits": {"cpu": "1", "memory": "1Gi"}}, None),
        ({"limits": {"cpu": "", "memory": "1Gi"}}, "cpu"),
    ],
)
def test_numeric_and_empty_quantities(resources: dict[str, Any], missing: str | None) -> None:
    """Plain numbers are quantities; an empty request defers to the limit; empty is none."""
    app = deployment("app", {"app": "app"}, containers=[{"name": "app", "resources": resources}])
    expected = [
        "Deployment bookinfo/app [app]: spec.template.spec.containers[0].resources.requests of "
        f"container 'app' has no {missing} (or a zero one); the scheduler would place it as if "
        "it needed nothing"
    ]
    assert rules.check_resource_requests([app]) == (expected if missing else [])
