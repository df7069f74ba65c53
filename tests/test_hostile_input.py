"""Every command against hostile input: exit 2 and one line, no traceback, no stray file."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bookinfo_mesh.cli import main
from bookinfo_mesh.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from stacks.project import ROOT

DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a": ' * 1000 + "1" + "}" * 1000
HUGE = "1" + "0" * 5000


def one_line_refusal(argv: list[str], capsys: pytest.CaptureFixture[str], says: str) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == EXIT_BAD_INPUT, f"{argv[:4]}... exited {code}: {err[:300]}"
    assert err.count("\n") == 1 and err.startswith("error: "), f"not one line: {err[:500]!r}"
    assert says in err, f"{argv[:4]}...: {err[:300]}"
    assert "Traceback" not in out + err
    return err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        # Refused whether the JSON parser follows that deep or not (its limit varies).
        (["--set", "mode=split50", "--set", f"splitWeights={DEEP}"], "splitWeights = "),
        (["--set", "mode=split50", "--set", f"splitWeights={DEEP_OBJECT}"], "splitWeights = "),
        # Beyond 64 bits: Pulumi's own type check (strconv.Atoi) stops `pulumi up` first.
        (["--set", f"faultPercent={HUGE}"], "key 'faultPercent' must be of type 'integer'"),
        (
            ["--set", "mode=split50", "--set", f'splitWeights={{"v1": {HUGE}}}'],
            "weights must be percentages, whole numbers from 0 to 100",
        ),
        (["--set", "faultDelay=\uff17s"], "is not a duration like 7s"),
        (["--set", "aws:region=mars-1"], "aws:region 'mars-1' is not an AWS region"),
        (["--stack", ""], "--stack '' is not a stack name"),
        (["--stack", "d" * 101], "is not a stack name: 1 to 100 letters"),
        (["--out", ""], "--out needs a folder name"),
    ],
    ids=[
        "splitWeights nested 1000 lists deep",
        "splitWeights nested 1000 objects deep",
        "faultPercent of 5000 digits",
        "splitWeights with a weight of 5000 digits",
        "faultDelay in full-width digits",
        "an unknown AWS region",
        "an empty stack name",
        "a stack name longer than Pulumi's 100",
        "an empty --out",
    ],
)
def test_render_refuses_hostile_config_in_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = ["--out", str(tmp_path / "out")] if "--out" not in argv else []
    one_line_refusal(["render", *out, *argv], capsys, says)
    assert not (tmp_path / "out").exists(), "a refused render wrote files"


def test_an_az_count_that_the_region_may_have_is_not_refused_offline(tmp_path: Path) -> None:
    """Four zones in us-west-2: AWS decides at `pulumi up`, not a table in the mocks."""
    argv = ["--set", "aws:region=us-west-2", "--set", "azCount=4"]
    assert main(["render", "--out", str(tmp_path / "out"), *argv]) == 0


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--weights", f"v1={HUGE}"], "percentages in ASCII digits, 0 to 100"),
        (["--weights", "v1=\uff19\uff10,v3=\uff11\uff10"], "got 'v1=\uff19\uff10'"),
    ],
    ids=["a weight of 5000 digits", "weights in full-width digits"],
)
def test_promote_refuses_hostile_weights_in_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (ROOT / "Pulumi.dev.yaml").read_bytes()
    one_line_refusal(["promote", "--stack", "dev", *argv], capsys, says)
    assert (ROOT / "Pulumi.dev.yaml").read_bytes() == before


def test_diff_refuses_an_empty_markdown_file_name(capsys: pytest.CaptureFixture[str]) -> None:
    one_line_refusal(
        ["diff", "--set", "mode=v3", "--markdown", ""], capsys, "--markdown needs a file name"
    )


def test_a_report_into_a_folder_the_kernel_refuses_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """/proc takes no new files, even from root: the write fails, whole, in one line."""
    one_line_refusal(
        ["diff", "--set", "mode=v3", "--markdown", "/proc/bookinfo-comment.md"],
        capsys,
        "--markdown /proc/bookinfo-comment.md: ",
    )


@pytest.mark.parametrize(
    ("out", "says"),
    [("{tmp}", "is a folder, not a file"), ("{tmp}/missing/c.md", "does not exist")],
    ids=["an existing folder", "a missing parent folder"],
)
def test_pr_comment_refuses_a_place_it_cannot_write_and_leaves_nothing(
    out: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(tmp_path.rglob("*"))
    one_line_refusal(
        ["pr-comment", "--base", "HEAD", "--out", out.format(tmp=tmp_path)], capsys, says
    )
    assert sorted(tmp_path.rglob("*")) == before, "a refused pr-comment left a file behind"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--deadline", "nan"], "--deadline: must be a positive number of seconds"),
        (["--deadline", "inf"], "--deadline: must be a positive number of seconds"),
        (["--requests", HUGE], "--requests: must be 1 to 1000"),
        (["--concurrency", "0"], "--concurrency: must be 1 to 256"),
        (["--url", "http://[::1/productpage"], "--url must be an http(s) URL"),
    ],
    ids=[
        "a NaN deadline",
        "an endless deadline",
        "5000-digit requests",
        "no concurrency",
        "a malformed URL",
    ],
)
def test_verify_refuses_hostile_arguments_in_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--url", "http://127.0.0.1:9/productpage"] if "--url" not in argv else []
    one_line_refusal(["verify", *url, *argv], capsys, says)


# --- Ctrl-C ----------------------------------------------------------------------------------
class SilentServer:
    """A server that accepts connections and never answers: sign-in hangs on it."""

    def __init__(self, url: str, accepted: list[socket.socket]) -> None:
        self.url, self.accepted = url, accepted

    def wait_for_a_client(self, seconds: float = 30) -> None:
        until = time.monotonic() + seconds
        while not self.accepted and time.monotonic() < until:
            time.sleep(0.05)
        assert self.accepted, "verify never connected"


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield SilentServer(f"http://127.0.0.1:{listener.getsockname()[1]}/productpage", accepted)
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def restore_sigint_as_a_nohup_parent_would_not() -> None:
    """The child starts with SIGINT ignored, as under nohup or some CI runners."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("parent_ignores_sigint", [False, True], ids=["shell", "nohup"])
def test_ctrl_c_while_signing_in_reports_and_exits_130(
    silent_server: SilentServer, parent_ignores_sigint: bool
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bookinfo_mesh", "verify", "--url", silent_server.url, "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=restore_sigint_as_a_nohup_parent_would_not if parent_ignores_sigint else None,
    )
    silent_server.wait_for_a_client()  # verify is signing in, and will wait for ever
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == EXIT_INTERRUPTED, f"exit {process.returncode}: {err}"
    assert "Traceback" not in err, err
    assert '"verdict": "interrupted"' in out, f"no partial report: {out[:300]}"
