"""Route tables and Istio objects per mode, compared in meaning with Istio's Bookinfo samples."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from model.catalogue import NAMESPACE, WORKLOADS
from model.http_policy import Abort, Delay, Destination, HttpRule, parse_duration
from model.policy_manifests import routes_of, traffic_manifests
from model.routing import (
    Mode,
    RouteTable,
    TrafficSettings,
    bookinfo_policy,
    bookinfo_rule,
    describe_routes,
    route_table,
    rule_for,
)

# Facts restated from istio/istio 1.30.3 (tag, commit and file of each in its "sources" and
# "_meta"): the transcription below is checked against them.
FACTS_FILE = Path(__file__).resolve().parent / "data" / "istio_bookinfo_facts.json"

# --- Upstream samples/bookinfo/networking, transcribed in meaning -------------------------
# destination-rule-all.yaml: one DestinationRule per service, subsets keyed by label `version`.
UPSTREAM_SUBSETS: dict[str, tuple[str, ...]] = {
    "productpage": ("v1",),
    "reviews": ("v1", "v2", "v3"),
    "ratings": ("v1", "v2", "v2-mysql", "v2-mysql-vm"),
    "details": ("v1", "v2"),
}
SERVICES = tuple(UPSTREAM_SUBSETS)
JASON = "jason"
HEADER = "end-user"


class Rule(NamedTuple):
    """One http rule of a VirtualService, reduced to what it means."""

    user: str | None  # header end-user must equal this; None matches every request
    fault: tuple[str, float, float] | None  # ("delay", seconds, %) or ("abort", status, %)
    to: frozenset[tuple[str, str, int]]  # (host, subset, weight); a lone route weighs 100
    timeout: Any = None
    retries: Any = None


def rule(host: str, to: Mapping[str, int], user: str | None = None, fault=None) -> Rule:
    return Rule(user, fault, frozenset((host, s, w) for s, w in to.items()))


def v1_only(host: str) -> tuple[Rule, ...]:
    return (rule(host, {"v1": 100}),)


UPSTREAM_FILES: dict[str, dict[str, tuple[Rule, ...]]] = {
    "virtual-service-all-v1.yaml": {s: v1_only(s) for s in SERVICES},
    "virtual-service-reviews-test-v2.yaml": {
        "reviews": (rule("reviews", {"v2": 100}, user=JASON), rule("reviews", {"v1": 100}))
    },
    "virtual-service-ratings-test-delay.yaml": {
        "ratings": (
            rule("ratings", {"v1": 100}, user=JASON, fault=("delay", 7.0, 100.0)),
            rule("ratings", {"v1": 100}),
        )
    },
    "virtual-service-ratings-test-abort.yaml": {
        "ratings": (
            rule("ratings", {"v1": 100}, user=JASON, fault=("abort", 500, 100.0)),
            rule("ratings", {"v1": 100}),
        )
    },
    "virtual-service-reviews-50-v3.yaml": {"reviews": (rule("reviews", {"v1": 50, "v3": 50}),)},
    "virtual-service-reviews-v3.yaml": {"reviews": (rule("reviews", {"v3": 100}),)},
}
# The BRIEF: every step starts from all-v1; delay and abort also keep user-v2, because only
# reviews v2 calls ratings for jason. Applying a file replaces the same-named VirtualService.
SCENARIO_LAYERS: dict[str, tuple[str, ...]] = {
    "all-v1": ("virtual-service-all-v1.yaml",),
    "user-v2": ("virtual-service-all-v1.yaml", "virtual-service-reviews-test-v2.yaml"),
    "delay": (
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-test-v2.yaml",
        "virtual-service-ratings-test-delay.yaml",
    ),
    "abort": (
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-test-v2.yaml",
        "virtual-service-ratings-test-abort.yaml",
    ),
    "split50": ("virtual-service-all-v1.yaml", "virtual-service-reviews-50-v3.yaml"),
    "v3": ("virtual-service-all-v1.yaml", "virtual-service-reviews-v3.yaml"),
}


def effective_upstream(mode: str) -> dict[str, tuple[Rule, ...]]:
    """What `kubectl apply` of the scenario's files for `mode` leaves in the mesh."""
    live: dict[str, tuple[Rule, ...]] = {}
    for file in SCENARIO_LAYERS[mode]:
        live.update(UPSTREAM_FILES[file])
    return live


# --- Reading each representation back into Rules -----------------------------------------
def _fault_meaning(fault: Mapping[str, Any] | None) -> tuple[str, float, float] | None:
    if not fault:
        return None
    if "delay" in fault:
        delay = fault["delay"]
        return ("delay", parse_duration(delay["fixedDelay"]), float(delay["percentage"]["value"]))
    abort = fault["abort"]
    return ("abort", int(abort["httpStatus"]), float(abort["percentage"]["value"]))


def _user_of(matches: list[dict[str, Any]] | None) -> str | None:
    if not matches:
        return None
    assert len(matches) == 1, f"expected one match block like upstream, got {matches}"
    assert set(matches[0]) == {"headers"}, f"match on more than headers: {matches[0]}"
    headers = matches[0]["headers"]
    assert set(headers) == {HEADER}, f"match on headers other than {HEADER}: {headers}"
    assert set(headers[HEADER]) == {"exact"}, f"{HEADER} not matched exactly: {headers}"
    return headers[HEADER]["exact"]


def _rules(
    https: list[dict[str, Any]], destination: Callable[[dict[str, Any]], tuple[str, str]]
) -> tuple[Rule, ...]:
    """HTTP rules in either representation; a lone destination without weight weighs 100."""
    rules = []
    for http in https:
        routes = http["route"]
        to = frozenset(
            (*destination(r), r.get("weight", 100 if len(routes) == 1 else 0)) for r in routes
        )
        rules.append(
            Rule(
                _user_of(http.get("match")),
                _fault_meaning(http.get("fault")),
                to,
                http.get("timeout"),
                http.get("retries"),
            )
        )
    return tuple(rules)


def rules_of_manifest(vs: dict[str, Any]) -> tuple[Rule, ...]:
    """A generated VirtualService's rules."""
    for http in vs["spec"]["http"]:
        unknown = set(http) - {"match", "route", "fault", "timeout", "retries"}
        assert not unknown, (
            f"{vs['metadata']['name']} rule has fields upstream never sets: {unknown}"
        )
    return _rules(
        vs["spec"]["http"], lambda r: (r["destination"]["host"], r["destination"]["subset"])
    )


def _route_fault(route: HttpRule) -> tuple[str, float, float] | None:
    if isinstance(route.fault, Delay):
        return ("delay", route.fault.seconds, float(route.fault.percent))
    if isinstance(route.fault, Abort):
        return ("abort", route.fault.http_status, float(route.fault.percent))
    return None


def matched_user(rule: HttpRule) -> str | None:
    """The user a scenario rule is for (its exact end-user header), None for everyone."""
    return rule.matches[0].headers["end-user"].value if rule.matches else None


def rules_of_table(table: RouteTable, host: str) -> tuple[Rule, ...]:
    return tuple(
        Rule(
            matched_user(r),
            _route_fault(r),
            frozenset((host, d.subset, d.weight) for d in r.destinations),
        )
        for r in table[host]
    )


def rules_of_facts(vs: dict[str, Any]) -> tuple[Rule, ...]:
    """A VirtualService as the facts file restates it (route entries carry host and subset)."""
    return _rules(vs["http"], lambda r: (r["host"], r["subset"]))


def virtual_services(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "VirtualService"}


def destination_rules(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "DestinationRule"}


def manifests_for(mode: str, settings: TrafficSettings | None = None) -> list[dict[str, Any]]:
    return traffic_manifests(
        bookinfo_policy(route_table(Mode(mode), settings or TrafficSettings()))
    )


ALL_MODES = tuple(SCENARIO_LAYERS)


# --- The transcription above is the facts file, in meaning ---------------------------------
@pytest.mark.parametrize("mode", ALL_MODES)
def test_transcribed_scenario_equals_the_upstream_facts_effective_set(mode: str) -> None:
    facts = json.loads(FACTS_FILE.read_text())
    effective = {
        vs["name"]: rules_of_facts(vs) for vs in facts["modes"][mode]["effective_mesh_vs_set"]
    }
    assert effective == effective_upstream(mode), f"transcription of {mode} drifted from facts"


def test_transcribed_subsets_equal_the_upstream_destination_rule_all() -> None:
    facts = json.loads(FACTS_FILE.read_text())
    upstream = {
        dr["host"]: tuple(dr["subsets"]) for dr in facts["modes"]["baseline"]["destination_rules"]
    }
    assert upstream == UPSTREAM_SUBSETS, "transcribed destination-rule-all.yaml drifted from facts"


# --- Route table and generated objects per mode --------------------------------------------
def test_the_modes_are_the_scenario_steps_and_nothing_else() -> None:
    assert {m.value for m in Mode} == set(ALL_MODES), "modes differ from the BRIEF's six steps"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_route_table_means_what_the_scenario_leaves_applied(mode: str) -> None:
    table = route_table(Mode(mode), TrafficSettings())
    expected = effective_upstream(mode)
    assert set(table) == set(expected), f"{mode}: route table covers {set(table)}"
    for host, rules in expected.items():
        assert rules_of_table(table, host) == rules, f"{mode}: {host} routes differ from upstream"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_virtual_services_mean_what_the_upstream_files_say(mode: str) -> None:
    vss = virtual_services(manifests_for(mode))
    expected = effective_upstream(mode)
    assert set(vss) == set(expected), f"{mode}: VirtualServices {set(vss)} != {set(expected)}"
    for name, rules in expected.items():
        vs = vss[name]
        assert vs["spec"]["hosts"] == [name], f"{mode}: VS {name} hosts {vs['spec']['hosts']}"
        assert vs["spec"].get("gateways") is None, f"{mode}: mesh VS {name} is bound to a gateway"
        assert rules_of_manifest(vs) == rules, f"{mode}: VS {name} differs from upstream"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_destination_rules_have_exactly_the_upstream_subsets_by_version_label(mode: str) -> None:
    drs = destination_rules(manifests_for(mode))
    assert set(drs) == set(UPSTREAM_SUBSETS), f"{mode}: DestinationRules {set(drs)}"
    for host, subsets in UPSTREAM_SUBSETS.items():
        spec = drs[host]["spec"]
        assert spec["host"] == host, f"DR {host} targets host {spec['host']}"
        got = {s["name"]: s["labels"] for s in spec["subsets"]}
        assert got == {s: {"version": s} for s in subsets}, f"DR {host} subsets: {got}"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_destination_rules_come_before_every_virtual_service(mode: str) -> None:
    kinds = [m["kind"] for m in manifests_for(mode)]
    last_dr = max(i for i, k in enumerate(kinds) if k == "DestinationRule")
    first_vs = min(i for i, k in enumerate(kinds) if k == "VirtualService")
    assert last_dr < first_vs, f"{mode}: a VS precedes a DR that defines its subsets: {kinds}"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_traffic_objects_live_beside_the_bookinfo_services(mode: str) -> None:
    for manifest in manifests_for(mode):
        assert manifest["apiVersion"] == "networking.istio.io/v1", f"{manifest['apiVersion']}"
        assert manifest["metadata"]["namespace"] == NAMESPACE, (
            f"{manifest['kind']} {manifest['metadata']['name']} is outside {NAMESPACE}: "
            "short hosts like 'reviews' would resolve in the wrong namespace"
        )


def test_resource_names_never_depend_on_the_mode() -> None:
    def names(mode: str) -> set[tuple[str, str, str]]:
        return {
            (m["kind"], m["metadata"]["namespace"], m["metadata"]["name"])
            for m in manifests_for(mode)
        }

    first = names(ALL_MODES[0])
    for mode in ALL_MODES[1:]:
        assert names(mode) == first, f"{mode} renames objects: {names(mode) ^ first}"


# --- Settings flow into the right places ----------------------------------------------------
def test_test_user_replaces_jason_in_every_match() -> None:
    settings = TrafficSettings(test_user="alice")
    for mode in ("user-v2", "delay", "abort"):
        manifests = manifests_for(mode, settings)
        assert JASON not in json.dumps(manifests), f"{mode}: jason is still matched"
        for name, vs in virtual_services(manifests).items():
            users = {r.user for r in rules_of_manifest(vs)} - {None}
            expected = {"alice"} if effective_upstream(mode)[name][0].user else set()
            assert users == expected, f"{mode}: VS {name} matches users {users}"


@pytest.mark.parametrize(("mode", "kind"), [("delay", "delay"), ("abort", "abort")])
def test_fault_settings_reach_only_the_test_users_ratings_rule(mode: str, kind: str) -> None:
    settings = TrafficSettings(fault_delay="2500ms", fault_percent=25, fault_abort_status=503)
    vss = virtual_services(manifests_for(mode, settings))
    faults = {(name, r.user): r.fault for name, vs in vss.items() for r in rules_of_manifest(vs)}
    expected_fault = ("delay", 2.5, 25.0) if kind == "delay" else ("abort", 503, 25.0)
    assert faults.pop(("ratings", JASON)) == expected_fault, f"{mode}: wrong fault on ratings"
    assert set(faults.values()) == {None}, f"{mode}: faults outside jason's ratings: {faults}"


@pytest.mark.parametrize("mode", ["all-v1", "user-v2", "split50", "v3"])
def test_modes_without_faults_carry_no_fault(mode: str) -> None:
    settings = TrafficSettings(fault_delay="1s", fault_percent=100, fault_abort_status=503)
    for name, vs in virtual_services(manifests_for(mode, settings)).items():
        assert all(r.fault is None for r in rules_of_manifest(vs)), f"{mode}: fault on {name}"


def test_split_weights_set_the_reviews_split() -> None:
    settings = TrafficSettings(split_weights={"v1": 90, "v3": 10})
    reviews = virtual_services(manifests_for("split50", settings))["reviews"]
    assert rules_of_manifest(reviews) == (rule("reviews", {"v1": 90, "v3": 10}),), (
        f"split50 ignores splitWeights: {reviews['spec']['http']}"
    )


def test_split_weights_touch_no_other_mode() -> None:
    settings = TrafficSettings(split_weights={"v2": 100})
    for mode in ALL_MODES:
        if mode == "split50":
            continue
        vss = virtual_services(manifests_for(mode, settings))
        got = {name: rules_of_manifest(vs) for name, vs in vss.items()}
        assert got == effective_upstream(mode), f"splitWeights leaked into {mode}"


def test_zero_weights_are_dropped_from_the_split_and_one_percent_is_kept() -> None:
    settings = TrafficSettings(split_weights={"v1": 0, "v2": 1, "v3": 99})
    reviews = virtual_services(manifests_for("split50", settings))["reviews"]
    assert rules_of_manifest(reviews) == (rule("reviews", {"v2": 1, "v3": 99}),), (
        f"split50 with a 0 and a 1 % weight routes {reviews['spec']['http']}"
    )


def test_a_split_left_with_one_subset_routes_everything_there() -> None:
    settings = TrafficSettings(split_weights={"v1": 0, "v3": 100})
    reviews = virtual_services(manifests_for("split50", settings))["reviews"]
    assert rules_of_manifest(reviews) == (rule("reviews", {"v3": 100}),), (
        f"expected all reviews traffic on v3: {reviews['spec']['http']}"
    )


# --- Durations -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"), [("7s", 7.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5s", 1.5)]
)
def test_parse_duration_reads_istio_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds), f"{text!r} misread"


@pytest.mark.parametrize("text", ["7", "7sec", "-1s", ""])
def test_parse_duration_rejects_what_istio_would(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(
    hours=st.integers(0, 5),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
    millis=st.integers(0, 999),
)
def test_parse_duration_adds_up_every_unit(
    hours: int, minutes: int, seconds: int, millis: int
) -> None:
    text = f"{hours}h{minutes}m{seconds}s{millis}ms"
    expected = hours * 3600 + minutes * 60 + seconds + millis / 1000
    assert parse_duration(text) == pytest.approx(expected), f"{text!r} misread"


# --- Properties -------------------------------------------------------------------------------
DEPLOYED = {(w.app, w.version) for w in WORKLOADS}


@st.composite
def split_weights(draw: st.DrawFn) -> dict[str, int]:
    """Any non-empty choice of v1/v2/v3 with non-negative integer weights summing to 100."""
    subsets = draw(
        st.lists(st.sampled_from(["v1", "v2", "v3"]), min_size=1, max_size=3, unique=True)
    )
    cuts = sorted(
        draw(st.lists(st.integers(0, 100), min_size=len(subsets) - 1, max_size=len(subsets) - 1))
    )
    bounds = [0, *cuts, 100]
    return {s: bounds[i + 1] - bounds[i] for i, s in enumerate(subsets)}


@given(weights=split_weights())
def test_split_weights_always_sum_to_100(weights: dict[str, int]) -> None:
    reviews = virtual_services(manifests_for("split50", TrafficSettings(split_weights=weights)))[
        "reviews"
    ]
    routes = reviews["spec"]["http"][0]["route"]
    if len(routes) == 1:
        assert "weight" not in routes[0] or routes[0]["weight"] == 100, f"lone route: {routes}"
    else:
        total = sum(r["weight"] for r in routes)
        assert total == 100, f"weights {weights} became routes summing to {total}: {routes}"
        assert all(r["weight"] > 0 for r in routes), f"zero-weight route kept: {routes}"


@given(weights=split_weights(), mode=st.sampled_from(ALL_MODES))
def test_every_named_subset_is_defined_and_has_pods(weights: dict[str, int], mode: str) -> None:
    manifests = manifests_for(mode, TrafficSettings(split_weights=weights))
    defined = {
        (dr["spec"]["host"], s["name"])
        for dr in destination_rules(manifests).values()
        for s in dr["spec"]["subsets"]
    }
    for vs in virtual_services(manifests).values():
        for http in vs["spec"]["http"]:
            for route in http["route"]:
                named = (route["destination"]["host"], route["destination"]["subset"])
                assert named in defined, f"{mode}: {named} has no DestinationRule subset (503)"
                assert named in DEPLOYED, f"{mode}: {named} names a subset without pods"


def test_the_delay_mode_reads_as_plain_data_for_stack_outputs() -> None:
    """The `routes` stack output: who each rule matches, where it sends, and its fault."""
    assert describe_routes(route_table(Mode.DELAY, TrafficSettings())) == {
        "productpage": [{"match": "*", "to": {"v1": 100}}],
        "reviews": [
            {"match": "end-user=jason", "to": {"v2": 100}},
            {"match": "*", "to": {"v1": 100}},
        ],
        "ratings": [
            {"match": "end-user=jason", "to": {"v1": 100}, "fault": "delay 7s (100 %)"},
            {"match": "*", "to": {"v1": 100}},
        ],
        "details": [{"match": "*", "to": {"v1": 100}}],
    }


def test_an_abort_and_a_split_read_as_plain_data() -> None:
    table: RouteTable = {
        "ratings": (
            bookinfo_rule((Destination("v1"),), user="kim", fault=Abort(503, 12.5)),
            bookinfo_rule((Destination("v1", 70), Destination("v2", 30))),
        )
    }
    assert describe_routes(table) == {
        "ratings": [
            {"match": "end-user=kim", "to": {"v1": 100}, "fault": "abort 503 (12.5 %)"},
            {"match": "*", "to": {"v1": 70, "v2": 30}},
        ]
    }


def test_a_user_no_rule_matches_gets_a_404_explained() -> None:
    only_jason = (bookinfo_rule((Destination("v2"),), user="jason"),)
    with pytest.raises(LookupError) as caught:
        rule_for(only_jason, None)
    assert str(caught.value) == "no rule matches user None: the service would answer 404"


# --- Istio's sample files, literally: generated objects and reading them back ----------------
# From istio/istio 1.30.3 samples/bookinfo/networking (comments and license header dropped).
UPSTREAM_YAML: dict[str, str] = {
    "bookinfo-gateway.yaml": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts:
  - "*"
  gateways:
  - bookinfo-gateway
  http:
  - match:
    - uri:
        exact: /productpage
    - uri:
        prefix: /static
    - uri:
        exact: /login
    - uri:
        exact: /logout
    - uri:
        prefix: /api/v1/products
    route:
    - destination:
        host: productpage
        port:
          number: 9080
""",
    "virtual-service-reviews-test-v2.yaml": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
""",
    "virtual-service-ratings-test-delay.yaml": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 7s
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
""",
    "virtual-service-ratings-test-abort.yaml": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      abort:
        percentage:
          value: 100.0
        httpStatus: 500
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
""",
    "virtual-service-reviews-50-v3.yaml": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
""",
    "virtual-service-reviews-v3.yaml": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v3
""",
}


def upstream_vs(file: str) -> dict[str, Any]:
    return yaml.safe_load(UPSTREAM_YAML[file])


@pytest.mark.parametrize(
    ("mode", "file"),
    [
        ("user-v2", "virtual-service-reviews-test-v2.yaml"),
        ("delay", "virtual-service-ratings-test-delay.yaml"),
        ("abort", "virtual-service-ratings-test-abort.yaml"),
        ("split50", "virtual-service-reviews-50-v3.yaml"),
        ("v3", "virtual-service-reviews-v3.yaml"),
    ],
)
def test_virtual_service_is_the_upstream_file_field_by_field(mode: str, file: str) -> None:
    """Same fields as the sample, placed in bookinfo: a lone route carries no weight, a split
    carries one per destination."""
    expected = upstream_vs(file)
    expected["metadata"]["namespace"] = "bookinfo"
    generated = virtual_services(manifests_for(mode))[expected["metadata"]["name"]]
    assert generated == expected


def test_destination_rule_is_the_upstream_file_field_by_field() -> None:
    reviews = destination_rules(manifests_for("all-v1"))["reviews"]
    assert reviews == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {
            "host": "reviews",
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"}},
                {"name": "v3", "labels": {"version": "v3"}},
            ],
        },
    }


def test_routes_read_back_from_the_upstream_files() -> None:
    """Users, faults and weights come back; the ingress VirtualService (bound to a gateway,
    routing to a port, not a subset) is no mesh route and is skipped."""
    table = routes_of(
        [
            upstream_vs("bookinfo-gateway.yaml"),
            upstream_vs("virtual-service-reviews-50-v3.yaml"),
            upstream_vs("virtual-service-ratings-test-delay.yaml"),
        ]
    )
    assert table == {
        "reviews": (bookinfo_rule((Destination("v1", 50), Destination("v3", 50))),),
        "ratings": (
            bookinfo_rule((Destination("v1", 100),), user="jason", fault=Delay("7s", 100.0)),
            bookinfo_rule((Destination("v1", 100),)),
        ),
    }


def test_routes_read_back_an_abort_and_a_user_match() -> None:
    table = routes_of(
        [
            upstream_vs("virtual-service-ratings-test-abort.yaml"),
            upstream_vs("virtual-service-reviews-test-v2.yaml"),
        ]
    )
    assert table == {
        "ratings": (
            bookinfo_rule((Destination("v1", 100),), user="jason", fault=Abort(500, 100.0)),
            bookinfo_rule((Destination("v1", 100),)),
        ),
        "reviews": (
            bookinfo_rule((Destination("v2", 100),), user="jason"),
            bookinfo_rule((Destination("v1", 100),)),
        ),
    }
