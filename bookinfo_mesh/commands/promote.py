"""`bookinfo-mesh promote`: move a stack one step by editing Pulumi.<stack>.yaml."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bookinfo_mesh.commands.arguments import add_project_argument
from bookinfo_mesh.errors import EXIT_OK
from bookinfo_mesh.outputs import write_file
from bookinfo_mesh.promotion import (
    PREVIOUS,
    ProjectPromotion,
    PromoteError,
    Promotion,
    parse_weights,
    plan_istio_promotion,
    plan_project_promotion,
    plan_promotion,
    plan_service_promotion,
)
from bookinfo_mesh.render import RouteCell, cohort_routes
from model.control_plane import ControlPlane
from model.outcomes import EVERYONE, cohort_label, predict_page
from model.routing import MODES
from model.serving import program_serving
from stacks.config import StackConfig


def tables(config: StackConfig) -> tuple[dict[str, dict[str, RouteCell]], dict[str, str]]:
    """Routes per service and cohort, and the predicted page per cohort, as render has them."""
    table = config.route_table
    serving = program_serving(config.istio_version)
    pages = {p.cohort: p.describe() for p in predict_page(table, serving, config.test_user)}
    return cohort_routes(table, config.test_user), pages


def print_promotion(promotion: Promotion, console: Console, written: bool) -> None:
    """The route table and the predicted pages before and after, changed rows marked."""
    old_routes, old_pages = tables(promotion.before)
    new_routes, new_pages = tables(promotion.after)
    routes = Table(title="Routes per service and cohort", title_justify="left")
    for column in ("", "service", "cohort", "before", "after"):
        routes.add_column(column)
    for service, by_cohort in new_routes.items():
        for cohort, cell in by_cohort.items():
            old, new = str(old_routes[service][cohort]), str(cell)
            routes.add_row("*" if old != new else "", service, Text(cohort_label(cohort)), old, new)
    pages = Table(title="Predicted /productpage", title_justify="left")
    for column in ("cohort", "before", "after"):
        pages.add_column(column)
    for cohort, page in new_pages.items():
        pages.add_row(Text(cohort_label(cohort)), old_pages.get(cohort, "-"), page)
    console.print(routes)
    console.print(pages)
    name = promotion.path.name
    change = f"mode {promotion.before.mode.value} -> {promotion.after.mode.value}"
    stepped = [
        service
        for service, rules in promotion.after.route_table.items()
        if promotion.before.route_table.get(service) != rules
    ]
    if promotion.before.mode == promotion.after.mode and stepped:
        change = f"routes of {', '.join(stepped)} stepped"
    _print_outcome(console, name, promotion.new_text != promotion.old_text, written, change)


def _print_outcome(console: Console, name: str, changed: bool, written: bool, change: str) -> None:
    """A traffic step's last line: unchanged, written (and what next), or not written."""
    if not changed:
        console.print(Text(f"{name} already says this; unchanged"))
    elif written:
        console.print(Text(f"wrote {name}: {change}; commit it and open a pull request"))
    else:
        console.print(Text(f"{name} not written (--dry-run): {change}"))


def _plane_rows(plane: ControlPlane) -> dict[str, str]:
    """What runs where, in words, for one side of an Istio step."""
    return {
        "istiod revisions": ", ".join(f"{r.name} ({r.version})" for r in plane.revisions),
        "CRDs (base chart)": plane.crds_from.version,
        "Bookinfo (tag stable)": plane.workloads.name,
        "ingress gateway": plane.gateway.name,
    }


def print_istio_promotion(promotion: Promotion, console: Console, written: bool) -> None:
    """The control plane before and after one step, changed rows marked, and what is next."""
    before, after = promotion.before.control_plane, promotion.after.control_plane
    table = Table(title="Control plane", title_justify="left")
    for column in ("", "", "before", "after"):
        table.add_column(column)
    old_rows = _plane_rows(before)
    for what, new in _plane_rows(after).items():
        table.add_row("*" if old_rows[what] != new else "", what, old_rows[what], new)
    console.print(table)
    name = promotion.path.name
    if promotion.old_text == promotion.new_text:
        console.print(Text(f"{name} already says this; unchanged"))
        return
    verb = f"wrote {name}" if written else f"{name} not written (--dry-run)"
    console.print(Text(f"{verb}: {_istio_step_words(before, after)}"))
    if after.canary is not None:
        console.print(Text(f"next: promote --istio {after.canary.version}"))


def _istio_step_words(before: ControlPlane, after: ControlPlane) -> str:
    if after.canary is None and before.canary is None:
        return f"istiod {before.current.name} upgraded in place to {after.current.version}"
    if after.canary is None:
        return f"revision {after.current.name} is istioVersion now; {before.current.name} goes"
    if before.canary is None:
        return f"canary {after.canary.name} ({after.canary.version}) beside {before.current.name}"
    return f"canary {after.canary.name} at stage {after.stage.value}"


def print_project_promotion(promotion: ProjectPromotion, console: Console, written: bool) -> None:
    """Another project's routes before and after, for a request that carries nothing."""
    before, after = promotion.before.summary.routes, promotion.after.summary.routes
    table = Table(title="Routes per service (everyone)", title_justify="left")
    for column in ("", "service", "before", "after"):
        table.add_column(column)
    stepped = []
    for service, cells in after.items():
        old = str(before.get(service, {}).get(EVERYONE, "-"))
        new = str(cells[EVERYONE])
        if old != new:
            stepped.append(service)
        table.add_row("*" if old != new else "", service, old, new)
    console.print(table)
    change = f"routes of {', '.join(stepped) or 'no service'} stepped"
    changed = promotion.new_text != promotion.old_text
    _print_outcome(console, promotion.path.name, changed, written, change)


def run(args: argparse.Namespace, console: Console) -> int:
    weights = parse_weights(args.weights) if args.weights is not None else None
    if args.project is not None:
        return _run_in_project(args, weights, console)
    if args.istio is not None and (
        args.to is not None or weights is not None or args.service is not None
    ):
        raise PromoteError("--istio is a step of its own: leave out --to, --weights and --service")
    if args.to is None and weights is None and args.istio is None:
        raise PromoteError("promote needs --to MODE, --to previous, --weights or --istio VERSION")
    if args.istio is not None:
        promotion = plan_istio_promotion(args.stack, args.istio)
    elif args.service is not None:
        promotion = plan_service_promotion(args.stack, args.service, args.to, weights)
    else:
        promotion = plan_promotion(args.stack, args.to, weights)
    write = not args.dry_run and promotion.new_text != promotion.old_text
    if write:
        write_file(promotion.path, promotion.new_text, "--stack")
    show = print_istio_promotion if args.istio is not None else print_promotion
    show(promotion, console, written=write)
    return EXIT_OK


def _run_in_project(
    args: argparse.Namespace, weights: dict[str, int] | None, console: Console
) -> int:
    """promote in another project: only --service, since the modes and --istio are this
    project's."""
    if args.service is None or args.istio is not None:
        raise PromoteError(
            f"--project {args.project.name}: promote steps one service there: --service S "
            "--weights ... (or --to previous); the modes and --istio are bookinfo-mesh's"
        )
    promotion = plan_project_promotion(args.stack, args.service, args.to, weights, args.project)
    write = not args.dry_run and promotion.new_text != promotion.old_text
    if write:
        write_file(promotion.path, promotion.new_text, "--stack")
    print_project_promotion(promotion, console, written=write)
    return EXIT_OK


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "promote", help="move a stack one step: a traffic mode or an Istio release (edits its file)"
    )
    parser.add_argument("--stack", default="dev", help="stack name: edits Pulumi.<stack>.yaml")
    parser.add_argument(
        "--to",
        choices=(*MODES, PREVIOUS),
        help="the mode to move to; 'previous' restores the last committed other mode",
    )
    parser.add_argument(
        "--weights",
        metavar="SUBSET=PERCENT,...",
        help="split50 with these reviews weights, e.g. v1=90,v3=10 (implies --to split50)",
    )
    parser.add_argument(
        "--service",
        metavar="SERVICE",
        help="step this service's weights instead (its rule that matches everyone), in the "
        "routes key: --service reviews --weights v1=90,v3=10; --to previous restores routes",
    )
    parser.add_argument(
        "--istio",
        metavar="VERSION",
        help="one step of the control-plane upgrade toward this Istio release: a patch in "
        "place, a minor as a canary (installed, workloads, gateway, done); 'previous' steps back",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show the change, do not write the file"
    )
    add_project_argument(parser)
    parser.set_defaults(run=run)
