"""The generic routing model: matching as Envoy matches, every validation rule, the config
reader's paths, and objects that read back as the rules they came from."""

from __future__ import annotations

from typing import Any

import pytest

from model.http_policy import (
    Abort,
    Delay,
    Destination,
    HeaderChanges,
    HeaderOperations,
    HttpRule,
    Mirror,
    Request,
    RequestMatch,
    Retries,
    Service,
    ServiceRoutes,
    StringMatch,
    first_rule,
)
from model.policy_config import apply_routes, read_routes
from model.policy_manifests import routes_of, traffic_manifests, virtual_service
from model.policy_validation import PolicyError, policy_problems, validate_policy

SHOP = Service("cart", "shop", {"v1": {"version": "v1"}, "v2": {"version": "v2"}})
PODS = {"cart": ({"app": "cart", "version": "v1"}, {"app": "cart", "version": "v2"})}


def header(name: str, kind: str, value: str) -> RequestMatch:
    return RequestMatch(headers={name: StringMatch(kind, value)})


def to(*subsets: tuple[str, int]) -> tuple[Destination, ...]:
    return tuple(Destination(s, w) for s, w in subsets)


# --- matching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "value", "matches"),
    [
        (StringMatch("exact", "jason"), "jason", True),
        (StringMatch("exact", "jason"), "jasonx", False),
        (StringMatch("prefix", "/api"), "/api/v1", True),
        (StringMatch("prefix", "/api"), "/ap", False),
        # RE2 matches the whole value, as Envoy's safe_regex does: no partial match.
        (StringMatch("regex", "j.*n"), "jason", True),
        (StringMatch("regex", "j.*n"), "xjason", False),
        (StringMatch("regex", "(a|b)+"), "abab", True),
        (StringMatch("exact", "jason"), None, False),
    ],
)
def test_a_string_match_matches_as_envoy_does(
    match: StringMatch, value: str | None, matches: bool
) -> None:
    assert match.matches(value) is matches


def test_conditions_of_a_block_all_hold_and_blocks_are_alternatives() -> None:
    both = RequestMatch(
        headers={"x-user": StringMatch("exact", "kim")},
        uri=StringMatch("prefix", "/cart"),
        method=StringMatch("exact", "POST"),
        query_params={"debug": StringMatch("exact", "1")},
        source_labels={"app": "web"},
        source_namespace="shop",
    )
    request = Request(
        headers={"x-user": "kim"},
        path="/cart/items",
        method="POST",
        query={"debug": "1"},
        source_labels={"app": "web", "version": "v2"},
        source_namespace="shop",
    )
    assert both.matches(request)
    for changed in (
        Request(**{**vars(request), "method": "GET"}),
        Request(**{**vars(request), "path": "/"}),
        Request(**{**vars(request), "source_namespace": "other"}),
        Request(**{**vars(request), "headers": {}}),
    ):
        assert not both.matches(changed)
    rule = HttpRule(to(("v2", 100)), matches=(header("x-user", "exact", "ann"), both))
    assert rule.applies_to(request) and not rule.applies_to(Request())


def test_the_first_matching_rule_wins_and_none_is_a_404() -> None:
    testers = HttpRule(to(("v2", 100)), matches=(header("x-test", "exact", "1"),))
    everyone = HttpRule(to(("v1", 100)))
    assert first_rule((testers, everyone), Request(headers={"x-test": "1"})) is testers
    assert first_rule((testers, everyone), Request()) is everyone
    assert first_rule((testers,), Request()) is None


# --- validation: each rule, at its path --------------------------------------------------


def problems_of(rule: HttpRule, service: Service = SHOP) -> list[tuple[str, str]]:
    found = policy_problems((ServiceRoutes(service, (rule,)),), PODS)
    return [(p.path, p.message) for p in found]


@pytest.mark.parametrize(
    ("rule", "path", "says"),
    [
        (HttpRule(to(("v1", 60), ("v2", 30))), "routes.cart.http[0].route", "must sum to 100"),
        (HttpRule(to(("v3", 100))), "routes.cart.http[0].route[0].subset", "no such subset"),
        (HttpRule(to(("v1", 150))), "routes.cart.http[0].route[0].weight", "0 to 100"),
        (HttpRule(()), "routes.cart.http[0].route", "at least one destination"),
        (
            HttpRule(to(("v1", 100)), matches=(header("end-user", "regex", "(j"),)),
            "routes.cart.http[0].match[0].headers.end-user.regex",
            "not an RE2 regular expression: missing ): (j",
        ),
        (
            HttpRule(to(("v1", 100)), matches=(header("End-User", "exact", "x"),)),
            "routes.cart.http[0].match[0].headers",
            "lower-case",
        ),
        (
            HttpRule(to(("v1", 100)), matches=(RequestMatch(uri=StringMatch("exact", "cart")),)),
            "routes.cart.http[0].match[0].uri.exact",
            "a path starts with /",
        ),
        (
            HttpRule(
                to(("v1", 100)),
                matches=(RequestMatch(query_params={"q": StringMatch("prefix", "a")}),),
            ),
            "routes.cart.http[0].match[0].queryParams.q",
            "must be one of exact, regex",
        ),
        (
            HttpRule(to(("v1", 100)), fault=Delay("forever", 50)),
            "routes.cart.http[0].fault.delay.fixedDelay",
            "is not a duration",
        ),
        (
            HttpRule(to(("v1", 100)), fault=Delay("10m", 50)),
            "routes.cart.http[0].fault.delay.fixedDelay",
            "between 1ms and 300s",
        ),
        (
            HttpRule(to(("v1", 100)), fault=Abort(302, 50)),
            "routes.cart.http[0].fault.abort.httpStatus",
            "400 to 599",
        ),
        (
            HttpRule(to(("v1", 100)), fault=Abort(503, 120)),
            "routes.cart.http[0].fault.abort.percentage",
            "percentage from 0 to 100",
        ),
        (
            HttpRule(to(("v1", 100)), mirror=Mirror("v9", 10)),
            "routes.cart.http[0].mirror.subset",
            "no such subset",
        ),
        (
            HttpRule(to(("v1", 100)), timeout="0s"),
            "routes.cart.http[0].timeout",
            "1ms or more",
        ),
        (
            HttpRule(to(("v1", 100)), retries=Retries(11)),
            "routes.cart.http[0].retries.attempts",
            "0 to 10",
        ),
        (
            HttpRule(to(("v1", 100)), retries=Retries(2, "5", "5xx")),
            "routes.cart.http[0].retries.perTryTimeout",
            "is not a duration",
        ),
        (
            HttpRule(to(("v1", 100)), retries=Retries(2, None, "5xx,flaky")),
            "routes.cart.http[0].retries.retryOn",
            "'flaky': conditions are Envoy's",
        ),
        (
            HttpRule(
                to(("v1", 100)),
                headers=HeaderChanges(request=HeaderOperations(set={"x bad": "1"})),
            ),
            "routes.cart.http[0].headers.request.set",
            "HTTP tokens",
        ),
        (
            HttpRule(
                to(("v1", 100)),
                headers=HeaderChanges(response=HeaderOperations(add={"x-ok": "caf\u00e9"})),
            ),
            "routes.cart.http[0].headers.response.add.x-ok",
            "visible ASCII",
        ),
    ],
)
def test_each_rule_is_checked_at_its_path(rule: HttpRule, path: str, says: str) -> None:
    found = problems_of(rule)
    assert any(p == path and says in message for p, message in found), found


def test_a_subset_that_selects_no_pods_is_refused_where_the_pods_are_known() -> None:
    lonely = Service("cart", "shop", {"v1": {"version": "v1"}, "v3": {"version": "v3"}})
    routed = ServiceRoutes(lonely, (HttpRule(to(("v3", 100))),))
    (problem,) = policy_problems((routed,), PODS)
    assert problem.path == "routes.cart.http[0].route[0].subset"
    assert "selects no pods" in problem.message
    assert policy_problems((routed,), None) == []  # pods unknown: nothing to hold it against


@pytest.mark.parametrize(
    ("earlier", "later", "unreachable"),
    [
        (HttpRule(to(("v1", 100))), HttpRule(to(("v2", 100))), True),
        (
            HttpRule(to(("v1", 100)), matches=(header("x-user", "prefix", "j"),)),
            HttpRule(to(("v2", 100)), matches=(header("x-user", "exact", "jason"),)),
            True,
        ),
        (
            HttpRule(to(("v1", 100)), matches=(header("x-user", "exact", "jason"),)),
            HttpRule(to(("v2", 100)), matches=(header("x-user", "prefix", "j"),)),
            False,
        ),
        (
            HttpRule(to(("v1", 100)), matches=(header("x-user", "regex", "j.*"),)),
            HttpRule(to(("v2", 100)), matches=(header("x-user", "exact", "jason"),)),
            True,
        ),
        (
            HttpRule(to(("v1", 100)), matches=(header("x-user", "exact", "jason"),)),
            HttpRule(to(("v2", 100))),
            False,
        ),
    ],
)
def test_a_rule_that_can_never_match_is_an_error(
    earlier: HttpRule, later: HttpRule, unreachable: bool
) -> None:
    found = policy_problems((ServiceRoutes(SHOP, (earlier, later)),), PODS)
    assert any(p.path == "routes.cart.http[1]" for p in found) is unreachable, found


def test_a_service_routed_twice_and_bad_names_are_refused() -> None:
    bad = Service("Cart_1", "shop", {"V1": {}})
    found = policy_problems(
        (ServiceRoutes(SHOP, (HttpRule(to(("v1", 100))),)),) * 2
        + (ServiceRoutes(bad, (HttpRule(to(("V1", 100))),)),),
        None,
    )
    messages = {(p.path, p.message) for p in found}
    assert ("routes.cart", "is routed twice; give each service one entry") in messages
    assert ("routes.Cart_1", "a service name is a DNS label") in messages
    assert ("routes.Cart_1.subsets", "a subset name is a DNS label") in messages
    assert ("routes.Cart_1.subsets.V1", "needs labels to select its pods") in messages


def test_validate_policy_reports_every_problem_at_once() -> None:
    policy = (ServiceRoutes(SHOP, (HttpRule(to(("v1", 60), ("v9", 30)), timeout="x"),)),)
    with pytest.raises(PolicyError) as refused:
        validate_policy(policy, PODS)
    assert len(refused.value.problems) == 3
    assert str(refused.value).startswith("invalid routing policy (3 problems):\n  - routes.cart")


# --- the config reader ---------------------------------------------------------------------


def read(value: Any) -> tuple[dict, list[tuple[str, str]]]:
    changes, problems = read_routes(value, ("cart", "web"))
    return changes, [(p.path, p.message) for p in problems]


def test_config_rules_read_in_virtual_service_field_names() -> None:
    rule = {
        "match": [{"headers": {"x-test": {"exact": "1"}}, "uri": {"prefix": "/cart"}}],
        "route": [
            {"destination": {"host": "cart", "subset": "v1"}, "weight": 90},
            {"destination": {"subset": "v2"}, "weight": 10},
        ],
        "fault": {"delay": {"fixedDelay": "2s", "percentage": {"value": 5}}},
        "mirror": {"subset": "v2"},
        "mirrorPercentage": {"value": 20},
        "timeout": "3s",
        "retries": {"attempts": 2, "perTryTimeout": "1s", "retryOn": "5xx,reset"},
        "headers": {"request": {"set": {"x-canary": "yes"}, "remove": ["x-debug"]}},
    }
    changes, problems = read({"cart": {"http": [rule]}, "web": {"prepend": []}})
    assert problems == []
    (read_rule,) = changes["cart"].rules
    assert read_rule == HttpRule(
        to(("v1", 90), ("v2", 10)),
        matches=(
            RequestMatch(
                headers={"x-test": StringMatch("exact", "1")}, uri=StringMatch("prefix", "/cart")
            ),
        ),
        fault=Delay("2s", 5.0),
        mirror=Mirror("v2", 20.0),
        timeout="3s",
        retries=Retries(2, "1s", "5xx,reset"),
        headers=HeaderChanges(
            request=HeaderOperations(set={"x-canary": "yes"}, remove=("x-debug",))
        ),
    )
    # ... and the object it becomes reads back as the same rule.
    assert routes_of([virtual_service(ServiceRoutes(SHOP, (read_rule,)))])["cart"] == (read_rule,)


@pytest.mark.parametrize(
    ("value", "path", "says"),
    [
        ([1], "routes", "must map service names"),
        ({"shop": {"http": []}}, "routes.shop", "no such service; services: cart, web"),
        ({"cart": {"http": [], "prepend": []}}, "routes.cart", "exactly one of http"),
        ({"cart": {"rules": []}}, "routes.cart.rules", "unknown field; allowed: http, prepend"),
        (
            {"cart": {"http": [{"route": [], "retry": {}}]}},
            "routes.cart.http[0].retry",
            "unknown field",
        ),
        (
            {"cart": {"http": [{"route": [{"destination": {"host": "web", "subset": "v1"}}]}]}},
            "routes.cart.http[0].route[0].destination.host",
            "routes to cart's own subsets",
        ),
        (
            {"cart": {"http": [{"route": [{"destination": {"subset": "v1"}, "weight": "90"}]}]}},
            "routes.cart.http[0].route[0].weight",
            "must be a whole number",
        ),
        (
            {"cart": {"http": [{"match": [{"headers": {"x": {"exact": "a", "regex": "b"}}}]}]}},
            "routes.cart.http[0].match[0].headers.x",
            "exactly one of exact, prefix, regex",
        ),
        (
            {"cart": {"http": [{"route": [], "fault": {"delay": {}, "abort": {}}}]}},
            "routes.cart.http[0].fault",
            "exactly one of delay, abort",
        ),
    ],
)
def test_a_config_mistake_is_reported_at_its_path(value: Any, path: str, says: str) -> None:
    _, problems = read(value)
    assert any(p == path and says in message for p, message in problems), problems


def test_prepended_rules_go_first_and_http_replaces() -> None:
    preset = (ServiceRoutes(SHOP, (HttpRule(to(("v1", 100))),)),)
    canary = HttpRule(to(("v2", 100)), matches=(header("x-test", "exact", "1"),))
    changes, _ = read(
        {
            "cart": {
                "prepend": [
                    {
                        "match": [{"headers": {"x-test": {"exact": "1"}}}],
                        "route": [{"destination": {"subset": "v2"}}],
                    }
                ]
            }
        }
    )
    assert apply_routes(preset, changes)[0].rules == (canary, preset[0].rules[0])
    changes, _ = read({"cart": {"http": [{"route": [{"destination": {"subset": "v2"}}]}]}})
    assert apply_routes(preset, changes)[0].rules == (HttpRule(to(("v2", 100))),)


def test_destination_rules_come_before_virtual_services() -> None:
    kinds = [
        o["kind"] for o in traffic_manifests((ServiceRoutes(SHOP, (HttpRule(to(("v1", 100))),)),))
    ]
    assert kinds == ["DestinationRule", "VirtualService"]
