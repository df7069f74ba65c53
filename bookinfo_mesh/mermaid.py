"""Mermaid flowcharts of the traffic: who goes where, with which weight and which fault.

GitHub renders ```mermaid blocks in comments and READMEs. Labels carry config values (the
test user, subset names from manifests), so every label is quoted and every character that
Mermaid or HTML could read as syntax is written as a Mermaid entity code (`#35;`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from model.http_policy import Request, first_rule
from model.outcomes import EVERYONE, REVIEWS_RATINGS_TIMEOUT_S, cohort_key, cohort_label
from model.policy_manifests import routes_of
from model.routing import RouteTable, describe_rule, rule_for

# Who calls whom in Bookinfo (productpage.py: details and reviews; reviews calls ratings
# only in the versions that show stars, which are the ones with a ratings timeout).
CALLS: dict[str, tuple[str, ...]] = {"productpage": ("details", "reviews"), "reviews": ("ratings",)}
_SAFE = re.compile(r"[A-Za-z0-9 .,:%()/_+-]")


def escape_label(text: str) -> str:
    """`text` as a quoted Mermaid label: anything outside a small safe set becomes `#N;`."""
    return '"' + "".join(c if _SAFE.fullmatch(c) else f"#{ord(c)};" for c in text) + '"'


def _calls(service: str, subset: str) -> tuple[str, ...]:
    if service == "reviews" and subset not in REVIEWS_RATINGS_TIMEOUT_S:
        return ()
    return CALLS.get(service, ())


def traffic_flowchart(table: RouteTable, test_user: str) -> str:
    """ingress -> productpage -> details, reviews subsets -> ratings, one subgraph per cohort.

    Edges carry the weight when it is below 100 % and the fault of the route, if any; an
    edge with a fault is dotted.
    """
    lines = ["flowchart LR", f"  ingress([{escape_label('istio-ingressgateway')}])"]
    for index, user in enumerate((None, test_user)):
        cohort = cohort_label(cohort_key(user))
        prefix = f"c{index}"
        header = f"end-user: {user}" if user is not None else "no end-user header"
        nodes: dict[tuple[str, str], str] = {}
        edges: list[str] = []

        def node(service: str, subset: str, prefix: str = prefix, nodes: dict = nodes) -> str:
            key = (service, subset)
            if key not in nodes:
                nodes[key] = f"{prefix}n{len(nodes)}"
            return nodes[key]

        def visit(
            caller: str,
            service: str,
            user: str | None = user,
            header: str = header,
            edges: list = edges,
        ) -> None:
            described = describe_rule(rule_for(table[service], user))
            fault = described.get("fault")
            to: dict[str, int] = described["to"]  # type: ignore[assignment]
            for subset, weight in to.items():
                parts = (
                    ([header] if caller == "ingress" else [])
                    + ([f"{weight} %"] if weight < 100 else [])
                    + ([f"fault: {fault}"] if fault else [])
                )
                arrow = "-.->" if fault else "-->"
                label = f"|{escape_label(', '.join(parts))}|" if parts else ""
                edges.append(f"    {caller} {arrow}{label} {node(service, subset)}")
                for callee in _calls(service, subset):
                    visit(node(service, subset), callee)

        visit("ingress", "productpage")
        lines.append(f"  subgraph {prefix}[{escape_label(cohort)}]")
        lines += [
            f"    {nid}[{escape_label(f'{service} {subset}')}]"
            for (service, subset), nid in nodes.items()
        ]
        # Edges from the shared ingress node go outside the subgraph, or Mermaid pulls the
        # ingress into the first subgraph that mentions it.
        lines += [e for e in edges if not e.startswith("    ingress")]
        lines.append("  end")
        lines += ["  " + e.strip() for e in edges if e.startswith("    ingress")]
    return "\n".join(lines) + "\n"


def services_flowchart(table: RouteTable) -> str:
    """Each service -> the subsets a request that carries nothing reaches, with weights and
    faults: the picture for a project whose calls and cohorts the tools do not know."""
    lines = ["flowchart LR", f"  subgraph everyone[{escape_label(EVERYONE)}]"]
    for index, (service, rules) in enumerate(table.items()):
        lines.append(f"    s{index}([{escape_label(service)}])")
        rule = first_rule(rules, Request())
        if rule is None:
            lines.append(f"    s{index} --> s{index}none[{escape_label('no rule: 404')}]")
            continue
        described = describe_rule(rule)
        fault = described.get("fault")
        to: dict[str, int] = described["to"]  # type: ignore[assignment]
        for number, (subset, weight) in enumerate(to.items()):
            parts = ([f"{weight} %"] if weight < 100 else []) + (
                [f"fault: {fault}"] if fault else []
            )
            arrow = "-.->" if fault else "-->"
            label = f"|{escape_label(', '.join(parts))}|" if parts else ""
            target = f"s{index}n{number}[{escape_label(f'{service} {subset}')}]"
            lines.append(f"    s{index} {arrow}{label} {target}")
    lines.append("  end")
    return "\n".join(lines) + "\n"


def rendered_flowchart(manifests: Sequence[Mapping[str, Any]], test_user: str | None) -> str:
    """The flowchart of a render: routes read back from its VirtualServices, as render does;
    Bookinfo's cohorts and calls where there is a test user, else services_flowchart."""
    table = routes_of([m for m in manifests if m.get("kind") == "VirtualService"])
    return traffic_flowchart(table, test_user) if test_user else services_flowchart(table)


def fenced(chart: str) -> str:
    return f"```mermaid\n{chart}```\n"
