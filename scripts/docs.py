"""Output samples in the docs, each produced by the code that prints it: `make docs` rewrites them.

A sample is a fenced block right after a `<!-- sample: NAME -->` line. `make docs` replaces
each block's body with what SAMPLES[NAME] prints now; tests/test_docs.py fails while any
block differs, so no sample drifts from the command it shows.

Most samples call the `bookinfo-mesh` CLI in-process (command_output). Three kinds need more:

- A command that writes files runs from an empty temporary folder, so what it writes, and
  the path it prints, are those of a fresh checkout (`out/<stack>/`).
- `promote` and `pr-comment` need a stack file to edit and git history to compare with, so
  they run as processes in a temporary copy of the project with a history of its own.
- `verify` needs a live productpage: it runs against tests/bookinfo_double.py on 127.0.0.1.
  Two things in its report change from run to run and are normalised, nothing else: the
  double's URL (an ephemeral port), shown as SHOWN_URL, and the median latencies
  (LATENCY), a few milliseconds on loopback, shown as "#.## s".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rich.console import Console

from bookinfo_mesh.cli import main as cli
from bookinfo_mesh.diff import diff_rendered
from bookinfo_mesh.engine import ProgramRun, RegisteredResource, mock_id, run_program
from bookinfo_mesh.mermaid import traffic_flowchart
from bookinfo_mesh.promotion import istio_values, plan_promotion
from bookinfo_mesh.render import Rendered, render_run
from bookinfo_mesh.report import print_diff
from bookinfo_mesh.stack_files import stack_config
from model.control_plane import ControlPlane, Revision, next_step
from model.istio_releases import parse_release
from model.routing import MODES

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
SAMPLE = re.compile(
    r"(?P<head><!-- sample: (?P<name>[\w-]+) -->\n(?P<fence>`{3,})\w*\n)(?P<body>.*?)^(?P=fence)\n",
    re.S | re.M,
)
# The rehearsed minor upgrade: a stack on 1.30.4 walking to 1.31.0.
LADDER_FROM, LADDER_TO = "1.30.4", "1.31.0"
WIDTH = 120  # the CLI's console width


def _run_cli(argv: Iterable[str], exit_code: int = 0, stream: str = "stdout") -> str:
    """What `bookinfo-mesh ARGV` prints on `stream`; it must exit with `exit_code`."""
    argv = list(argv)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(argv)
    if code != exit_code:
        raise SystemExit(
            f"bookinfo-mesh {' '.join(argv)} exited {code}, not {exit_code}:\n{err.getvalue()}"
        )
    return (out if stream == "stdout" else err).getvalue()


@cache
def command_output(*argv: str, exit_code: int = 0, stream: str = "stdout") -> str:
    """What `bookinfo-mesh ARGV` prints (stdout unless `stream` is "stderr"); runs once."""
    return _run_cli(argv, exit_code, stream)


@cache
def output_in_empty_folder(*argv: str) -> str:
    """command_output for a command that writes files: run from an empty temporary folder,
    so it writes there and prints the paths a fresh checkout would show."""
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        return _run_cli(argv)


# --- Istio's upgrade ladder -------------------------------------------------------------


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
    return traffic_flowchart(config.route_table, config.test_user)


# --- promote and pr-comment, in a copy of the project -----------------------------------

GIT_IDENTITY = ("-c", "user.name=docs", "-c", "user.email=docs@example.com")
GIT_QUIET = ("-c", "commit.gpgsign=false")


def copy_project(destination: Path) -> None:
    """The working tree as git sees it (tracked files and new ones it does not ignore)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


class Project:
    """A throwaway copy of the project with its own git history, and its tools as processes
    run there: `bookinfo-mesh` reads the copy's stack files and git, never the checkout's."""

    def __init__(self, folder: Path) -> None:
        self.root = folder / "bookinfo-mesh"
        copy_project(self.root)
        self._git("init", "-q")
        self.commit("the project as it is")

    def _git(self, *argv: str) -> None:
        command = ["git", "-C", str(self.root), *GIT_IDENTITY, *GIT_QUIET, *argv]
        subprocess.run(command, capture_output=True, text=True, check=True)

    def commit(self, message: str) -> None:
        self._git("add", "-A")
        self._git("commit", "-q", "--no-verify", "--allow-empty", "-m", message)

    def tool(self, *argv: str) -> str:
        """`bookinfo-mesh ARGV` run in the copy; its stdout (it must succeed)."""
        done = subprocess.run(
            [sys.executable, "-m", "bookinfo_mesh", *argv],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(
                f"bookinfo-mesh {' '.join(argv)} exited {done.returncode}:\n{done.stderr}"
            )
        return done.stdout


def ladder_pull_request() -> tuple[str, str]:
    """Step 3 of the canary ladder as a pull request: what `promote --weights v1=90,v3=10`
    prints on a dev stack in user-v2, and the comment `pr-comment` writes for that commit."""
    with tempfile.TemporaryDirectory() as folder:
        project = Project(Path(folder))
        # The starting point, written as promote writes it: only the step shown runs the tool.
        start = plan_promotion("dev", "user-v2", None, project.root)
        start.path.write_text(start.new_text)
        project.commit("dev: user-v2")
        promoted = project.tool("promote", "--stack", "dev", "--weights", "v1=90,v3=10")
        project.commit("dev: reviews v1 90 %, v3 10 %")
        comment = Path(folder) / "comment.md"
        project.tool("pr-comment", "--base", "HEAD~1", "--out", str(comment))
        return promoted, comment.read_text()


# These take seconds of subprocesses: they start in the background when a page that shows
# them is rewritten, and run beside the in-process samples.
BACKGROUND: Mapping[str, Callable[[], Any]] = {"ladder-pull-request": ladder_pull_request}
_executor = ThreadPoolExecutor(max_workers=len(BACKGROUND), thread_name_prefix="docs-sample")


@cache
def background(job: str) -> Future[Any]:
    return _executor.submit(BACKGROUND[job])


# --- verify, against the Bookinfo double -----------------------------------------------

SHOWN_URL = "http://127.0.0.1:<port>/productpage"
# A median latency in verify's tables: one digit, two decimals, as verify prints it.
LATENCY = re.compile(r"(?<= )\d\.\d\d s(?= )")


def verify_output(overrides: Mapping[str, str], broken_weights: Mapping[str, int] | None) -> str:
    """`verify --stack dev --set ...` against the double playing the stack's own routes, or
    serving `broken_weights` of reviews to everyone instead; the report, normalised."""
    from tests.bookinfo_double import BookinfoDouble, Misbehaviour, serve

    config = stack_config("dev", dict(overrides))
    double = BookinfoDouble(
        config.route_table,
        time_scale=1.0,  # the real clock: the split modes inject no delay
        misbehaviour=Misbehaviour(reviews_weights=broken_weights),
    )
    sets = [f"--set={key}={value}" for key, value in overrides.items()]
    with serve(double) as url:
        report = _run_cli(
            ["verify", "--stack", "dev", *sets, "--url", url], exit_code=1 if broken_weights else 0
        )
    return LATENCY.sub("#.## s", report.replace(url, SHOWN_URL))


# --- what the prod stack protects ------------------------------------------------------


def protected(stack: str) -> str:
    """The resources a stack's render marks `protect`, by type (resources.json's field)."""
    by_type: dict[str, list[str]] = {}
    for resource in run_program(stack).resources:
        if resource.protect:
            by_type.setdefault(resource.type, []).append(resource.name)
    width = max(map(len, by_type))
    return "".join(
        f"{type_:<{width}}  {', '.join(sorted(names))}\n"
        for type_, names in sorted(by_type.items())
    )


# --- what a stack costs per hour -------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """An on-demand list price in USD, where AWS publishes it and when it was read there."""

    what: str
    usd: float
    per: str  # "hour", "GB-month" or "month"
    source: str
    checked: str  # "read <date>" at `source`, "restated <date>" by others, or "unconfirmed"


HOURS_PER_MONTH = 730  # the AWS Pricing Calculator's month
# Not read at the source (out of reach when this table was made): the Seoul on-demand price
# as remembered, to be confirmed in the AWS Pricing Calculator.
UNCONFIRMED = "unconfirmed"
# Per region. A stack in a region that is not here, or a node type without a price, fails
# `make docs` rather than be priced by a guess.
PRICES: Mapping[str, Mapping[str, Price]] = {
    "ap-northeast-2": {
        # $0.10 per cluster-hour in standard support, $0.60 in extended support (AWS, on
        # 2024-04-01; every region). Read 2026-12-01 in the post below.
        "eks-standard": Price(
            "EKS cluster, standard support",
            0.10,
            "hour",
            "https://aws.amazon.com/blogs/containers/"
            "amazon-eks-extended-support-for-kubernetes-versions-pricing/",
            "read 2026-12-01",
        ),
        "ec2:t3.large": Price(
            "EC2 t3.large, Linux",
            0.104,
            "hour",
            "https://aws.amazon.com/ec2/pricing/on-demand/",
            UNCONFIRMED,
        ),
        "ebs:gp3": Price(
            "EBS gp3 storage",
            0.0912,
            "GB-month",
            "https://aws.amazon.com/ebs/pricing/",
            UNCONFIRMED,
        ),
        "nat-gateway": Price(
            "NAT gateway", 0.059, "hour", "https://aws.amazon.com/vpc/pricing/", UNCONFIRMED
        ),
        # Every public IPv4 address, in use or idle, since 2024-02-01, in every region. Read
        # 2026-12-01 as several pages restate AWS's announcement (below), not on it.
        "public-ipv4": Price(
            "public IPv4 address",
            0.005,
            "hour",
            "https://aws.amazon.com/blogs/aws/new-aws-public-ipv4-address-charge-public-ip-insights/",
            "restated 2026-12-01",
        ),
        "nlb": Price(
            "Network Load Balancer",
            0.0225,
            "hour",
            "https://aws.amazon.com/elasticloadbalancing/pricing/",
            UNCONFIRMED,
        ),
        "kms-key": Price(
            "KMS key", 1.00, "month", "https://aws.amazon.com/kms/pricing/", UNCONFIRMED
        ),
    }
}
# A managed node group that sets no disk gets its AMI's root volume. EKS's AL2023 AMIs map
# /dev/xvda as 20 GiB of gp3: awslabs/amazon-eks-ami, templates/al2023/template.json
# (ami_block_device_mappings) and variables-default.json (volume_type), read 2026-12-01.
AMI_ROOT_VOLUMES = {"AL2023": (20, "gp3")}
NLB_ANNOTATION = ("service.beta.kubernetes.io/aws-load-balancer-type", "nlb")
ELB_SUBNET_TAG = "kubernetes.io/role/elb"


@dataclass(frozen=True)
class CostItem:
    what: str
    count: float
    price: Price

    @property
    def hourly(self) -> float:
        per_hour = {"hour": 1.0, "month": 1 / HOURS_PER_MONTH, "GB-month": 1 / HOURS_PER_MONTH}
        return self.count * self.price.usd * per_hour[self.price.per]


def _nlb_releases(run: ProgramRun) -> list[RegisteredResource]:
    """The Helm releases whose Service is a LoadBalancer that the cloud provider makes an NLB."""
    key, value = NLB_ANNOTATION
    found = []
    for release in run.of_type("kubernetes:helm.sh/v3:Release"):
        service = release.inputs.get("values", {}).get("service", {})
        is_lb = service.get("type", "LoadBalancer") == "LoadBalancer"  # the chart's default
        if is_lb and service.get("annotations", {}).get(key) == value:
            found.append(release)
    return found


def root_volume(run: ProgramRun, group: RegisteredResource) -> tuple[int, str, str]:
    """(GiB, EBS type, who sets them) of each node's root volume: the node group's disk size,
    its launch template's mapping, or else the AMI's own."""
    if "diskSize" in group.inputs:
        return int(group.inputs["diskSize"]), "gp2", "diskSize"  # EKS's type for diskSize
    template_id = group.inputs.get("launchTemplate", {}).get("id")
    for template in run.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        if mock_id(template.name) == template_id and template.inputs.get("blockDeviceMappings"):
            (mapping,) = template.inputs["blockDeviceMappings"]
            ebs = mapping["ebs"]
            return int(ebs["volumeSize"]), ebs.get("volumeType", "gp3"), "launch template"
    family = group.inputs["amiType"].split("_", 1)[0]
    if family not in AMI_ROOT_VOLUMES:
        raise SystemExit(f"no root volume known for AMI type {group.inputs['amiType']}")
    return *AMI_ROOT_VOLUMES[family], "the AMI's"


def cost_items(stack: str) -> tuple[str, list[CostItem]]:
    """What bills by the hour while `stack` is up, counted from its render, with prices."""
    run = run_program(stack)
    if run.error is not None:
        raise SystemExit(f"the {stack} stack does not render: {run.error}")
    region = run.config["aws:region"]
    if region not in PRICES:
        raise SystemExit(f"no prices for {region} in scripts/docs.py: add them, with sources")
    config = {k.removeprefix("bookinfo-mesh:"): v for k, v in run.config.items()}

    def price(key: str) -> Price:
        if key not in PRICES[region]:
            raise SystemExit(f"no price for {key} in {region} in scripts/docs.py: add it")
        return PRICES[region][key]

    items: list[CostItem] = []
    for cluster in run.of_type("eks:index:Cluster"):
        what = f"EKS control plane, Kubernetes {cluster.inputs['version']}"
        items.append(CostItem(what, 1, price("eks-standard")))
    for group in run.of_type("eks:index:ManagedNodeGroup"):
        types = group.inputs["instanceTypes"]
        if len(types) != 1:
            raise SystemExit(f"{group.name} mixes {types}: which one EC2 launches is unknown")
        nodes = group.inputs["scalingConfig"]["desiredSize"]
        items.append(CostItem(f"{types[0]} nodes (desired size)", nodes, price(f"ec2:{types[0]}")))
        size, kind, origin = root_volume(run, group)
        what = f"{kind} root volumes, GiB ({nodes} x {size}, {origin})"
        items.append(CostItem(what, nodes * size, price(f"ebs:{kind}")))
    nats = run.of_type("aws:ec2/natGateway:NatGateway")
    what = f"NAT gateways (natGateways: {config['natGateways']})"
    items.append(CostItem(what, len(nats), price("nat-gateway")))
    eips = run.of_type("aws:ec2/eip:Eip")
    items.append(CostItem("public IPv4: NAT Elastic IPs", len(eips), price("public-ipv4")))
    nlbs = _nlb_releases(run)
    items.append(CostItem("NLB of the ingress gateway", len(nlbs), price("nlb")))
    zones = {
        subnet.inputs["availabilityZone"]
        for subnet in run.of_type("aws:ec2/subnet:Subnet")
        if ELB_SUBNET_TAG in subnet.inputs.get("tags", {})
    }
    what = f"public IPv4: the NLB's, one per AZ ({len(zones)})"
    items.append(CostItem(what, len(nlbs) * len(zones), price("public-ipv4")))
    keys = run.of_type("aws:kms/key:Key")
    what = f"KMS keys (encryptSecrets: {config['encryptSecrets']})"
    items.append(CostItem(what, len(keys), price("kms-key")))
    return region, items


def _usd(value: float) -> str:
    """A price as AWS writes it: cents at least, more digits where it has them."""
    return f"{value:.2f}" if round(value, 2) == value else f"{value:g}"


def _table(rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def stack_cost(stack: str) -> str:
    """`stack`'s hourly cost, item by item, then each price with its source."""
    region, items = cost_items(stack)
    rows = [("item", "count", "unit price, USD", "USD per hour")]
    for item in items:
        unit = f"{_usd(item.price.usd)} per {item.price.per}"
        rows.append((item.what, f"{item.count:g}", unit, f"{item.hourly:.4f}"))
    total = sum(item.hourly for item in items)
    a_month = f"~{round(total * HOURS_PER_MONTH)} per {HOURS_PER_MONTH} h"
    rows.append(("total", "", a_month, f"{total:.4f}"))
    prices = [("price", "USD", "checked", "source")]
    for price_ in dict.fromkeys(item.price for item in items):
        unit = f"{_usd(price_.usd)} per {price_.per}"
        prices.append((price_.what, unit, price_.checked, price_.source))
    return (
        "\n".join(
            [
                f"{stack} stack, {region}, on demand, while it is up:",
                *_table(rows, right={1, 3}),
                "",
                *_table(prices, right=set()),
            ]
        )
        + "\n"
    )


# --- routing any services: the shop example --------------------------------------------------

SHOP = ROOT / "examples" / "shop" / "__main__.py"
SERVICE_STEP = ("--service", "reviews", "--weights", "v1=90,v3=10")
BAD_ROUTES = (
    '{"reviews": {"prepend": [{"match": [{"headers": {"end-user": {"regex": "(jason"}}}], '
    '"route": [{"destination": {"subset": "v2"}, "weight": 60}, '
    '{"destination": {"subset": "v4"}, "weight": 40}]}]}}'
)


def shop_policy_source() -> str:
    """The example's shop_policy(), as the file has it."""
    import ast

    text = SHOP.read_text()
    (function,) = (
        node
        for node in ast.parse(text).body
        if isinstance(node, ast.FunctionDef) and node.name == "shop_policy"
    )
    return ast.get_source_segment(text, function) or ""


def shop_predictions() -> str:
    """What the example's policy predicts per cohort and service (model.predictions)."""
    import runpy

    shop = runpy.run_path(str(SHOP), run_name="shop_example_functions")
    predicted = shop["predict"](shop["shop_policy"](), shop["COHORTS"], "web", shop["CALLS"])
    lines = []
    for cohort, services in predicted.items():
        lines.append(f"{cohort}:")
        for service, p in services.items():
            parts = [", ".join(f"{s} {share:.0%}" for s, share in p.subsets.items())]
            parts += [f"{fault} on {share:.0%}" for fault, share in p.faults.items()]
            parts += [f"mirrored to {s} {share:.0%}" for s, share in p.mirrors.items()]
            parts += [f"timeout {t}" for t in p.timeouts]
            parts += [f"{n} retries" for n in p.retries]
            lines.append(f"  {service}: {'; '.join(parts)}")
    return "\n".join(lines) + "\n"


# --- the canary gate, against a replayed Prometheus -------------------------------------
#
# `analyze` and `ladder` read Prometheus. Their samples read Debian's real one, serving the
# metrics double's traffic (tests/metrics_double.py) that promtool backfilled with
# timestamps, and query it at fixed times: every number is the same on every run. Two things
# are normalised: the server's URL (an ephemeral port), shown as SHOWN_PROMETHEUS, and the
# ladder's commit hashes (COMMIT_HASH), shown as "<commit>".

SHOWN_PROMETHEUS = "http://127.0.0.1:9090"
COMMIT_HASH = re.compile(r"(?<=committed )[0-9a-f]{7,40}")
REPLAY_START = 1_796_000_000.0  # 2026-11-30T01:03:20Z
REPLAY_RATE = 40.0  # requests per second to reviews: a quiet shop's daytime traffic
GATE_WAIT_S = 600.0  # the ladder's default --wait


@contextlib.contextmanager
def replayed_prometheus(
    canary: dict[str, float], rate: float, changes: Mapping[float, Mapping[str, float]]
) -> Iterator[str]:
    """A Prometheus holding an hour of reviews traffic from REPLAY_START: v1 as Bookinfo has
    it, v3 as `canary` says (Version's fields), routed at each time of `changes`."""
    from tests.metrics_double import MeshTraffic, Service, Version
    from tests.prometheus_server import backfill, prometheus

    versions = {"v1": Version(1.0), "v3": Version(0.0, **canary)}
    traffic = MeshTraffic([Service("reviews", "bookinfo", rate, versions)], REPLAY_START, seed=22)
    routed = {at: ("reviews.bookinfo", shares) for at, shares in changes.items()}
    text = traffic.openmetrics(REPLAY_START + 3600, step=15, changes=routed)
    with tempfile.TemporaryDirectory() as folder:
        storage = Path(folder) / "data"
        backfill(text, storage)
        with prometheus(storage=storage, retention="100y") as url:
            yield url


def analyze_output(canary: dict[str, float], rate: float, exit_code: int) -> str:
    """`analyze` of v3 at 10 % of reviews, a quarter of an hour into the replay."""
    split = {REPLAY_START: {"v1": 0.9, "v3": 0.1}}
    with replayed_prometheus(canary, rate, split) as url:
        at = datetime.datetime.fromtimestamp(REPLAY_START + 900, datetime.UTC).isoformat()
        argv = ["analyze", "--stack", "dev", "--prometheus", url, "--at", at]
        return _run_cli(argv, exit_code=exit_code).replace(url, SHOWN_PROMETHEUS)


@cache
def ladder_run(canary: tuple[tuple[str, float], ...]) -> tuple[str, str]:
    """A ladder on the dev stack (promote's commits in a git copy of its stack file) against
    the replay, whose traffic moves as a ladder whose every gate passes would move it; the
    wait is on the replay's clock. What it prints, and its Markdown summary."""
    from bookinfo_mesh.gate import stack_thresholds
    from bookinfo_mesh.ladder import LadderPlan, StackRig, summary_markdown, walk
    from bookinfo_mesh.metrics import GateReport, Target
    from bookinfo_mesh.prometheus import run_gate

    @dataclass
    class ReplayRig(StackRig):
        clock: float = REPLAY_START

        def sleep(self, seconds: float) -> None:
            self.clock += seconds

        def gate(self) -> GateReport:
            return run_gate(self.prometheus, self.target, self.thresholds, self.clock)

    steps = (10, 25, 50, 100)
    changes = {
        REPLAY_START + n * GATE_WAIT_S: {"v1": (100 - s) / 100, "v3": s / 100}
        for n, s in enumerate(steps)
    }
    bad = dict(canary).get("error_rate", 0) > 0
    if bad:  # its first gate fails: the rollback takes the canary out
        changes = {REPLAY_START: changes[REPLAY_START], REPLAY_START + GATE_WAIT_S: {"v1": 1.0}}
    lines: list[str] = []
    target = Target("reviews", "bookinfo", "v1", "v3", "5m")
    with (
        tempfile.TemporaryDirectory() as folder,
        replayed_prometheus(dict(canary), REPLAY_RATE, changes) as url,
    ):
        root = Path(folder)
        for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
            shutil.copy(ROOT / name, root / name)
        git = ["git", "-C", str(root), *GIT_IDENTITY, *GIT_QUIET]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "dev as it is"], check=True)
        subprocess.run([*git, "config", "user.name", "docs"], check=True)
        subprocess.run([*git, "config", "user.email", "docs@example.com"], check=True)
        rig = ReplayRig(
            "dev",
            target,
            url,
            stack_thresholds("dev"),
            deploy=lambda: None,
            root=root,
            say=lines.append,
        )
        plan = LadderPlan(steps, GATE_WAIT_S, retries=3, retry_wait_s=120)
        result = walk(plan, rig, lines.append)
    lines.append(f"{result.outcome.value.upper()} at {result.steps[-1].percent} %")
    printed = COMMIT_HASH.sub("<commit>", "\n".join(lines) + "\n")
    return printed, summary_markdown("dev", target, result)


# --- measured figures (scripts/measure.py writes them) --------------------------------------

MEASUREMENTS = ROOT / "docs" / "measurements.json"


def measured(what: str) -> dict[str, Any] | None:
    """The last record of scripts/measure.py WHAT, if it was ever taken."""
    records = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else {}
    record: dict[str, Any] | None = records.get(what)
    return record


def _not_measured(what: str) -> str:
    return f"not measured yet: run .venv/bin/python scripts/measure.py {what}\n"


def suite_figures() -> str:
    """The fresh clone's `make test`, as scripts/measure.py suite last measured it."""
    suite = measured("suite")
    if suite is None:
        return _not_measured("suite")
    return (
        f"fresh clone, make test: {suite['make_test_seconds']:.0f} s, of which pytest "
        f"{suite['pytest_seconds']:.0f} s for {suite['tests_passed']} tests\n"
        f"measured {suite['measured']} at {suite['commit']} on {suite['machine']}\n"
    )


def tool_costs() -> str:
    """The tools built from nothing and found cached, as scripts/measure.py last measured."""
    cold, cached = measured("tools-cold"), measured("tools-cached")
    if cold is None:
        return _not_measured("tools-cold")
    if cached is None:
        return _not_measured("tools-cached")
    lines = [f"{label}: {took}" for label, took in cold["tools"].items()]
    return (
        "\n".join(lines)
        + f"\nall, with empty Go caches: {cold['seconds'] / 60:.0f} min; module cache "
        f"{cold['module_cache_mb']} MB, build cache {cold['build_cache_mb']} MB\n"
        f"measured {cold['measured']} at {cold['commit']} on {cold['machine']}\n"
        f"every later run, all cached: {cached['median_seconds']} s (median of "
        f"{cached['runs']}, measured {cached['measured']} at {cached['commit']})\n"
    )


SAMPLES: Mapping[str, Callable[[], str]] = {
    "shop-policy": shop_policy_source,
    "shop-predictions": shop_predictions,
    "promote-service": lambda: command_output(
        "promote", "--stack", "dev", *SERVICE_STEP, "--dry-run"
    ),
    "shop-render": lambda: output_in_empty_folder(
        "render", "--project", str(ROOT / "examples" / "shop"), "--stack", "dev"
    ),
    "shop-promote": lambda: command_output(
        "promote",
        "--project",
        str(ROOT / "examples" / "shop"),
        "--service",
        "web",
        "--weights",
        "v1=50,v2=50",
        "--dry-run",
    ),
    "routes-refused": lambda: command_output(
        "render", "--stack", "dev", "--set", f"routes={BAD_ROUTES}", exit_code=2, stream="stderr"
    ),
    "suite-figures": suite_figures,
    "tool-costs": tool_costs,
    **{f"traffic-{mode}": (lambda mode=mode: mode_flowchart(mode)) for mode in MODES},
    "istio-ladder-keys": ladder_keys,
    "istio-patch-promote": lambda: command_output(
        "promote", "--stack", "dev", "--istio", "1.31.1", "--dry-run"
    ),
    "istio-patch-diff": lambda: command_output(
        "diff", "--stack", "dev", "--set", "istioVersion=1.31.1"
    ),
    **{f"istio-ladder-{n}": (lambda n=n: ladder_diff(n)) for n in range(1, 5)},
    "diff-user-v2": lambda: command_output("diff", "--stack", "dev", "--set", "mode=user-v2"),
    "diff-split50": lambda: command_output("diff", "--stack", "dev", "--set", "mode=split50"),
    "diff-bad-config": lambda: command_output(
        "diff",
        "--stack",
        "dev",
        "--set",
        "mode=dealy",
        "--set",
        "faultPercent=150",
        exit_code=2,
        stream="stderr",
    ),
    "render-delay": lambda: output_in_empty_folder(
        "render", "--stack", "dev", "--set", "mode=delay"
    ),
    "promote-prod-delay": lambda: command_output(
        "promote", "--stack", "prod", "--to", "delay", exit_code=2, stream="stderr"
    ),
    "promote-weights": lambda: background("ladder-pull-request").result()[0],
    "pr-comment": lambda: background("ladder-pull-request").result()[1],
    "verify-split50": lambda: verify_output({"mode": "split50"}, None),
    "verify-split50-all-v1": lambda: verify_output({"mode": "split50"}, {"v1": 100}),
    "prod-protected": lambda: protected("prod"),
    "prod-unprotect-diff": lambda: command_output(
        "diff", "--stack", "prod", "--set", "protect=false"
    ),
    "dev-cost": lambda: stack_cost("dev"),
    "analyze-pass": lambda: analyze_output({}, REPLAY_RATE, 0),
    "analyze-fail": lambda: analyze_output({"error_rate": 0.05}, REPLAY_RATE, 1),
    "analyze-hold": lambda: analyze_output({}, REPLAY_RATE / 40, 3),
    "ladder-promoted": lambda: ladder_run(())[0],
    "ladder-rolled-back": lambda: ladder_run((("error_rate", 0.05),))[0],
    "ladder-rolled-back-summary": lambda: ladder_run((("error_rate", 0.05),))[1],
}
# Which samples wait on which background job.
NEEDS_BACKGROUND = {"promote-weights": "ladder-pull-request", "pr-comment": "ladder-pull-request"}
# Samples that read one costly run between them (a job, or a cached ladder): the suite gives
# each such set to one worker, which runs it once.
SHARED_RUNS = {
    **NEEDS_BACKGROUND,
    "ladder-rolled-back": "ladder-rolled-back",
    "ladder-rolled-back-summary": "ladder-rolled-back",
}


def prefetch(texts: Iterable[str]) -> None:
    """Start the background jobs of every sample these pages show; each result is read when
    its block is reached."""
    for text in texts:
        for match in SAMPLE.finditer(text):
            if match["name"] in NEEDS_BACKGROUND:
                background(NEEDS_BACKGROUND[match["name"]])


def sample_body(name: str) -> str:
    """A block's body as sample `name` prints it now."""
    if name not in SAMPLES:
        raise SystemExit(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
    # Trailing spaces (rich pads table titles) would not survive an editor.
    return "".join(f"{line.rstrip()}\n" for line in SAMPLES[name]().splitlines())


def rewrite(text: str) -> str:
    """`text` with every sample block's body as its command prints it now."""
    prefetch([text])

    def fresh(match: re.Match[str]) -> str:
        name, fence = match["name"], match["fence"]
        body = sample_body(name)
        if re.search(rf"^{fence}", body, re.M):
            raise SystemExit(f"sample {name!r} holds a {fence} fence: lengthen the block's fence")
        return f"{match['head']}{body}{fence}\n"

    return SAMPLE.sub(fresh, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale samples")
    args = parser.parse_args(argv)
    texts = {path: path.read_text() for path in DOCS}
    prefetch(texts.values())
    stale = []
    for path, text in texts.items():
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
