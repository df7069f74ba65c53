"""Output samples in the docs, each produced by the code that prints it: `make docs` rewrites them.

A sample is a fenced block right after a `<!-- sample: NAME -->` line. `make docs` replaces
each block's body with what SAMPLES[NAME] prints now; tests/test_docs.py fails while any
block differs, so no sample drifts from the command it shows.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

from rich.console import Console

from bookinfo_mesh.cli import main as cli
from bookinfo_mesh.diff import diff_rendered
from bookinfo_mesh.engine import run_program
from bookinfo_mesh.mermaid import traffic_flowchart
from bookinfo_mesh.promotion import istio_values
from bookinfo_mesh.render import Rendered, render_run
from bookinfo_mesh.report import print_diff
from bookinfo_mesh.stack_files import stack_config
from model.control_plane import ControlPlane, Revision, next_step
from model.istio_releases import parse_release
from model.routing import MODES, route_table

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
SAMPLE = re.compile(
    r"(?P<head><!-- sample: (?P<name>[\w-]+) -->\n(?P<fence>`{3,})\w*\n)(?P<body>.*?)(?P=fence)\n",
    re.S,
)
# The rehearsed minor upgrade: a stack on 1.30.4 walking to 1.31.0.
LADDER_FROM, LADDER_TO = "1.30.4", "1.31.0"
WIDTH = 120  # the CLI's console width


@cache
def command_output(*argv: str) -> str:
    """What `bookinfo-mesh ARGV` prints on stdout; it must succeed (each runs once)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(list(argv))
    if code != 0:
        raise SystemExit(f"bookinfo-mesh {' '.join(argv)} exited {code}")
    return out.getvalue()


def ladder() -> list[dict[str, str]]:
    """The Istio keys of each step `promote --istio` takes from LADDER_FROM to LADDER_TO."""
    plane = ControlPlane(Revision(parse_release(LADDER_FROM)))
    target = parse_release(LADDER_TO)
    steps = [istio_values(plane)]
    while (following := next_step(plane, target)) != plane:
        plane = following
        steps.append(istio_values(plane))
    return steps


@cache
def dev_render(keys: tuple[tuple[str, str], ...]) -> Rendered:
    """The dev stack rendered with these config keys set (each step is rendered once)."""
    return render_run(run_program("dev", dict(keys)))


def ladder_diff(step: int) -> str:
    """What `bookinfo-mesh diff` prints for step `step` of the ladder on the dev stack."""
    before, after = ladder()[step - 1 : step + 1]
    diff = diff_rendered(*(dev_render(tuple(keys.items())) for keys in (before, after)))
    out = io.StringIO()
    print_diff(diff, Console(file=out, width=WIDTH))
    return out.getvalue()


def ladder_keys() -> str:
    """The stack file's Istio lines at each step of the ladder, as promote writes them."""
    lines = []
    for number, keys in enumerate(ladder()):
        lines.append(f"# step {number}" if number else "# before")
        lines += [f"bookinfo-mesh:{key}: {value}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def mode_flowchart(mode: str) -> str:
    """The traffic picture of the dev stack in `mode`, as the PR comment draws it."""
    config = stack_config("dev", {"mode": mode})
    return traffic_flowchart(route_table(config.mode, config.traffic), config.test_user)


SAMPLES: Mapping[str, Callable[[], str]] = {
    **{f"traffic-{mode}": (lambda mode=mode: mode_flowchart(mode)) for mode in MODES},
    "istio-ladder-keys": ladder_keys,
    "istio-patch-promote": lambda: command_output(
        "promote", "--stack", "dev", "--istio", "1.31.1", "--dry-run"
    ),
    "istio-patch-diff": lambda: command_output(
        "diff", "--stack", "dev", "--set", "istioVersion=1.31.1"
    ),
    **{f"istio-ladder-{n}": (lambda n=n: ladder_diff(n)) for n in range(1, 5)},
}


def rewrite(text: str) -> str:
    """`text` with every sample block's body as its command prints it now."""

    def fresh(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in SAMPLES:
            raise SystemExit(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
        # Trailing spaces (rich pads table titles) would not survive an editor.
        body = "".join(f"{line.rstrip()}\n" for line in SAMPLES[name]().splitlines())
        return f"{match['head']}{body}{match['fence']}\n"

    return SAMPLE.sub(fresh, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale samples")
    args = parser.parse_args(argv)
    stale = []
    for path in DOCS:
        text = path.read_text()
        new = rewrite(text)
        if new != text:
            stale.append(path.relative_to(ROOT).as_posix())
            if not args.check:
                path.write_text(new)
    if stale:
        verb = "stale" if args.check else "rewrote"
        print(f"{verb}: {', '.join(stale)}", file=sys.stderr if args.check else sys.stdout)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
