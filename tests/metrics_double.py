"""A stand-in for the mesh's sidecars on 127.0.0.1: Istio's standard metrics, made up.

It serves GET /stats/prometheus as every sidecar does (the path Prometheus scrapes through
Istio's merged-metrics annotations): istio_requests_total and the histogram
istio_request_duration_milliseconds (_bucket, _sum, _count) with Istio's label names and
default bucket bounds. Behind them is simulated traffic: per service a request rate, split
between its versions by share, each version with its own error rate and log-normal
latencies. The counters grow with the wall clock, so Prometheus's increase() and rate() see
traffic as they would in a cluster; `openmetrics` writes the same traffic with timestamps,
for promtool to backfill a Prometheus that then answers the same queries every time.

Both reporters are served: reporter="destination" as the version's own sidecar counts (each
attempt), and reporter="source" as the caller's counts after its retries, which turn every
5xx into a later success, so a query that read the source series would miss the errors.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

# Istio's default buckets for istio_request_duration_milliseconds (proxy's stats config).
BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
    600000, 1800000, 3600000,
)  # fmt: skip
_BOUNDS = np.array(BUCKETS_MS)
METRICS_PATH = "/stats/prometheus"


@dataclass
class Version:
    """One version's behaviour: its share of the service's requests, errors and latency."""

    share: float
    error_rate: float = 0.0
    median_ms: float = 20.0
    sigma: float = 0.5  # of the log-normal: p99 = median * e^(2.33 sigma), 64 ms here


@dataclass
class Service:
    name: str
    namespace: str
    rate: float  # requests per second, all versions together
    versions: dict[str, Version]

    @property
    def host(self) -> str:
        """`name.namespace`, as Istio names a service's host in short: the traffic's key."""
        return f"{self.name}.{self.namespace}"


@dataclass
class _Counters:
    """A version's counters as its sidecar (destination) and its callers (source) hold them."""

    ok: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS_MS))
    count: int = 0
    total_ms: float = 0.0


class MeshTraffic:
    """Simulated requests, drawn with a seeded generator as simulated time advances."""

    def __init__(self, services: list[Service], start: float, seed: int = 0) -> None:
        self.services = {s.host: s for s in services}
        self.now = start
        self._random = np.random.default_rng(seed)
        self._carry = dict.fromkeys(self.services, 0.0)
        self._counters: dict[tuple[str, str], _Counters] = {
            (s.host, v): _Counters() for s in services for v in s.versions
        }
        self._lock = threading.Lock()

    def set_shares(self, host: str, shares: Mapping[str, float]) -> None:
        """Route the traffic of the service at `host` anew, as a `pulumi up` of new weights
        would."""
        with self._lock:
            for version, traffic in self.services[host].versions.items():
                traffic.share = float(shares.get(version, 0))

    def advance(self, until: float) -> None:
        """Draw every request between the last time and `until`."""
        with self._lock:
            elapsed = max(0.0, until - self.now)
            self.now = max(self.now, until)
            for service in self.services.values():
                expected = service.rate * elapsed + self._carry[service.host]
                count = math.floor(expected)
                self._carry[service.host] = expected - count
                self._draw(service, count)

    def _draw(self, service: Service, count: int) -> None:
        """`count` requests to `service`, each to a version by share, with its own latency
        and chance of an error: drawn a version at a time, thousands a scrape."""
        names = [v for v, t in service.versions.items() if t.share > 0]
        if not names or count == 0:
            return
        shares = np.array([service.versions[v].share for v in names])
        served_by = self._random.multinomial(count, shares / shares.sum())
        for version, served in zip(names, served_by, strict=True):
            if served == 0:
                continue
            traffic, counters = service.versions[version], self._counters[service.host, version]
            latencies = self._random.lognormal(math.log(traffic.median_ms), traffic.sigma, served)
            errors = int(self._random.binomial(served, traffic.error_rate))
            counters.errors += errors
            counters.ok += int(served) - errors
            counters.count += int(served)
            counters.total_ms += float(latencies.sum())
            # A request counts in every bucket whose bound it is at or under (le).
            first = np.searchsorted(_BOUNDS, latencies, side="left")
            at_or_under = np.cumsum(np.bincount(first, minlength=len(BUCKETS_MS) + 1))
            for index, requests in enumerate(at_or_under[: len(BUCKETS_MS)]):
                counters.buckets[index] += int(requests)

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """(metric name, labels, value) of every series, as the sidecars expose them."""
        with self._lock:
            counters = {key: _copy(c) for key, c in self._counters.items()}
        for (host, version), c in counters.items():
            service = self.services[host]
            for reporter in ("destination", "source"):
                labels = _labels(reporter, service, version)
                if reporter == "destination":
                    codes = {"200": c.ok, "503": c.errors}
                else:  # the caller retried each 5xx into a success it counts once
                    codes = {"200": c.ok}
                for code, value in codes.items():
                    yield "istio_requests_total", {**labels, "response_code": code}, value
                histogram = {**labels, "response_code": "200"}
                for bound, value in zip(BUCKETS_MS, c.buckets, strict=True):
                    le = {"le": f"{bound:g}"}
                    yield "istio_request_duration_milliseconds_bucket", histogram | le, value
                yield (
                    "istio_request_duration_milliseconds_bucket",
                    histogram | {"le": "+Inf"},
                    c.count,
                )
                yield "istio_request_duration_milliseconds_sum", histogram, c.total_ms
                yield "istio_request_duration_milliseconds_count", histogram, c.count

    def exposition(self) -> str:
        """The Prometheus text format a sidecar's /stats/prometheus answers."""
        lines = [
            "# TYPE istio_requests_total counter",
            "# TYPE istio_request_duration_milliseconds histogram",
        ]
        lines += [
            f"{name}{{{_label_text(labels)}}} {_number(value)}"
            for name, labels, value in self.samples()
        ]
        return "\n".join(lines) + "\n"

    def openmetrics(
        self,
        end: float,
        step: float = 1.0,
        changes: Mapping[float, tuple[str, Mapping[str, float]]] | None = None,
    ) -> str:
        """The traffic from now to `end`, sampled every `step` seconds with timestamps, in
        the OpenMetrics text that `promtool tsdb create-blocks-from openmetrics` reads;
        `changes` routes a service anew at a time (time -> (its host, shares))."""
        by_series: dict[tuple[str, str], list[str]] = {}
        pending = sorted((changes or {}).items())
        moment = self.now
        while moment <= end:
            self.advance(moment)
            while pending and pending[0][0] <= moment:
                self.set_shares(*pending.pop(0)[1])
            for name, labels, value in self.samples():
                series = by_series.setdefault((name, _label_text(labels)), [])
                series.append(f"{_number(value)} {moment:.3f}")
            moment += step
        families = {
            "istio_requests": "counter",
            "istio_request_duration_milliseconds": "histogram",
        }
        lines = []
        for family, kind in families.items():
            lines.append(f"# TYPE {family} {kind}")
            for (name, labels), values in by_series.items():
                if name.startswith(f"{family}_"):
                    lines += [f"{name}{{{labels}}} {value}" for value in values]
        return "\n".join([*lines, "# EOF"]) + "\n"


def _number(value: float) -> str:
    """A sample's value in full: counts as integers, sums as Python writes floats."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _copy(counters: _Counters) -> _Counters:
    return _Counters(
        counters.ok,
        counters.errors,
        list(counters.buckets),
        counters.count,
        counters.total_ms,
    )


def _labels(reporter: str, service: Service, version: str) -> dict[str, str]:
    """Istio's standard labels for a request to `service` served by `version`."""
    workload = f"{service.name}-{version}"
    return {
        "reporter": reporter,
        "source_workload": "productpage-v1",
        "source_workload_namespace": service.namespace,
        "source_app": "productpage",
        "source_version": "v1",
        "destination_service": f"{service.name}.{service.namespace}.svc.cluster.local",
        "destination_service_name": service.name,
        "destination_service_namespace": service.namespace,
        "destination_workload": workload,
        "destination_workload_namespace": service.namespace,
        "destination_app": service.name,
        "destination_version": version,
        "destination_canonical_service": service.name,
        "destination_canonical_revision": version,
        "request_protocol": "http",
        "connection_security_policy": "mutual_tls" if reporter == "destination" else "unknown",
        "response_flags": "-",
    }


def _label_text(labels: Mapping[str, str]) -> str:
    return ",".join(f'{key}="{value}"' for key, value in labels.items())


class _Handler(BaseHTTPRequestHandler):
    traffic: MeshTraffic

    def do_GET(self) -> None:
        if self.path != METRICS_PATH:
            self.send_error(404)
            return
        self.traffic.advance(time.time())
        body = self.traffic.exposition().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a scrape a second would bury the test output."""


@contextmanager
def serve(traffic: MeshTraffic) -> Iterator[str]:
    """The double on an ephemeral port of 127.0.0.1, for as long as the block runs: its
    host:port, the scrape target."""
    handler = type("Handler", (_Handler,), {"traffic": traffic})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
