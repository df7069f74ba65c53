"""`bookinfo-mesh doctor`: is this machine ready to run `pulumi preview` and `pulumi up`?"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape

from bookinfo_mesh.stack_files import load_engine_config

# The `uv` toolchain that Pulumi.yaml names arrived in Pulumi 3.139 (pulumi/pulumi#17609).
MIN_PULUMI = (3, 139, 0)
# `aws eks get-token`, which pulumi-eks and the exported kubeconfig run, with the
# client.authentication.k8s.io/v1beta1 output: AWS CLI 1.24.0 or 2.7.0 and later.
MIN_AWS_CLI = {1: (1, 24, 0), 2: (2, 7, 0)}
TIMEOUT_S = 20.0
EXIT_READY, EXIT_NOT_READY = 0, 1
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


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
    if not arn:
        return Check("AWS credentials", False, f"none that work; {fix}")
    return Check("AWS credentials", True, f"signed in as {arn}")


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


def run_checks(stack: str) -> list[Check]:
    return [
        check_pulumi(),
        check_aws_cli(),
        check_credentials(),
        check_region(stack),
        check_kubectl(),
    ]


def cmd_doctor(args: argparse.Namespace, console: Console) -> int:
    checks = run_checks(args.stack)
    for check in checks:
        if check.ok:
            mark = "[green]ok[/]      "
        else:
            mark = "[red]missing[/] " if check.required else "[yellow]optional[/]"
        console.print(f"{mark} {escape(check.name)}: {escape(check.detail)}", highlight=False)
    ready = all(c.ok for c in checks if c.required)
    console.print("ready" if ready else "not ready: fix what is marked missing")
    return EXIT_READY if ready else EXIT_NOT_READY


def add_parser(commands: argparse._SubParsersAction) -> None:
    doctor = commands.add_parser(
        "doctor", help="check the tools and credentials that `pulumi up` needs"
    )
    doctor.add_argument("--stack", default="dev", help="stack whose aws:region to check")
    doctor.set_defaults(func=cmd_doctor)
