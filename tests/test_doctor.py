"""`bookinfo-mesh doctor` against fake executables on PATH: missing, too old, fine."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bookinfo_mesh.cli import main
from bookinfo_mesh.commands import doctor

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKESECRET"
IDENTITY = (
    '{"UserId": "AIDAFAKE", "Account": "111122223333", "Arn": "arn:aws:iam::111122223333:user/ci"}'
)


def fake(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def aws_script(version: str, identity: str | None = IDENTITY) -> str:
    sts = f"echo '{identity}'" if identity else "echo 'Unable to locate credentials' >&2; exit 253"
    return (
        f'if [ "$1" = "--version" ]; then echo "aws-cli/{version} Python/3.11 Linux"; '
        f'elif [ "$1" = "sts" ]; then {sts}; else exit 2; fi'
    )


def chart_index(versions: dict[str, list[str]]) -> bytes:
    """A Helm repository index.yaml, in the shape Istio's chart repository serves."""
    entries = {
        chart: [
            {
                "apiVersion": "v2",
                "name": chart,
                "version": v,
                "appVersion": v,
                "urls": [f"https://istio-release.storage.googleapis.com/charts/{chart}-{v}.tgz"],
            }
            for v in chart_versions
        ]
        for chart, chart_versions in versions.items()
    }
    return yaml.safe_dump({"apiVersion": "v1", "entries": entries}).encode()


RELEASED = ["1.29.9", "1.30.3", "1.30.4", "1.31.0-rc.0", "1.31.0", "1.31.1"]


class ServedIndex:
    """What the stand-in chart repository answers: the index bytes, or an HTTP status."""

    def __init__(self) -> None:
        self.body = chart_index(dict.fromkeys(("base", "istiod", "gateway"), RELEASED))
        self.status = 200


@pytest.fixture(autouse=True)
def served_index(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedIndex]:
    """Doctor reads Istio's chart index from a server on 127.0.0.1, never the internet."""
    served = ServedIndex()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(served.status)
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    monkeypatch.setattr(
        doctor, "ISTIO_CHART_INDEX", f"http://127.0.0.1:{server.server_port}/charts/index.yaml"
    )
    yield served
    server.shutdown()
    server.server_close()


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the fakes, and a secret in the environment that must never show."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    fake(tmp_path, "pulumi", "echo v3.150.0")
    fake(tmp_path, "uv", "echo uv 0.13.9")
    fake(tmp_path, "aws", aws_script("2.15.30"))
    fake(tmp_path, "kubectl", """echo '{"clientVersion": {"gitVersion": "v1.35.1"}}'""")
    return tmp_path


def doctor_says(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["doctor", "--stack", "dev"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, f"doctor printed a traceback:\n{err}"
    assert SECRET_KEY not in out + err, "doctor printed the secret access key"
    return code, out


def line(output: str, name: str) -> str:
    return next((ln for ln in output.splitlines() if f" {name}:" in ln), "")


def test_a_ready_machine_passes_every_check(path: Path, capsys) -> None:
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_READY, out
    for name in ("Pulumi CLI", "uv", "AWS CLI", "AWS credentials", "AWS region", "kubectl"):
        assert line(out, name).startswith("ok"), f"{name} not ok:\n{out}"
    assert "arn:aws:iam::111122223333:user/ci" in line(out, "AWS credentials")


def test_a_missing_pulumi_cli_says_how_to_install_it(path: Path, capsys) -> None:
    (path / "pulumi").unlink()
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY
    assert line(out, "Pulumi CLI").startswith("missing") and "pulumi.com/docs/install" in out


def test_a_pulumi_cli_without_the_uv_toolchain_is_too_old(path: Path, capsys) -> None:
    fake(path, "pulumi", "echo v3.120.0")
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY
    assert "3.120.0 is older than 3.139.0" in line(out, "Pulumi CLI"), out


@pytest.mark.parametrize("version", ["2.6.4", "1.23.9"])
def test_an_aws_cli_too_old_for_eks_get_token_is_refused(path: Path, capsys, version) -> None:
    fake(path, "aws", aws_script(version))
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY
    assert f"{version} cannot run `aws eks get-token`" in line(out, "AWS CLI"), out


@pytest.mark.parametrize("version", ["2.7.0", "1.24.0"])
def test_the_oldest_aws_cli_that_works_is_accepted(path: Path, capsys, version) -> None:
    fake(path, "aws", aws_script(version))
    code, out = doctor_says(capsys)
    assert line(out, "AWS CLI").startswith("ok"), out
    assert code == doctor.EXIT_READY


def test_missing_credentials_are_reported_without_printing_any(path: Path, capsys) -> None:
    fake(path, "aws", aws_script("2.15.30", identity=None))
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY
    assert "aws sso login" in line(out, "AWS credentials"), out


def test_no_network_is_not_called_missing_credentials(path: Path, capsys) -> None:
    no_network = (
        "echo 'Could not connect to the endpoint URL: \"https://sts.amazonaws.com/\"' >&2; exit 255"
    )
    fake(path, "aws", aws_script("2.15.30").replace("echo '" + IDENTITY + "'", no_network))
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY
    assert line(out, "AWS credentials") == (
        "missing  AWS credentials: could not reach AWS STS to check them (no network, or a "
        "proxy in the way)"
    ), out


def test_a_missing_uv_says_where_make_put_one(path: Path, capsys) -> None:
    (path / "uv").unlink()
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY, "pulumi up runs uv sync: without uv it fails"
    found = line(out, "uv")
    assert found.startswith("missing  uv: not found on PATH, and `pulumi up` runs uv sync; "), out
    assert ".tools/uv/bin" in found or "docs.astral.sh/uv" in found, out


def test_a_missing_aws_cli_fails_both_aws_checks(path: Path, capsys) -> None:
    (path / "aws").unlink()
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY
    assert line(out, "AWS CLI").startswith("missing")
    assert line(out, "AWS credentials").startswith("missing")


def test_kubectl_is_optional(path: Path, capsys) -> None:
    (path / "kubectl").unlink()
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_READY, out
    assert line(out, "kubectl").startswith("note"), out


def test_a_hanging_tool_is_reported_not_waited_for(
    path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "TIMEOUT_S", 0.5)
    fake(path, "pulumi", "exec sleep 5")
    (path / "sleep").symlink_to("/bin/sleep")
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY
    assert line(out, "Pulumi CLI").startswith("missing"), out


def test_a_stack_without_a_region_says_how_to_set_one(path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(doctor, "load_engine_config", lambda stack, overrides: ({}, []))
    monkeypatch.delenv("AWS_REGION", raising=False)
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY
    assert "pulumi config set aws:region" in line(out, "AWS region"), out


def test_a_stack_that_does_not_exist_is_bad_input_named_in_one_line(path: Path, capsys) -> None:
    code = main(["doctor", "--stack", "nosuch"])
    err = capsys.readouterr().err
    assert code == 2, "an unknown stack is bad input, like in every other command"
    assert err.count("\n") == 1 and "pulumi stack init nosuch" in err, err
    assert "Traceback" not in err


# --- Istio's chart index ------------------------------------------------------------------
def test_a_pin_that_is_the_newest_patch_of_its_minor_is_ok(
    path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "ISTIO_PIN_KEYS", ("istioVersion",))
    served_pins(monkeypatch, {"istioVersion": "1.31.1"})
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_READY, out
    assert line(out, "Istio charts") == (
        "ok       Istio charts: istioVersion 1.31.1 is the newest patch of its minor"
    ), out


def served_pins(monkeypatch: pytest.MonkeyPatch, pins: dict[str, str]) -> None:
    """The stack's config as doctor loads it, holding these Istio pins and a region."""
    config = {"aws:region": "ap-northeast-2"} | {f"bookinfo-mesh:{k}": v for k, v in pins.items()}
    monkeypatch.setattr(doctor, "load_engine_config", lambda stack, overrides: (config, []))


def test_a_newer_patch_of_the_pinned_minor_is_named_with_the_command_that_adopts_it(
    path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    served_pins(monkeypatch, {"istioVersion": "1.30.3", "istioCanaryVersion": "1.31.0"})
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_READY, "a newer patch is advice; the stack still deploys"
    assert line(out, "Istio charts") == (
        "note     Istio charts: istioVersion 1.30.3: 1.30.4 is out; adopt patches (security "
        "ones above all) at once: pulumi config set istioVersion 1.30.4; istioCanaryVersion "
        "1.31.0: 1.31.1 is out; adopt patches (security ones above all) at once: pulumi "
        "config set istioCanaryVersion 1.31.1"
    ), out


def test_a_pin_no_chart_has_fails_as_pulumi_preview_would(
    path: Path, capsys, monkeypatch: pytest.MonkeyPatch, served_index: ServedIndex
) -> None:
    served_index.body = chart_index(
        {"base": RELEASED, "istiod": RELEASED, "gateway": ["1.30.3", "1.31.0"]}
    )
    served_pins(monkeypatch, {"istioVersion": "1.30.99", "istioCanaryVersion": "1.31.1"})
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_NOT_READY, out
    assert line(out, "Istio charts") == (
        "missing  Istio charts: istioVersion 1.30.99 is not in the chart index (base, istiod, "
        "gateway): `pulumi preview` would fail to find it; istioCanaryVersion 1.31.1 is not "
        "in the chart index (gateway): `pulumi preview` would fail to find it"
    ), out


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (503, b"", "(HTTP 503 Service Unavailable)"),
        (200, b"entries: [1, 2", "(not valid YAML: did not find expected ',' or ']')"),
        (200, b"- a list", "no `entries:` mapping"),
    ],
)
def test_an_index_that_cannot_be_read_is_a_note_never_a_failure(
    path: Path,
    capsys,
    served_index: ServedIndex,
    status: int,
    body: bytes,
    reason: str,
) -> None:
    served_index.status, served_index.body = status, body
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_READY, out
    found = line(out, "Istio charts")
    assert found.startswith("note     Istio charts: could not check the pins against http://"), out
    assert reason in found and "`pulumi preview` still checks" in found, out


def test_no_network_is_a_note_never_a_failure(
    path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A port nothing listens on: the connection is refused at once, as without a network.
    monkeypatch.setattr(doctor, "ISTIO_CHART_INDEX", "http://127.0.0.1:9/index.yaml")
    code, out = doctor_says(capsys)
    assert code == doctor.EXIT_READY, out
    assert "could not check the pins" in line(out, "Istio charts"), out
    assert "Connection refused" in line(out, "Istio charts"), out
