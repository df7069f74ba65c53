"""The project's own checks against the real tools, on generated traffic configs.

A config the project accepts must give VirtualServices and DestinationRules that istioctl
validate and a kube-apiserver's strict dry run both accept. A config the project refuses is
built anyway (the pure model functions take any value of the right type): where the tools
accept it, the refusal must be one of the deliberate ones below, each with its reason. A
disagreement names the generated case.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bookinfo_mesh.stack_files import load_engine_config
from model.http_policy import (
    MATCH_KINDS,
    Abort,
    Delay,
    Destination,
    HttpRule,
    Mirror,
    RequestMatch,
    Retries,
    Service,
    ServiceRoutes,
    StringMatch,
)
from model.policy_manifests import traffic_manifests
from model.policy_validation import policy_problems
from model.routing import MODES, Mode, TrafficSettings, bookinfo_policy, route_table
from stacks.config import PROJECT, ConfigError, ConfigProblem, StackConfig, parse_stack_config
from tests.mesh_cluster import Stack, dry_run_refusals
from tests.real_tools import istioctl

# Deliberately stricter than Istio: (config key, the start of the project's message) -> why.
DELIBERATE = {
    ("faultAbortStatus", "must be an HTTP error status, 400 to 599"): (
        "Istio takes 200-599; an abort that answers 2xx or 3xx injects no fault"
    ),
    ("testUser", "must be a non-empty value of visible ASCII"): (
        "Istio takes any string; an HTTP header value is visible ASCII (RFC 9110), and "
        "productpage sends the user as one"
    ),
    ("testUser", "is 1"): "Istio has no limit; productpage's session cookie does",
    ("faultDelay", "must be between 1ms and 300s"): (
        "Istio takes any delay of 1ms or more; a delay past 300s outlasts every timeout"
    ),
    ("splitWeights", "weights must sum to 100"): (
        "Istio normalizes other sums, sending other shares than written"
    ),
    ("splitWeights", "names reviews subsets"): (
        "istioctl validate does not know which subsets have pods; a weight there answers 503"
    ),
}
SUBSETS = ("v1", "v2", "v3", "v4")

durations = st.one_of(
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.integers(0, 400_000),
        st.sampled_from(["ms", "s", "m", "h", "us"]),
    ),
    st.sampled_from(["1.5s", "0.5ms", "7s", "", "7", "1s500ms", "-1s"]),
)
traffic_configs = st.fixed_dictionaries(
    {"mode": st.sampled_from(MODES)},
    optional={
        "testUser": st.one_of(
            st.sampled_from(["jason", "a b", " jason", "x" * 1100]), st.text(max_size=8)
        ),
        "faultDelay": durations,
        "faultPercent": st.integers(-5, 105).map(str),
        "faultAbortStatus": st.integers(100, 700).map(str),
        "splitWeights": st.dictionaries(
            st.sampled_from(SUBSETS), st.integers(-5, 110), min_size=1, max_size=3
        ).map(json.dumps),
    },
)


def lenient_settings(overrides: Mapping[str, str]) -> TrafficSettings | None:
    """The settings as typed values, unchecked; None where a value has no such type at all."""
    defaults = TrafficSettings()
    try:
        weights = json.loads(overrides["splitWeights"]) if "splitWeights" in overrides else None
        return TrafficSettings(
            test_user=overrides.get("testUser", defaults.test_user),
            fault_delay=overrides.get("faultDelay", defaults.fault_delay),
            fault_abort_status=int(overrides.get("faultAbortStatus", defaults.fault_abort_status)),
            fault_percent=float(overrides.get("faultPercent", defaults.fault_percent)),
            split_weights=weights if weights is not None else defaults.split_weights,
        )
    except ValueError:
        return None


# A value for each knob other than its default, to see which modes carry it into objects.
OTHER_VALUES = {
    "testUser": {"test_user": "someone-else"},
    "faultDelay": {"fault_delay": "3s"},
    "faultPercent": {"fault_percent": 50.0},
    "faultAbortStatus": {"fault_abort_status": 503},
    "splitWeights": {"split_weights": {"v1": 10, "v3": 90}},
}


def objects_of(mode: Mode, settings_: TrafficSettings) -> list[dict[str, Any]]:
    return traffic_manifests(bookinfo_policy(route_table(mode, settings_)))


def carries(mode: Mode, key: str) -> bool:
    """Whether `mode` puts config key `key` into any object (else no tool ever sees it)."""
    other = replace(TrafficSettings(), **OTHER_VALUES[key])
    return objects_of(mode, other) != objects_of(mode, TrafficSettings())


def tool_refusals(stack: Stack, objects: list[dict[str, Any]]) -> list[str]:
    validated = istioctl(stack.minor, "validate", "-f", "{file}", objects=objects)
    refusals = [] if validated.code == 0 else [f"istioctl validate: {validated.output.strip()}"]
    return refusals + dry_run_refusals(stack.api, objects)


def deliberate(problem: ConfigProblem) -> str | None:
    return next(
        (
            why
            for (key, start), why in DELIBERATE.items()
            if problem.key == key and problem.message.startswith(start)
        ),
        None,
    )


def project_verdict(overrides: Mapping[str, str]) -> StackConfig | ConfigError:
    """The stack config the program would get, or every problem it refuses it with."""
    config, _ = load_engine_config("dev", overrides)
    prefix = f"{PROJECT}:"
    try:
        return parse_stack_config(
            {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
        )
    except ConfigError as error:
        return error


@pytest.mark.xdist_group("cluster-dev")  # beside the other tests of the dev cluster
@pytest.mark.parametrize("stack", ["dev"], indirect=True)
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=traffic_configs)
def test_the_project_and_the_real_tools_agree_on_traffic_config(
    stack: Stack, overrides: dict[str, str]
) -> None:
    verdict = project_verdict(overrides)
    mode = Mode(overrides["mode"])
    if isinstance(verdict, StackConfig):
        objects = objects_of(verdict.mode, verdict.traffic)
        assert tool_refusals(stack, objects) == [], (
            f"the project accepts {overrides}; the tools do not"
        )
        event("both accept")
        return
    seen = [p for p in verdict.problems if carries(mode, p.key)]
    if not seen:
        # Every knob is checked in every mode: a typo fails before the mode that uses it.
        event("deliberately stricter: a knob this mode does not use is checked too")
        return
    settings_ = lenient_settings(overrides)
    if settings_ is None:
        event("both refuse: a value of no type Istio has")
        return
    try:
        objects = objects_of(mode, settings_)
    except ValueError:
        event("both refuse: not an Istio duration")
        return
    if tool_refusals(stack, objects):
        event("both refuse")
        return
    undecided = [p for p in seen if deliberate(p) is None]
    assert not undecided, f"the project refuses {overrides} ({undecided}), the tools accept it"
    event(f"deliberately stricter: {deliberate(seen[0])}")


# --- generated policies for any services ---------------------------------------------------

SUBSET_NAMES = ("v1", "v2", "canary")
names = st.sampled_from(["x-user", "x-tester", "cookie"])
string_matches = st.builds(
    StringMatch,
    st.sampled_from(MATCH_KINDS),
    st.sampled_from(["jason", "a.*", "(a|b)+", "/api", "x[0-9]{2}", "(", "caf\u00e9"]),
)
request_matches = st.builds(
    RequestMatch,
    headers=st.dictionaries(names, string_matches, max_size=2),
    uri=st.none()
    | st.builds(
        StringMatch, st.sampled_from(MATCH_KINDS), st.sampled_from(["/cart", "/a.*", "cart"])
    ),
    method=st.none() | st.just(StringMatch("exact", "POST")),
)
rules = st.builds(
    HttpRule,
    destinations=st.lists(
        st.builds(Destination, st.sampled_from(SUBSET_NAMES), st.integers(0, 110)),
        min_size=1,
        max_size=3,
    ).map(tuple),
    matches=st.lists(request_matches, max_size=2).map(tuple),
    fault=st.none()
    | st.builds(
        Delay, st.sampled_from(["2s", "500ms", "0s", "1h"]), st.sampled_from([50.0, 100.0, 150.0])
    )
    | st.builds(Abort, st.sampled_from([503, 404, 200, 700]), st.just(10.0)),
    mirror=st.none()
    | st.builds(Mirror, st.sampled_from(SUBSET_NAMES), st.sampled_from([10.0, 100.0, 120.0])),
    timeout=st.none() | st.sampled_from(["3s", "0s", "soon"]),
    retries=st.none()
    | st.builds(
        Retries,
        st.integers(0, 12),
        st.sampled_from([None, "1s", "x"]),
        st.sampled_from([None, "5xx,reset", "sometimes"]),
    ),
)
policies = st.builds(
    lambda rule_lists: tuple(
        ServiceRoutes(
            Service(f"svc{i}", "bookinfo", {s: {"version": s} for s in SUBSET_NAMES}), tuple(rs)
        )
        for i, rs in enumerate(rule_lists)
    ),
    st.lists(st.lists(rules, min_size=1, max_size=3), min_size=1, max_size=2),
)

# Deliberately stricter than Istio for generated policies: the start of the message -> why.
DELIBERATE_POLICY = {
    "weights must sum to 100": "Istio normalizes other sums, sending other shares than written",
    "must be an HTTP error status": "an abort that answers 2xx or 3xx injects no fault",
    "comes after http[": "a rule no request can reach is a mistake Istio keeps quietly",
    "must be between 1ms and 300s": "a delay past 300s outlasts every timeout",
    "is not an RE2 regular expression": "Istio validates the regex only in istiod's webhook",
    "must be 0 to 10": "more attempts multiply load on a failing service",
    "must be visible ASCII text": "HTTP header values are visible ASCII (RFC 9110)",
    "header names are lower-case": "Envoy lower-cases header names: a capital never matches",
    "a path starts with /": "a path without / never matches",
    "must be one of exact, regex": "Istio ignores a prefix query match",
    "conditions are Envoy's": "an unknown retry condition retries nothing",
}


@pytest.mark.xdist_group("cluster-dev")
@pytest.mark.parametrize("stack", ["dev"], indirect=True)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=policies)
def test_the_project_and_the_real_tools_agree_on_any_services_policy(
    stack: Stack, policy: tuple[ServiceRoutes, ...]
) -> None:
    problems = policy_problems(policy)
    objects = [o for o in traffic_manifests(policy)]
    refusals = tool_refusals(stack, objects)
    if not problems:
        assert refusals == [], f"the project accepts {policy}; the tools do not: {refusals}"
        event("both accept")
        return
    if refusals:
        event("both refuse")
        return
    undecided = [p for p in problems if not any(s in p.message for s in DELIBERATE_POLICY)]
    assert not undecided, f"the project refuses {undecided}; the tools accept it"
    first = next(why for start, why in DELIBERATE_POLICY.items() if start in problems[0].message)
    event(f"deliberately stricter: {first}")
