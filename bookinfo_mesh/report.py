"""Human-readable reports of renders and diffs: rich tables for terminals, Markdown for PRs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bookinfo_mesh.diff import StackDiff, short
from bookinfo_mesh.mermaid import fenced, rendered_flowchart
from bookinfo_mesh.render import Rendered

_OP_MARK = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}


def _route_text(cells: dict[str, str]) -> str:
    return cells["to"] + (f"; {cells['fault']}" if "fault" in cells else "")


def _cohorts(summary: dict[str, Any]) -> list[str]:
    return list(summary["predictedPages"])


def print_render(rendered: Rendered, console: Console, written_to: str | None) -> None:
    summary = rendered.summary
    config = summary["config"]
    console.print(
        f"[bold]bookinfo-mesh[/] stack [bold]{summary['stack']}[/] "
        f"({config.get('aws:region', '?')}), mode [bold]{config['mode']}[/]: "
        f"{summary['resourceCount']} resources, {len(rendered.manifests)} Kubernetes objects"
    )
    for component, counts in summary["resources"].items():
        table = Table(title=f"{component}: {sum(counts.values())} resources", title_justify="left")
        table.add_column("type")
        table.add_column("count", justify="right")
        for type_, count in counts.items():
            table.add_row(type_, str(count))
        console.print(table)

    cohorts = _cohorts(summary)
    routes = Table(title="Routes per service and cohort", title_justify="left")
    routes.add_column("service")
    for cohort in cohorts:
        routes.add_column(cohort)
    for service, by_cohort in summary["routes"].items():
        routes.add_row(service, *(_route_text(by_cohort[c]) for c in cohorts))
    console.print(routes)

    pages = Table(title="Predicted /productpage", title_justify="left")
    pages.add_column("cohort")
    pages.add_column("sees")
    for cohort, page in summary["predictedPages"].items():
        pages.add_row(cohort, page["summary"])
    console.print(pages)
    if written_to:
        console.print(f"wrote {written_to}/resources.json, manifests.yaml, summary.json")


def _changes_header(diff: StackDiff) -> str:
    return ", ".join(
        f"{diff.count(op)} to {op}" for op in ("create", "update", "replace", "delete")
    )


def _page_rows(diff: StackDiff) -> list[tuple[str, str, str]]:
    before, after = diff.before.summary["predictedPages"], diff.after.summary["predictedPages"]
    return [
        (cohort, before.get(cohort, {}).get("summary", "-"), after[cohort]["summary"])
        for cohort in after
    ]


def _route_rows(diff: StackDiff) -> list[tuple[str, str, str, str]]:
    before, after = diff.before.summary["routes"], diff.after.summary["routes"]
    rows = []
    for service, by_cohort in after.items():
        for cohort, cells in by_cohort.items():
            old = before.get(service, {}).get(cohort)
            old_text = _route_text(old) if old else "-"
            if old_text != _route_text(cells):
                rows.append((service, cohort, old_text, _route_text(cells)))
    return rows


def print_diff(diff: StackDiff, console: Console) -> None:
    console.print(f"[bold]Resources[/]: {_changes_header(diff)}")
    for change in diff.changes:
        console.print(f"  {_OP_MARK[change.op]} {change.name} [dim]({change.type})[/]")
        for field in change.fields:
            console.print(f"      {field}", markup=False)
    routes = Table(title="Routes that change", title_justify="left")
    for column in ("service", "cohort", "before", "after"):
        routes.add_column(column)
    for row in _route_rows(diff):
        routes.add_row(*row)
    console.print(routes if routes.row_count else "Routes: unchanged")
    pages = Table(title="Predicted /productpage", title_justify="left")
    for column in ("cohort", "before", "after"):
        pages.add_column(column)
    for row in _page_rows(diff):
        pages.add_row(*row)
    console.print(pages)


def diff_markdown(diff: StackDiff) -> str:
    """The diff as a pull-request comment."""
    stack = diff.after.summary["stack"]
    lines = [f"### bookinfo-mesh `{stack}`: {_changes_header(diff)}", ""]
    if diff.changes:
        lines += ["| op | resource | type |", "|---|---|---|"]
        lines += [f"| {c.op} | `{c.name}` | `{c.type}` |" for c in diff.changes]
        detailed = [c for c in diff.changes if c.fields]
        if detailed:
            lines += ["", "<details><summary>Field changes</summary>", "", "```diff"]
            for change in detailed:
                lines.append(f"@@ {change.name} @@")
                for field in change.fields:
                    lines.append(f"- {field.path}: {short(field.before)}")
                    lines.append(f"+ {field.path}: {short(field.after)}")
            lines += ["```", "</details>"]
    route_rows = _route_rows(diff)
    lines += ["", "#### Routes that change" if route_rows else "#### Routes: unchanged"]
    if route_rows:
        lines += ["| service | cohort | before | after |", "|---|---|---|---|"]
        lines += [f"| {s} | {c} | {b} | {a} |" for s, c, b, a in route_rows]
    lines += ["", "#### Predicted /productpage", "| cohort | before | after |", "|---|---|---|"]
    lines += [f"| {c} | {b} | {a} |" for c, b, a in _page_rows(diff)]
    lines += traffic_markdown(diff)
    return "\n".join(lines) + "\n"


def traffic_markdown(diff: StackDiff) -> list[str]:
    """Mermaid pictures of the traffic before and after (one when the routes do not change)."""
    before, after = (
        rendered_flowchart(r.manifests, r.summary["config"]) for r in (diff.before, diff.after)
    )
    if before == after:
        return ["", "#### Traffic (unchanged)", "", fenced(after)]
    return ["", "#### Traffic before", "", fenced(before), "#### Traffic after", "", fenced(after)]
