"""A real Prometheus for the tests: Debian's `prometheus`, started on 127.0.0.1 with a config
and a storage folder of the test's own, stopped when the test is done.

`.ci/run` installs the package (apt-get install prometheus); a test that needs it and does
not find it fails, naming that command. The package's own service is never used: each
instance here listens on a free port of its own and keeps its data in a temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.metrics_double import METRICS_PATH

READY_TIMEOUT_S = 30.0
SCRAPE_INTERVAL = "500ms"


def prometheus_binary(name: str = "prometheus") -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: apt-get install prometheus (Debian's package)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_text(targets: Sequence[str]) -> str:
    """One job scraping the doubles the way Istio's pod annotations have sidecars scraped."""
    listed = ", ".join(f'"{t}"' for t in targets)
    return (
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\n"
        "scrape_configs:\n"
        "  - job_name: mesh\n"
        f"    metrics_path: {METRICS_PATH}\n"
        f"    static_configs:\n      - targets: [{listed}]\n"
    )


def get_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    until = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < until:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"prometheus not ready after {READY_TIMEOUT_S:g} s: {log.read_text()[-2000:]}"
    )


@contextlib.contextmanager
def prometheus(
    targets: Sequence[str] = (), storage: Path | None = None, retention: str = "15d"
) -> Iterator[str]:
    """A Prometheus scraping `targets` (host:port) every SCRAPE_INTERVAL, or serving the TSDB blocks
    in `storage`; its base URL while the block runs."""
    binary = prometheus_binary()
    with tempfile.TemporaryDirectory(prefix="prometheus-") as folder:
        root = Path(folder)
        config = root / "prometheus.yml"
        config.write_text(config_text(targets) if targets else "global: {}\n")
        log = root / "prometheus.log"
        for attempt in range(3):  # another process may take the free port first
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={storage or root / 'data'}",
                        f"--storage.tsdb.retention.time={retention}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            try:
                _wait_ready(url, process, log)
                break
            except RuntimeError:
                _stop(process)
                if attempt == 2:
                    raise
        try:
            yield url
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_scrapes(url: str, count: int, timeout: float = 30.0) -> None:
    """Until every target has been scraped `count` times (Prometheus's own counter)."""
    query = urllib.parse.urlencode({"query": 'min(count_over_time(up{job="mesh"}[1h]))'})
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        result = get_json(f"{url}/api/v1/query?{query}")["data"]["result"]
        if result and float(result[0]["value"][1]) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"Prometheus at {url} did not scrape {count} times in {timeout:g} s")


def backfill(openmetrics: str, storage: Path) -> None:
    """TSDB blocks in `storage` holding `openmetrics` (promtool tsdb create-blocks-from)."""
    promtool = prometheus_binary("promtool")
    storage.mkdir(parents=True, exist_ok=True)
    source = storage / "backfill.om"
    source.write_text(openmetrics)
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(storage)],
        capture_output=True,
        text=True,
        check=False,
    )
    source.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"promtool could not backfill: {done.stderr[-2000:]}")
