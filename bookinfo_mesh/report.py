"""Human-readable reports of renders and diffs: rich tables for terminals, Markdown for PRs."""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bookinfo_mesh.diff import StackDiff, short
from bookinfo_mesh.mermaid import fenced, rendered_flowchart
from bookinfo_mesh.render import Rendered
from model.outcomes import cohort_label

_OP_MARK = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}
# Characters that would end a table cell, open HTML or an entity, or start Markdown markup
# (code, emphasis, links, strikethrough) inside a table cell. Numeric entities show them as typed.
_MARKDOWN_SPECIAL = re.compile(r"[&<>|`\\*_\[\]~]")
_LONGEST_BACKTICKS = re.compile(r"`+")


def md(value: object) -> str:
    """A config or resource value as Markdown text that shows it as typed, on one line."""
    text = " ".join(str(value).splitlines())
    return _MARKDOWN_SPECIAL.sub(lambda m: f"&#{ord(m[0])};", text)


def _fence(lines: list[str]) -> str:
    """A code fence longer than any backtick run in `lines`, so none of them can close it."""
    runs = [len(run) for line in lines for run in _LONGEST_BACKTICKS.findall(line)]
    longest = max(runs, default=0)
    return "`" * max(3, longest + 1)


def _cells(*values: str) -> list[Text]:
    """Table cells as plain text: rich must not read "[bold]" in a value as markup."""
    return [Text(v) for v in values]


def print_render(rendered: Rendered, console: Console, written_to: str | None) -> None:
    summary = rendered.summary
    config = summary.config
    where = (
        f"({escape(config.get('aws:region', '?'))}), mode [bold]{escape(config['mode'])}[/]"
        if "mode" in config
        else f"of project [bold]{escape(summary.project)}[/]"
    )
    console.print(
        f"[bold]bookinfo-mesh[/] stack [bold]{escape(summary.stack)}[/] {where}: "
        f"{summary.resource_count} resources, {len(rendered.manifests)} Kubernetes objects"
    )
    for component, counts in summary.resources.items():
        table = Table(
            title=f"{escape(component)}: {sum(counts.values())} resources", title_justify="left"
        )
        table.add_column("type")
        table.add_column("count", justify="right")
        for type_, count in counts.items():
            table.add_row(*_cells(type_, str(count)))
        console.print(table)

    cohorts = list(next(iter(summary.routes.values()), {}))
    routes = Table(title="Routes per service and cohort", title_justify="left")
    routes.add_column("service")
    for cohort in cohorts:
        routes.add_column(Text(cohort_label(cohort)))
    for service, by_cohort in summary.routes.items():
        routes.add_row(*_cells(service, *(str(by_cohort[c]) for c in cohorts)))
    console.print(routes)

    if summary.predicted_pages:
        pages = Table(title="Predicted /productpage", title_justify="left")
        pages.add_column("cohort")
        pages.add_column("sees")
        for cohort, page in summary.predicted_pages.items():
            pages.add_row(*_cells(cohort_label(cohort), page.summary))
        console.print(pages)
    if written_to:
        console.print(Text(f"wrote {written_to}/resources.json, manifests.yaml, summary.json"))


def _changes_header(diff: StackDiff) -> str:
    return ", ".join(
        f"{diff.count(op)} to {op}" for op in ("create", "update", "replace", "delete")
    )


def _page_rows(diff: StackDiff) -> list[tuple[str, str, str]]:
    """One row per cohort on either side: a cohort that leaves shows "-" after, and back."""
    before, after = diff.before.summary.predicted_pages, diff.after.summary.predicted_pages
    return [
        (
            cohort_label(cohort),
            before[cohort].summary if cohort in before else "-",
            after[cohort].summary if cohort in after else "-",
        )
        for cohort in [*before, *(c for c in after if c not in before)]
    ]


def _route_rows(diff: StackDiff) -> list[tuple[str, str, str, str]]:
    before, after = diff.before.summary.routes, diff.after.summary.routes
    rows = []
    for service in [*after, *(s for s in before if s not in after)]:
        old_cohorts, new_cohorts = before.get(service, {}), after.get(service, {})
        for cohort in [*old_cohorts, *(c for c in new_cohorts if c not in old_cohorts)]:
            old, new = old_cohorts.get(cohort), new_cohorts.get(cohort)
            old_text = str(old) if old else "-"
            new_text = str(new) if new else "-"
            if old_text != new_text:
                rows.append((service, cohort_label(cohort), old_text, new_text))
    return rows


def print_diff(diff: StackDiff, console: Console) -> None:
    console.print(f"[bold]Resources[/]: {_changes_header(diff)}")
    for change in diff.changes:
        console.print(
            f"  {_OP_MARK[change.op]} {escape(change.name)} [dim]({escape(change.type)})[/]"
        )
        for field in change.fields:
            console.print(f"      {field}", markup=False)
    steps = diff.update_steps
    if steps:
        console.print("[bold]Order of the update[/]")
        for number, step in enumerate(steps, 1):
            names = ", ".join(f"{_OP_MARK[c.op]} {escape(c.name)}" for c in step)
            console.print(f"  {number}. {names}")
    routes = Table(title="Routes that change", title_justify="left")
    for column in ("service", "cohort", "before", "after"):
        routes.add_column(column)
    for row in _route_rows(diff):
        routes.add_row(*_cells(*row))
    console.print(routes if routes.row_count else "Routes: unchanged")
    page_rows = _page_rows(diff)
    if page_rows:
        pages = Table(title="Predicted /productpage", title_justify="left")
        for column in ("cohort", "before", "after"):
            pages.add_column(column)
        for row in page_rows:
            pages.add_row(*_cells(*row))
        console.print(pages)


def diff_markdown(diff: StackDiff) -> str:
    """The diff as a pull-request comment."""
    stack = diff.after.summary.stack
    lines = [f"### bookinfo-mesh {md(stack)}: {_changes_header(diff)}", ""]
    if diff.changes:
        lines += ["| op | resource | type |", "|---|---|---|"]
        lines += [f"| {c.op} | {md(c.name)} | {md(c.type)} |" for c in diff.changes]
        detailed = [c for c in diff.changes if c.fields]
        if detailed:
            # Inside a code block Markdown and HTML are inert; the fence outlasts any value.
            block: list[str] = []
            for change in detailed:
                block.append(f"@@ {change.name} @@")
                for field in change.fields:
                    block.append(f"- {field.path}: {short(field.before)}")
                    block.append(f"+ {field.path}: {short(field.after)}")
            fence = _fence(block)
            lines += ["", "<details><summary>Field changes</summary>", "", f"{fence}diff"]
            lines += [*block, fence, "</details>"]
        lines += ["", "#### Order of the update", ""]
        lines += [
            f"{number}. " + ", ".join(f"{c.op} {md(c.name)}" for c in step)
            for number, step in enumerate(diff.update_steps, 1)
        ]
    route_rows = _route_rows(diff)
    lines += ["", "#### Routes that change" if route_rows else "#### Routes: unchanged"]
    if route_rows:
        lines += ["| service | cohort | before | after |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(map(md, row)) + " |" for row in route_rows]
    page_rows = _page_rows(diff)
    if page_rows:
        lines += ["", "#### Predicted /productpage", "| cohort | before | after |", "|---|---|---|"]
        lines += ["| " + " | ".join(map(md, row)) + " |" for row in page_rows]
    lines += traffic_markdown(diff)
    return "\n".join(lines) + "\n"


def traffic_markdown(diff: StackDiff) -> list[str]:
    """Mermaid pictures of the traffic before and after (one when the routes do not change)."""
    before, after = (
        rendered_flowchart(r.manifests, r.summary.test_user) for r in (diff.before, diff.after)
    )
    if before == after:
        return ["", "#### Traffic (unchanged)", "", fenced(after)]
    return ["", "#### Traffic before", "", fenced(before), "#### Traffic after", "", fenced(after)]
