"""scripts/tools.py obtains istioctl, helm and the apiserver harness: checked with doubles of
go, the tools and the release server, so nothing real is built or downloaded."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from model.istio_releases import ISTIO_MINORS
from stacks.project import ROOT

SCRIPT = ROOT / "scripts" / "tools.py"
HARNESS_GO_MOD = ROOT / "tests/harness/apiserver/go.mod"


def load_tools() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tools_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where dataclasses look up the module's annotations
    spec.loader.exec_module(module)
    return module


tools = load_tools()


def write_script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def folders(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir()) if directory.exists() else []


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds only this folder; the cache and .tools/bin are the test's own."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(tools, "LINKS", tmp_path / "links")
    return directory


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No request log in the test output."""


@pytest.fixture
def releases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A double of the release servers: the files put in the folder it yields."""
    www = tmp_path / "www"
    www.mkdir()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(tools, "ISTIO_RELEASES", f"{base}/istio")
    monkeypatch.setattr(tools, "HELM_RELEASES", f"{base}/helm")
    yield www
    server.shutdown()
    server.server_close()


def test_the_cache_is_per_machine_and_named_by_the_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    helm = tools.tools()["helm"]
    kubernetes_minor = ".".join(tools.kubernetes_version().removeprefix("v").split(".")[:2])
    assert helm.key == f"helm-{tools.HELM_VERSION}-k8s{kubernetes_minor}"
    # helm's default Kubernetes (for `helm template`) is the harness's kube-apiserver.
    assert f"k8s.io/kubernetes {tools.kubernetes_version()}\n" in HARNESS_GO_MOD.read_text()
    major, minor = kubernetes_minor.split(".")
    flags = " ".join(helm.ldflags)
    for pkg in ("chartutil", "lint/rules"):
        assert f"-X helm.sh/helm/v3/pkg/{pkg}.k8sVersionMajor={major}" in flags
        assert f"-X helm.sh/helm/v3/pkg/{pkg}.k8sVersionMinor={minor}" in flags
    assert tools.cache_path(helm) == tmp_path / "xdg/bookinfo-mesh/tools" / helm.key / "bin/helm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tools.cache_root() == tmp_path / "home/.cache/bookinfo-mesh/tools"

    for istio_minor, pin in ISTIO_MINORS.items():
        istioctl = tools.tools()[f"istioctl-{istio_minor}"]
        assert istioctl.key.startswith(f"istioctl-{pin.files_read_at}-{pin.module_version}")
        assert istioctl.label == f"istioctl {pin.files_read_at}"
        assert f"-X istio.io/istio/pkg/version.buildVersion={pin.files_read_at}" in istioctl.ldflags
    # 1.30 is built in its wrapper module; 1.31 straight from the module proxy.
    assert tools.tools()["istioctl-1.30"].module == ROOT / "tests/harness/istioctl-1.30"
    assert tools.tools()["istioctl-1.31"].package.endswith(ISTIO_MINORS["1.31"].module_version)


def test_an_edit_of_a_harness_module_changes_its_cache_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = tmp_path / "harness"
    shutil.copytree(ROOT / "tests/harness", harness)
    monkeypatch.setattr(tools, "HARNESS", harness)
    before = tools.apiserver().key
    assert before == tools.tools()["apiserver"].key

    (harness / "apiserver/README.md").write_text("docs only\n")
    assert tools.apiserver().key == before
    main_go = harness / "apiserver/main.go"
    original = main_go.read_text()
    main_go.write_text(original + "// edited\n")
    assert tools.apiserver().key != before
    main_go.write_text(original)
    assert tools.apiserver().key == before
    with (harness / "apiserver/go.sum").open("a") as go_sum:
        go_sum.write("example.com/x v1.0.0 h1:AAAA\n")
    assert tools.apiserver().key != before

    wrapped = tools.istioctl(ISTIO_MINORS["1.30"]).key
    (harness / "istioctl-1.30/go.mod").write_text("module edited\n\ngo 1.25.9\n")
    assert tools.istioctl(ISTIO_MINORS["1.30"]).key not in (wrapped, before)
    shutil.rmtree(harness / "istioctl-1.30")
    unwrapped = tools.istioctl(ISTIO_MINORS["1.30"])
    assert unwrapped.module is None
    assert unwrapped.package == (
        f"istio.io/istio/istioctl/cmd/istioctl@{ISTIO_MINORS['1.30'].module_version}"
    )


@pytest.mark.parametrize(
    ("name", "printed"),
    [("istioctl-1.31", "client version: {}"), ("helm", "{}")],
)
def test_a_binary_on_path_serves_only_at_the_pinned_version(
    fake_bin: Path, name: str, printed: str
) -> None:
    tool = tools.tools()[name]
    asked = " ".join(tool.version_command)
    on_path = fake_bin / tool.binary
    write_script(on_path, f'[ "$*" = "{asked}" ] && echo "{printed.format("0.0.1")}"')
    cached = tools.cache_path(tool)
    cached.parent.mkdir(parents=True)
    cached.write_text("cached\n")
    assert tools.obtain(tool) == (cached, f"cached ({cached})")

    write_script(on_path, f'[ "$*" = "{asked}" ] && echo "{printed.format(tool.version)}"')
    assert tools.obtain(tool) == (on_path, f"on PATH ({on_path})")
    write_script(on_path, f'echo "{printed.format(tool.version)}"; exit 3')
    assert tools.obtain(tool)[0] == cached


def served(www: Path, url: str) -> Path:
    """Where the release server double finds what url asks for."""
    return www / urlsplit(url).path.lstrip("/")


def release_archive(tool: tools.Tool, www: Path, member: str) -> tuple[Path, bytes]:
    """tool's release archive, holding a binary at member, where the double serves it."""
    content = b"#!/bin/sh\necho released\n"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
        tar.addfile(tarfile.TarInfo("LICENSE"), io.BytesIO(b""))
    archive = served(www, tool.release[0])
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(data.getvalue())
    return archive, content


@pytest.mark.parametrize(
    ("name", "member"), [("helm", "{os}-{arch}/helm"), ("istioctl-1.31", "istioctl")]
)
def test_without_go_the_release_archive_serves_once_its_checksum_matches(
    fake_bin: Path,
    releases: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    member: str,
) -> None:
    tool = tools.tools()[name]
    goos, arch = tools.go_platform()
    archive, content = release_archive(tool, releases, member.format(os=goos, arch=arch))
    checksum = served(releases, tool.release[1])
    checksum.write_text(f"{'0' * 64}  {archive.name}\n")

    assert tools.main(["ensure", name]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{tool.label}: {tool.release[0]} does not match its checksum {tool.release[1]}\n"
    assert folders(tools.cache_root()) == []

    checksum.write_text(f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  {archive.name}\n")
    assert tools.main(["ensure", name]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{tool.label}: downloaded {tool.release[0]} in ") and err == ""
    binary = tools.cache_path(tool)
    assert binary.read_bytes() == content and binary.stat().st_mode & 0o111
    assert (tools.LINKS / name).resolve() == binary.resolve()
    assert folders(tools.cache_root()) == [tools.cache_root() / tool.key]
    assert tools.main(["path", name]) == 0
    assert capsys.readouterr().out == f"{binary}\n"


def test_without_go_a_tool_that_cannot_be_obtained_is_one_line(
    fake_bin: Path, releases: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    helm, apiserver = tools.tools()["helm"], tools.tools()["apiserver"]
    assert tools.main(["ensure", "helm", "apiserver"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{helm.label}: no go to build it (https://go.dev/dl/), and {helm.release[0]} failed:"
        " HTTP Error 404: File not found",
        f"{apiserver.label}: needs Go {apiserver.min_go}+ to build tests/harness/apiserver"
        " (https://go.dev/dl/); no release archive exists",
    ]
    assert apiserver.min_go == "1.26"
    assert tools.main(["path", "helm"]) == 1
    assert (
        capsys.readouterr().err == f"{helm.label}: not obtained; run scripts/tools.py ensure helm\n"
    )
    assert not tools.LINKS.exists()


def fake_go(directory: Path, record: Path, install: str) -> None:
    """A go whose `install` records how it was run, then runs the shell code install."""
    write_script(
        directory / "go",
        f"""[ "$1" = env ] && [ "$2" = GOVERSION ] && echo go1.99.1 && exit 0
{{ echo "$GOBIN"; pwd; echo "$GOFLAGS"; echo "$GOTOOLCHAIN"; echo "$@"; }} > {record}
{install}""",
    )


@pytest.mark.parametrize(
    ("name", "module"),
    [("helm", None), ("istioctl-1.30", "istioctl-1.30"), ("apiserver", "apiserver")],
)
def test_a_build_goes_through_a_temporary_folder_renamed_into_the_cache(
    fake_bin: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    module: str | None,
) -> None:
    tool = tools.tools()[name]
    record = tmp_path / "record"
    fake_go(fake_bin, record, f'/bin/mkdir -p "$GOBIN" && echo built > "$GOBIN/{tool.binary}"')
    assert tools.main(["ensure", name]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{tool.label}: built with go 1.99.1 in ") and err == ""

    gobin, cwd, goflags, gotoolchain, args = record.read_text().splitlines()
    staging = Path(gobin).parent
    assert Path(gobin).name == "bin" and staging.parent == tools.cache_root()
    assert staging.name.startswith(f".{tool.key}.") and not staging.exists()
    assert cwd == str(tools.HARNESS / module if module else staging)
    assert goflags.split() == ["-mod=readonly", "-buildvcs=false"] and gotoolchain == "local"
    assert args.startswith("install -trimpath -ldflags -s -w ")
    assert args.endswith(f" {tool.package}") and all(flag in args for flag in tool.ldflags)
    assert tools.cache_path(tool).read_text() == "built\n"
    assert (tools.LINKS / name).resolve() == tools.cache_path(tool).resolve()

    record.unlink()
    assert tools.main(["ensure", name]) == 0
    assert capsys.readouterr().out == f"{tool.label}: cached ({tools.cache_path(tool)})\n"
    assert not record.exists()


def test_a_failed_build_is_one_line_naming_its_log_and_leaves_no_tool(
    fake_bin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = tools.tools()["helm"]
    fake_go(
        fake_bin,
        tmp_path / "record",
        '/bin/mkdir -p "$GOBIN" && echo half > "$GOBIN/helm"\n'
        "echo 'go: compiling'\necho 'go: helm.sh/helm/v3@v3.22.0: no space left' >&2\nexit 1",
    )
    assert tools.main(["ensure", "helm"]) == 1
    out, err = capsys.readouterr()
    log = tools.cache_root() / f"{tool.key}.log"
    assert out == ""
    assert err == (
        f"{tool.label}: `go install` failed (go: helm.sh/helm/v3@v3.22.0: no space left);"
        f" log: {log}\n"
    )
    assert "go: compiling\n" in log.read_text()
    assert folders(tools.cache_root()) == []
    assert not tools.LINKS.exists()


def test_ctrl_c_during_a_build_exits_130_and_leaves_no_partial_tool(tmp_path: Path) -> None:
    fake_bin, started = tmp_path / "bin", tmp_path / "started"
    fake_bin.mkdir()
    fake_go(
        fake_bin,
        tmp_path / "record",
        f'/bin/mkdir -p "$GOBIN" && echo half > "$GOBIN/helm" && echo > {started}\n'
        "exec /bin/sleep 60",
    )
    env = {"PATH": str(fake_bin), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = subprocess.Popen(
        [sys.executable, str(SCRIPT), "ensure", "helm"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    if not started.exists():
        run.kill()
        pytest.fail(f"the fake go never started: {run.communicate()}")
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 130
    assert (out, err) == ("", "interrupted: no tool was left half-built\n")
    assert folders(tmp_path / "cache/bookinfo-mesh/tools") == []
