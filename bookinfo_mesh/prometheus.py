"""A small client of Prometheus's HTTP API (instant queries), and the canary gate run on it.

Every failure is one line (PrometheusError, exit 2): nothing listening, an answer that is
not Prometheus's, or Prometheus's own error for a query.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from bookinfo_mesh.errors import ToolError
from bookinfo_mesh.metrics import GateReport, Queries, Target, gate_queries, gate_report
from model.canary_gate import GateThresholds

DEFAULT_URL = "http://127.0.0.1:9090"  # what `kubectl port-forward svc/prometheus 9090` gives
TIMEOUT_S = 10.0
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a window of raw samples: some MB at most


class PrometheusError(ToolError):
    """Prometheus cannot be reached, or did not answer a query: one line, exit 2."""


def check_url(url: str) -> str:
    """`url` if it is an http(s) URL with a host; PrometheusError if not."""
    try:
        parts = urllib.parse.urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        valid = False
    if not valid:
        raise PrometheusError(
            f"--prometheus must be an http(s) URL like {DEFAULT_URL}, got {url[:80]!r}"
        )
    return url


def _get(endpoint: str, timeout: float) -> tuple[int, bytes]:
    """HTTP status and body (at most one byte past the limit) of a GET."""
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            return response.status, response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as error:  # 400 and 422 carry Prometheus's own message
        with error:
            return error.code, error.read(MAX_ANSWER_BYTES + 1)


def instant_query(url: str, promql: str, at: float, timeout: float = TIMEOUT_S) -> list[Any]:
    """What `promql` evaluates to at Unix time `at` (GET /api/v1/query): the series of an
    instant vector (a "value" each) or of a range vector (their "values")."""
    endpoint = (
        url.rstrip("/")
        + "/api/v1/query?"
        + urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
    )
    try:
        status, body = _get(endpoint, timeout)
    except (OSError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors
        reason = getattr(error, "reason", None) or error
        raise PrometheusError(f"cannot reach Prometheus at {url}: {reason}") from None
    if len(body) > MAX_ANSWER_BYTES:
        raise PrometheusError(f"Prometheus at {url} answered more than {MAX_ANSWER_BYTES} bytes")
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        answer = None
    if not isinstance(answer, dict) or "status" not in answer:
        raise PrometheusError(
            f"{url} did not answer as Prometheus's HTTP API does (HTTP {status} to /api/v1/query)"
        )
    if answer["status"] != "success":
        message = str(answer.get("error", "no message"))[:200].replace("\n", " ")
        raise PrometheusError(f"Prometheus at {url} refused a query (HTTP {status}): {message}")
    data = answer.get("data")
    if not isinstance(data, dict) or data.get("resultType") not in ("vector", "matrix"):
        raise PrometheusError(f"Prometheus at {url} answered no vector to a query")
    result = data.get("result")
    if not isinstance(result, list):
        raise PrometheusError(f"Prometheus at {url} answered a vector without series")
    return result


def query_all(url: str, queries: Queries, at: float) -> Mapping[str, Sequence[Any]]:
    """Each of the gate's queries at the same instant: field name -> its series."""
    return {f.name: instant_query(url, getattr(queries, f.name), at) for f in fields(queries)}


def run_gate(url: str, target: Target, thresholds: GateThresholds, at: float) -> GateReport:
    """The gate on what Prometheus at `url` holds for the window ending at `at`."""
    answers = query_all(check_url(url), gate_queries(target), at)
    return gate_report(target, answers, thresholds, at, url)
