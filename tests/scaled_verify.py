"""`bookinfo-mesh verify` against the Bookinfo double, whose clocks run SCALE times as fast.

In-process tests patch the command with `scaled()`; the Ctrl-C test runs this module as a
process of its own (`python -m tests.scaled_verify verify ...`), since a real SIGINT needs one.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from bookinfo_mesh import cli
from bookinfo_mesh.commands import verify
from bookinfo_mesh.judging import Tolerance

# 7 s of injected delay takes 1.4 s; the 1 s latency tolerance becomes 0.2 s. A page the
# double answers at once arrives 15-25 ms late here, 60 ms with both cores busy elsewhere
# (serve() keeps the garbage collector out of the run).
SCALE = 0.2


def scaled(args: argparse.Namespace, console: Console) -> int:
    """verify's run, for a mesh that runs SCALE times as fast as a real one."""
    return verify.run_with(args, console, Tolerance(SCALE))


if __name__ == "__main__":
    verify.run = scaled
    sys.exit(cli.main())
