"""`bookinfo-mesh doctor`: is this machine ready to run `pulumi preview` and `pulumi up`?"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape

from bookinfo_mesh.errors import EXIT_FAILED, EXIT_OK
from bookinfo_mesh.stack_files import StackFileError, load_engine_config
from model.control_plane import ISTIO_CHART_REPO, ISTIO_CHARTS
from stacks.config import PROJECT
from stacks.project import ROOT

# The `uv` toolchain that Pulumi.yaml names arrived in Pulumi 3.139 (pulumi/pulumi#17609).
MIN_PULUMI = (3, 139, 0)
# `aws eks get-token`, which pulumi-eks and the exported kubeconfig run, with the
# client.authentication.k8s.io/v1beta1 output: AWS CLI 1.24.0 or 2.7.0 and later.
MIN_AWS_CLI = {1: (1, 24, 0), 2: (2, 7, 0)}
TIMEOUT_S = 20.0
EXIT_READY, EXIT_NOT_READY = EXIT_OK, EXIT_FAILED
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
# What the AWS CLI says when it cannot reach an endpoint at all (botocore's messages).
_NO_NETWORK = ("Could not connect to the endpoint URL", "Connect timeout on endpoint URL")
# Helm finds a chart version in the repository's index; so does this check.
ISTIO_CHART_INDEX = f"{ISTIO_CHART_REPO}/index.yaml"
INDEX_TIMEOUT_S = 15.0
# A released chart version in the index: no pre-release; numbers of a sane length.
_CHART_RELEASE = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,6})")
# The stack config keys that pin Istio releases, in the order they are reported.
ISTIO_PIN_KEYS: tuple[str, ...] = ("istioVersion", "istioCanaryVersion")


@dataclass(frozen=True)
class Check:
    """One prerequisite: ok, or what is wrong and how to fix it."""

    name: str
    ok: bool
    detail: str
    required: bool = True


def _run(args: Sequence[str]) -> tuple[int, str] | None:
    """Exit code and stdout+stderr of a command, or None if it cannot run or hangs."""
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(
            list(args), capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.returncode, done.stdout + done.stderr


def _version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def check_pulumi() -> Check:
    install = "install it: https://www.pulumi.com/docs/install/"
    result = _run(["pulumi", "version"])
    if result is None:
        return Check("Pulumi CLI", False, f"not found on PATH (or it hangs); {install}")
    version = _version(result[1]) if result[0] == 0 else None
    if version is None:
        return Check("Pulumi CLI", False, f"`pulumi version` gave no version; {install}")
    if version < MIN_PULUMI:
        return Check(
            "Pulumi CLI",
            False,
            f"{_dotted(version)} is older than {_dotted(MIN_PULUMI)}; upgrade: {install}",
        )
    return Check("Pulumi CLI", True, _dotted(version))


def check_aws_cli() -> Check:
    install = (
        "install it: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
    )
    result = _run(["aws", "--version"])
    if result is None:
        return Check("AWS CLI", False, f"not found on PATH (or it hangs); {install}")
    version = _version(result[1]) if result[0] == 0 else None
    if version is None:
        return Check("AWS CLI", False, f"`aws --version` gave no version; {install}")
    least = MIN_AWS_CLI.get(version[0])
    if least is None or version < least:
        wanted = " or ".join(f"{_dotted(v)}+" for v in MIN_AWS_CLI.values())
        return Check(
            "AWS CLI",
            False,
            f"{_dotted(version)} cannot run `aws eks get-token` as the kubeconfig needs "
            f"({wanted}); {install}",
        )
    return Check("AWS CLI", True, _dotted(version))


def check_credentials() -> Check:
    """Asks STS who we are; prints the identity's ARN, never a key or token."""
    fix = "run `aws configure` or `aws sso login`, or set AWS_PROFILE"
    result = _run(["aws", "sts", "get-caller-identity", "--output", "json"])
    if result is None:
        return Check("AWS credentials", False, f"could not ask STS (AWS CLI missing?); {fix}")
    code, output = result
    try:
        arn = json.loads(output)["Arn"] if code == 0 else None
    except (ValueError, KeyError, TypeError):
        arn = None
    if not arn and any(sign in output for sign in _NO_NETWORK):
        return Check(
            "AWS credentials",
            False,
            "could not reach AWS STS to check them (no network, or a proxy in the way)",
        )
    if not arn:
        return Check("AWS credentials", False, f"none that work; {fix}")
    return Check("AWS credentials", True, f"signed in as {arn}")


def check_uv() -> Check:
    """uv on PATH: Pulumi.yaml's `toolchain: uv` has `pulumi up` run `uv sync` itself."""
    install = "install it: https://docs.astral.sh/uv/getting-started/installation/"
    result = _run(["uv", "--version"])
    if result is None or result[0] != 0:
        local = ROOT / ".tools" / "uv" / "bin"
        hint = (
            f'`make` put one in .tools/uv/bin: export PATH="{local}:$PATH"'
            if (local / "uv").exists()
            else install
        )
        return Check("uv", False, f"not found on PATH, and `pulumi up` runs uv sync; {hint}")
    version = _version(result[1])
    return Check("uv", True, _dotted(version) if version else "present")


def check_region(stack: str) -> Check:
    try:
        config, _ = load_engine_config(stack, None)
    except FileNotFoundError:
        return Check(
            "AWS region", False, f"no Pulumi.{stack}.yaml; run `pulumi stack init {stack}`"
        )
    region = config.get("aws:region") or os.environ.get("AWS_REGION")
    if not region:
        return Check(
            "AWS region",
            False,
            f"stack {stack} sets no aws:region; run `pulumi config set aws:region "
            f"ap-northeast-2 --stack {stack}`",
        )
    return Check("AWS region", True, f"{region} (stack {stack})")


def check_kubectl() -> Check:
    result = _run(["kubectl", "version", "--client", "-o", "json"])
    if result is None or result[0] != 0:
        return Check(
            "kubectl",
            False,
            "not found (optional: only to look at the cluster yourself); "
            "https://kubernetes.io/docs/tasks/tools/",
            required=False,
        )
    version = _version(result[1])
    return Check("kubectl", True, _dotted(version) if version else "present", required=False)


def released_charts(index: Any) -> dict[str, set[tuple[int, int, int]]]:
    """Chart name -> its released versions, from a Helm repository index document."""
    entries = index.get("entries") if isinstance(index, Mapping) else None
    if not isinstance(entries, Mapping):
        raise ValueError("it has no `entries:` mapping, so it is not a Helm repository index")
    released: dict[str, set[tuple[int, int, int]]] = {}
    for chart in ISTIO_CHARTS:
        versions = released.setdefault(chart, set())
        chart_entries = entries.get(chart)
        for entry in chart_entries if isinstance(chart_entries, list) else []:
            version = str(entry.get("version", "")) if isinstance(entry, Mapping) else ""
            if match := _CHART_RELEASE.fullmatch(version):
                versions.add((int(match[1]), int(match[2]), int(match[3])))
    return released


@dataclass(frozen=True)
class PinFinding:
    """One Istio pin of the stack against the index: released, and is it the newest patch?"""

    key: str
    pinned: str
    missing_from: tuple[str, ...]  # charts that have no such version
    newest: str  # the newest patch of the pin's minor that every chart has ("" if none)

    @property
    def current(self) -> bool:
        return not self.missing_from and self.newest == self.pinned

    def __str__(self) -> str:
        if self.missing_from:
            return (
                f"{self.key} {self.pinned} is not in the chart index "
                f"({', '.join(self.missing_from)}): `pulumi preview` would fail to find it"
            )
        if self.newest != self.pinned:
            return (
                f"{self.key} {self.pinned}: {self.newest} is out; adopt patches (security ones "
                f"above all) at once: pulumi config set {self.key} {self.newest}"
            )
        return f"{self.key} {self.pinned} is the newest patch of its minor"


def pin_findings(pins: Mapping[str, str], released: Mapping[str, set]) -> list[PinFinding]:
    """Each of the stack's Istio pins against the released chart versions."""
    every = set.intersection(*(released[chart] for chart in ISTIO_CHARTS))
    findings = []
    for key, pinned in pins.items():
        match = _CHART_RELEASE.fullmatch(pinned)
        version = (int(match[1]), int(match[2]), int(match[3])) if match else None
        missing = tuple(c for c in ISTIO_CHARTS if version not in released[c])
        same_minor = [v for v in every if version and v[:2] == version[:2]]
        newest = _dotted(max(same_minor)) if same_minor else ""
        findings.append(PinFinding(key, pinned, missing, newest))
    return findings


def _fetch_index(url: str) -> Any:
    """The parsed index document; ValueError saying in one line why there is none."""
    try:
        with urllib.request.urlopen(url, timeout=INDEX_TIMEOUT_S) as answer:
            text = answer.read()
    except urllib.error.HTTPError as error:
        raise ValueError(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise ValueError(str(error.reason)) from None
    except OSError as error:  # a timeout while reading, a reset connection
        raise ValueError(str(error) or type(error).__name__) from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ValueError(f"not valid YAML: {problem}") from None


def check_istio_charts(stack: str) -> Check:
    """The stack's Istio pins against the chart repository's index: released, and newest?

    Advice, not a requirement: without a network it says it could not check.
    """
    name = "Istio charts"
    try:
        config, _ = load_engine_config(stack, None)
    except (FileNotFoundError, StackFileError) as error:
        return Check(name, False, f"cannot read stack {stack}: {error}", required=False)
    pins = {key: config.get(f"{PROJECT}:{key}", "") for key in ISTIO_PIN_KEYS}
    pins = {key: value for key, value in pins.items() if value}
    try:
        released = released_charts(_fetch_index(ISTIO_CHART_INDEX))
    except ValueError as reason:
        return Check(
            name,
            False,
            f"could not check the pins against {ISTIO_CHART_INDEX} ({reason}); "
            "`pulumi preview` still checks that each chart version exists",
            required=False,
        )
    findings = pin_findings(pins, released)
    # A pin no chart has fails `pulumi preview`; a newer patch is advice.
    return Check(
        name,
        all(f.current for f in findings),
        "; ".join(map(str, findings)),
        required=any(f.missing_from for f in findings),
    )


def run_checks(stack: str) -> list[Check]:
    return [
        check_pulumi(),
        check_uv(),
        check_aws_cli(),
        check_credentials(),
        check_region(stack),
        check_kubectl(),
        check_istio_charts(stack),
    ]


def run(args: argparse.Namespace, console: Console) -> int:
    checks = run_checks(args.stack)
    for check in checks:
        if check.ok:
            mark = "[green]ok[/]      "
        else:
            mark = "[red]missing[/] " if check.required else "[yellow]note[/]    "
        # Soft-wrapped: a command in the detail stays one line to copy.
        console.print(
            f"{mark} {escape(check.name)}: {escape(check.detail)}",
            highlight=False,
            soft_wrap=True,
        )
    ready = all(c.ok for c in checks if c.required)
    console.print("ready" if ready else "not ready: fix what is marked missing")
    return EXIT_READY if ready else EXIT_NOT_READY


def add_parser(commands: argparse._SubParsersAction) -> None:
    doctor = commands.add_parser(
        "doctor", help="check the tools and credentials that `pulumi up` needs"
    )
    doctor.add_argument("--stack", default="dev", help="stack whose aws:region to check")
    doctor.set_defaults(run=run)
