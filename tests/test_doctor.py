"""`bookinfo-mesh doctor` against fake executables on PATH: missing, too old, fine."""

from __future__ import annotations

from pathlib import Path

import pytest

from bookinfo_mesh import doctor
from bookinfo_mesh.cli import main

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


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the fakes, and a secret in the environment that must never show."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    fake(tmp_path, "pulumi", "echo v3.150.0")
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
    for name in ("Pulumi CLI", "AWS CLI", "AWS credentials", "AWS region", "kubectl"):
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
    assert line(out, "kubectl").startswith("optional"), out


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
