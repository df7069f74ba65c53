"""Obtains the real tools that tests judge the program's output with: pinned, cached per machine.

    .venv/bin/python scripts/tools.py ensure [NAME ...]   # every tool when no name is given
    .venv/bin/python scripts/tools.py path NAME           # the binary's path; exit 1 if absent

A tool comes from the first of: a binary on PATH at exactly the pinned version; the machine's
cache (${XDG_CACHE_HOME:-~/.cache}/bookinfo-mesh/tools/<name>-<version>/bin/), shared by every
checkout; a build with the machine's `go`; without go, the official release archive, checksum
verified. .tools/bin/<name> links to it. One line per tool says where it came from; a tool that
cannot be obtained is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from model.istio_releases import ISTIO_MINORS, IstioMinor

HELM_VERSION = "v3.22.0"
ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "harness"
LINKS = ROOT / ".tools" / "bin"
ISTIO_RELEASES = "https://github.com/istio/istio/releases/download"
HELM_RELEASES = "https://get.helm.sh"
GO_DOWNLOAD = "https://go.dev/dl/"
GO_LINE = r"^go (\d+\.\d+)"  # the go.mod line naming the oldest Go that builds the module
# What every build gets: the module graph exactly as go.sum pins it, the machine's own Go, a
# static binary without debug symbols or local paths (as the upstream release builds).
GO_ENV = {"GOFLAGS": "-mod=readonly -buildvcs=false", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}


class ToolError(Exception):
    """Why a tool cannot be obtained: the line the user sees, after the tool's label."""


@dataclass(frozen=True)
class Tool:
    """How to get one binary, and the cache folder its build inputs name."""

    label: str  # what the printed lines call it: "istioctl 1.31.0"
    key: str  # its cache folder: changes whenever what the build reads changes
    binary: str
    package: str  # what `go install` gets: pkg@version, or a package of `module`'s build list
    ldflags: tuple[str, ...]
    module: Path | None = None  # a module of tests/harness to build in, instead of pkg@version
    min_go: str = ""  # the Go that module's go.mod asks for
    version_command: tuple[str, ...] | None = None  # prints `version` last; None: never on PATH
    version: str = ""
    release: tuple[str, str] | None = None  # the official archive's URL and its checksum's


def go_platform() -> tuple[str, str]:
    """This machine as Go names it, e.g. ("linux", "amd64")."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return platform.system().lower(), arch


def module_hash(module: Path) -> str:
    """A short hash of what a build reads from a module folder: go.mod, go.sum, its Go files."""
    digest = hashlib.sha256()
    for path in sorted([module / "go.mod", module / "go.sum", *module.glob("*.go")]):
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def go_mod_field(module: Path, pattern: str) -> str:
    """The first group of pattern (a go.mod line) in module's go.mod."""
    found = re.search(pattern, (module / "go.mod").read_text(), re.MULTILINE)
    if found is None:
        raise ToolError(f"no line of {module / 'go.mod'} matches {pattern!r}")
    return found[1]


def kubernetes_version() -> str:
    """The kube-apiserver the harness builds, e.g. "v1.36.3"."""
    return go_mod_field(HARNESS / "apiserver", r"^\s*k8s\.io/kubernetes (v\d+\.\d+\.\d+)$")


def istioctl(minor: IstioMinor) -> Tool:
    release, revision = minor.files_read_at, minor.module_version[-12:]
    goos, arch = go_platform()
    module = HARNESS / f"istioctl-{minor.minor}"
    package = "istio.io/istio/istioctl/cmd/istioctl"
    key = f"istioctl-{release}-{minor.module_version}"
    if module.is_dir():
        key = f"{key}-{module_hash(module)}"
    else:
        module, package = None, f"{package}@{minor.module_version}"
    istio_os = "osx" if goos == "darwin" else goos
    archive = f"{ISTIO_RELEASES}/{release}/istioctl-{release}-{istio_os}-{arch}.tar.gz"
    values = {
        "buildVersion": release,
        "buildGitRevision": revision,
        "buildStatus": "Clean",
        "buildTag": release,
        "buildHub": "docker.io/istio",
        "buildOS": goos,
        "buildArch": arch,
    }
    return Tool(
        label=f"istioctl {release}",
        key=key,
        binary="istioctl",
        package=package,
        ldflags=tuple(f"-X istio.io/istio/pkg/version.{k}={v}" for k, v in values.items()),
        module=module,
        min_go=go_mod_field(module, GO_LINE) if module else "",
        version_command=("version", "--remote=false", "--short"),
        version=release,
        release=(archive, f"{archive}.sha256"),
    )


def helm() -> Tool:
    # Without a cluster, `helm template` assumes the Kubernetes its build names: the harness's.
    major, minor = kubernetes_version().removeprefix("v").split(".")[:2]
    k8s = [f"-X helm.sh/helm/v3/pkg/{pkg}.k8sVersion" for pkg in ("chartutil", "lint/rules")]
    archive = f"{HELM_RELEASES}/helm-{HELM_VERSION}-{'-'.join(go_platform())}.tar.gz"
    return Tool(
        label=f"helm {HELM_VERSION}",
        key=f"helm-{HELM_VERSION}-k8s{major}.{minor}",
        binary="helm",
        package=f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}",
        ldflags=(
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            *(f"{flag}Major={major} {flag}Minor={minor}" for flag in k8s),
        ),
        version_command=("version", "--template", "{{.Version}}"),
        version=HELM_VERSION,
        release=(archive, f"{archive}.sha256sum"),
    )


def apiserver() -> Tool:
    module = HARNESS / "apiserver"
    version = kubernetes_version()
    major, minor = version.removeprefix("v").split(".")[:2]
    # /version as a release reports it: clients that read it (helm, kubectl) take it for real.
    ldflags = tuple(
        f"-X {pkg}.gitVersion={version} -X {pkg}.gitMajor={major} -X {pkg}.gitMinor={minor}"
        f" -X {pkg}.gitTreeState=clean -X {pkg}.buildDate=1970-01-01T00:00:00Z"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    )
    stamp = f"{version}-{module_hash(module)}"
    return Tool(
        label=f"apiserver {stamp}",
        key=f"apiserver-{stamp}",
        binary="apiserver-harness",
        package=".",
        ldflags=ldflags,
        module=module,
        min_go=go_mod_field(module, GO_LINE),
    )


def stackconfig() -> Tool:
    """Pulumi's own stack-config loader (tests/harness/stackconfig), for the corpus check."""
    module = HARNESS / "stackconfig"
    sdk = go_mod_field(module, r"^require github\.com/pulumi/pulumi/sdk/v3 (v\S+)$")
    stamp = f"{sdk}-{module_hash(module)}"
    return Tool(
        label=f"stackconfig (pulumi sdk {sdk})",
        key=f"stackconfig-{stamp}",
        binary="stackconfig",
        package=".",
        ldflags=(),
        module=module,
        min_go=go_mod_field(module, GO_LINE),
    )


def tools() -> dict[str, Tool]:
    """Every tool by the name `ensure` and `path` take."""
    found = {f"istioctl-{minor}": istioctl(pin) for minor, pin in ISTIO_MINORS.items()}
    return found | {"helm": helm(), "apiserver": apiserver(), "stackconfig": stackconfig()}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bookinfo-mesh" / "tools"


def cache_path(tool: Tool) -> Path:
    return cache_root() / tool.key / "bin" / tool.binary


def shown(path: Path) -> str:
    """path with the home folder as ~."""
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home) :] if text.startswith(home + os.sep) else text


def took(start: float) -> str:
    seconds = time.monotonic() - start
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"


def on_path(tool: Tool) -> Path | None:
    """The binary on PATH if it prints exactly the pinned version."""
    if tool.version_command is None or (found := shutil.which(tool.binary)) is None:
        return None
    try:
        done = subprocess.run(
            [found, *tool.version_command], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    printed = done.stdout.split()
    return Path(found) if done.returncode == 0 and printed[-1:] == [tool.version] else None


def cached(tool: Tool) -> Path | None:
    path = cache_path(tool)
    return path if path.is_file() else None


def staging(tool: Tool) -> Path:
    """A fresh folder beside the tool's cache folder, renamed into place once complete."""
    cache_root().mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{tool.key}.", dir=cache_root()))


def install(tool: Tool, built: Path) -> Path:
    """built (a complete staging folder) as the tool's cache folder; its binary."""
    try:
        built.rename(cache_root() / tool.key)
    except OSError as error:  # another run put it there first: theirs is as good
        if cached(tool) is None:
            raise ToolError(f"cannot move the build into {cache_root()}: {error}") from error
    return cache_path(tool)


def build(tool: Tool, go: str) -> Path:
    log = cache_root() / f"{tool.key}.log"
    folder = staging(tool)
    try:
        ldflags = " ".join(("-s -w", *tool.ldflags))
        command = [go, "install", "-trimpath", "-ldflags", ldflags, tool.package]
        with log.open("w") as out:
            out.write(f"cd {tool.module or folder} && {shlex.join(command)}\n")
            out.flush()
            done = subprocess.run(
                command,
                cwd=tool.module or folder,
                env=os.environ | GO_ENV | {"GOBIN": str(folder / "bin")},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if done.returncode != 0 or not (folder / "bin" / tool.binary).is_file():
            last = log.read_text().strip().splitlines()[-1]
            raise ToolError(f"`go install` failed ({last}); log: {log}")
        return install(tool, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def download(tool: Tool, archive: str, checksum: str) -> Path:
    """The release archive's binary, once its bytes match the published checksum."""
    folder = staging(tool)
    try:
        data = fetch(archive)
        expected = fetch(checksum).decode(errors="replace").split()[:1]
        if [hashlib.sha256(data).hexdigest()] != expected:
            raise ToolError(f"{archive} does not match its checksum {checksum}")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = next((m for m in tar if m.isfile() and Path(m.name).name == tool.binary), None)
            if member is None or (extracted := tar.extractfile(member)) is None:
                raise ToolError(f"{archive} holds no {tool.binary}")
            (folder / "bin").mkdir()
            (folder / "bin" / tool.binary).write_bytes(extracted.read())
        (folder / "bin" / tool.binary).chmod(0o755)
        return install(tool, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def obtain(tool: Tool) -> tuple[Path, str]:
    """The tool's binary and how it was obtained, by the first source that has it."""
    if found := on_path(tool):
        return found, f"on PATH ({found})"
    if found := cached(tool):
        return found, f"cached ({shown(found)})"
    start = time.monotonic()
    if go := shutil.which("go"):
        version = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, check=False
        ).stdout.strip()
        found = build(tool, go)
        return found, f"built with go {version.removeprefix('go')} in {took(start)}"
    if tool.release is None:
        source = tool.module.relative_to(ROOT) if tool.module else tool.package
        raise ToolError(
            f"needs Go {tool.min_go}+ to build {source} ({GO_DOWNLOAD}); no release archive exists"
        )
    archive, checksum = tool.release
    try:
        found = download(tool, archive, checksum)
    except (OSError, tarfile.TarError) as error:  # URLError and HTTPError are OSErrors
        raise ToolError(
            f"no go to build it ({GO_DOWNLOAD}), and {archive} failed: {error}"
        ) from error
    return found, f"downloaded {archive} in {took(start)}"


def link(name: str, binary: Path) -> None:
    """.tools/bin/<name> -> binary, replaced in one step."""
    LINKS.mkdir(parents=True, exist_ok=True)
    temporary = LINKS / f".{name}.new"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(binary.resolve())
    temporary.replace(LINKS / name)


def ensure(known: dict[str, Tool], names: list[str]) -> int:
    failed = 0
    for name in names or list(known):
        tool = known[name]
        try:
            binary, how = obtain(tool)
            link(name, binary)
        except (ToolError, OSError) as error:
            print(f"{tool.label}: {error}", file=sys.stderr, flush=True)
            failed = 1
            continue
        print(f"{tool.label}: {how}", flush=True)
    return failed


def path(tool: Tool, name: str) -> int:
    binary = on_path(tool) or cached(tool)
    if binary is None:
        print(f"{tool.label}: not obtained; run scripts/tools.py ensure {name}", file=sys.stderr)
        return 1
    print(binary)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        known = tools()
    except (ToolError, OSError) as error:
        print(f"scripts/tools.py: {error}", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ensure", help="obtain tools (all when none is named)").add_argument(
        "names", nargs="*", metavar="NAME", help=", ".join(known)
    )
    commands.add_parser("path", help="print a tool's binary").add_argument("name", choices=known)
    args = parser.parse_args(argv)
    if unknown := sorted(set(getattr(args, "names", ())) - set(known)):
        parser.error(f"unknown tool {', '.join(unknown)}; known: {', '.join(known)}")
    try:
        if args.command == "path":
            return path(known[args.name], args.name)
        return ensure(known, args.names)
    except KeyboardInterrupt:
        print("interrupted: no tool was left half-built", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
