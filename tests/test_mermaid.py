"""Mermaid pictures and the PR comment: escaping, edges per mode, the README's copies, stacks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookinfo_mesh.commands.pr_comment import touched_stacks
from bookinfo_mesh.mermaid import escape_label, services_flowchart, traffic_flowchart
from bookinfo_mesh.stack_files import load_engine_config
from model.http_policy import Abort, Destination, HttpRule, RequestMatch, StringMatch
from model.routing import Mode, TrafficSettings, route_table
from stacks.config import PROJECT, parse_stack_config
from tests.programs import shared_render


def mode_flowchart(mode: str, stack: str = "dev") -> str:
    """The README's picture of a mode: the stack's own settings, in that mode."""
    config, _ = load_engine_config(stack, {"mode": mode})
    prefix = f"{PROJECT}:"
    parsed = parse_stack_config(
        {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
    )
    return traffic_flowchart(route_table(parsed.mode, parsed.traffic), parsed.test_user)


@given(st.text())
def test_an_escaped_label_has_no_character_mermaid_or_html_could_read_as_syntax(text: str) -> None:
    label = escape_label(text)
    inner = label[1:-1]
    assert label.startswith('"') and label.endswith('"'), label
    assert not set(inner) & set('"<>&`|[]{}\n\r\\'), f"{text!r} leaks syntax: {label}"
    decoded = re.sub(r"#(\d+);", lambda m: chr(int(m[1])), inner)
    assert decoded == text, f"{text!r} does not decode back from {label}"


def test_a_hostile_test_user_stays_a_label() -> None:
    user = 'x"]) --> evil["<img src=x>'
    chart = traffic_flowchart(route_table(Mode.USER_V2, TrafficSettings(test_user=user)), user)
    assert "<img" not in chart and 'x"]' not in chart, f"the user escaped its label:\n{chart}"
    assert chart.count("subgraph") == 2 and chart.count("  end") == 2, chart


@pytest.mark.parametrize(
    ("mode", "anonymous", "tester"),
    [
        ("all-v1", ["-->", "reviews v1"], ["reviews v1"]),
        ("user-v2", ["reviews v1"], ["reviews v2", "ratings v1"]),
        ("delay", ["reviews v1"], ['-.->|"fault: delay 7s (100 %)"|']),
        ("abort", ["reviews v1"], ['-.->|"fault: abort 500 (100 %)"|']),
        ("split50", ['-->|"50 %"|', "reviews v3"], ['-->|"50 %"|', "reviews v3"]),
        ("v3", ["reviews v3", "ratings v1"], ["reviews v3", "ratings v1"]),
    ],
)
def test_each_mode_draws_its_weights_subsets_and_faults_per_cohort(
    mode: str, anonymous: list[str], tester: list[str]
) -> None:
    chart = mode_flowchart(mode)
    first, second = chart.split('subgraph c1["user jason"]')
    for text in anonymous:
        assert text in first, f"{mode}: anonymous cohort lacks {text!r}:\n{chart}"
    for text in tester:
        assert text in second, f"{mode}: jason's cohort lacks {text!r}:\n{chart}"
    if mode not in ("delay", "abort"):
        assert "fault" not in chart, f"{mode} draws a fault it does not have"
    if mode in ("all-v1", "user-v2"):
        assert "ratings" not in first, "reviews v1 never calls ratings, yet an edge is drawn"


@pytest.mark.parametrize(
    ("changed", "touched"),
    [
        (["Pulumi.dev.yaml"], ["dev"]),
        (["Pulumi.prod.yaml", "Pulumi.dev.yaml"], ["dev", "prod"]),
        (["README.md"], ["dev", "prod"]),
        (["Pulumi.dev.yaml", "model/routing.py"], ["dev", "prod"]),
        (["Pulumi.yaml"], ["dev", "prod"]),
        (["Pulumi.staging.yaml"], []),
        ([], []),
    ],
)
def test_a_stack_file_touches_its_stack_and_anything_else_touches_all(
    changed: list[str], touched: list[str]
) -> None:
    assert touched_stacks(changed, ["prod", "dev"]) == touched, f"{changed} -> wrong stacks"


def test_the_pr_comment_draws_the_traffic_before_and_after() -> None:
    from bookinfo_mesh.diff import diff_rendered
    from bookinfo_mesh.report import diff_markdown

    before, after = (shared_render("dev", {"mode": m}) for m in ("user-v2", "delay"))
    text = diff_markdown(diff_rendered(before, after))
    assert text.count("```mermaid") == 2, f"expected two pictures:\n{text}"
    old, new = text.split("#### Traffic after")
    assert "fault" not in old.split("#### Traffic before")[1] and "fault: delay" in new, text


def test_another_projects_services_each_get_their_subsets_for_everyone() -> None:
    testers = RequestMatch(headers={"x-tester": StringMatch("exact", "yes")})
    table = {
        "web": (HttpRule((Destination("v1", 90), Destination("v2", 10))),),
        "cart": (HttpRule((Destination("v1"),), fault=Abort(503, 5.0)),),
        "beta": (HttpRule((Destination("v2"),), matches=(testers,)),),
    }
    chart = services_flowchart(table)
    assert chart.startswith('flowchart LR\n  subgraph everyone["everyone"]\n')
    assert '    s0 -->|"90 %"| s0n0["web v1"]\n    s0 -->|"10 %"| s0n1["web v2"]\n' in chart
    assert '    s1 -.->|"fault: abort 503 (5 %)"| s1n0["cart v1"]\n' in chart
    assert '    s2 --> s2none["no rule: 404"]\n' in chart, "only testers reach beta"
