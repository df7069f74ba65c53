"""Loading Bookinfo's pages over HTTP: signing in as its form does, and many loads at once."""

from __future__ import annotations

import http.client
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie

from bookinfo_mesh.pages import Observation, UnexpectedPageError, read_page


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return kind(parts.hostname, parts.port, timeout=timeout), target


def login(url: str, user: str, timeout: float) -> str | None:
    """Sign in the way Bookinfo's form does (POST login, relative to the page): the Cookie
    header of the session it sets, or None if it set none. OSError if nothing answers."""
    conn, target = _connection(urllib.parse.urljoin(url, "login"), timeout)
    body = urllib.parse.urlencode({"username": user, "passwd": ""})
    try:
        # A browser sends its page as Referer, and productpage redirects back to it.
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": url}
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        cookies: SimpleCookie = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
    finally:
        conn.close()
    return "; ".join(f"{k}={m.value}" for k, m in cookies.items()) or None


def load_page(url: str, cohort: str, cookie: str | None, timeout: float) -> Observation:
    """GET the page once and read it; every failure becomes part of the observation."""
    started = time.monotonic()
    try:
        conn, target = _connection(url, timeout)
        try:
            conn.request("GET", target, headers={"Cookie": cookie} if cookie else {})
            response = conn.getresponse()
            body = response.read().decode("utf-8", errors="replace")
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as error:
        reason = f"timed out after {timeout:.3g} s" if isinstance(error, TimeoutError) else error
        return Observation(cohort, time.monotonic() - started, None, f"no answer: {reason}", True)
    latency = time.monotonic() - started
    if response.status != 200:
        return Observation(cohort, latency, None, f"HTTP {response.status} {response.reason}")
    try:
        return Observation(cohort, latency, read_page(body))
    except UnexpectedPageError as problem:
        return Observation(cohort, latency, None, str(problem))


@dataclass
class RunResult:
    observations: list[Observation]
    interrupted: bool = False
    deadline_hit: bool = False


def run_requests(
    tasks: Sequence[Callable[[], Observation]],
    concurrency: int,
    deadline_s: float,
    on_done: Callable[[], None] = lambda: None,
) -> RunResult:
    """Run `tasks` on at most `concurrency` daemon threads until done, the deadline or Ctrl-C.

    Daemon threads, not an executor: after Ctrl-C or the deadline the command reports and
    exits at once instead of waiting for requests still in flight.
    """
    todo: queue.SimpleQueue[Callable[[], Observation]] = queue.SimpleQueue()
    for task in tasks:
        todo.put(task)
    done: queue.SimpleQueue[Observation] = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                task = todo.get_nowait()
            except queue.Empty:
                return
            done.put(task())

    result = RunResult([])
    ends = time.monotonic() + deadline_s
    # Ctrl-C at any moment, even while the workers are still being started, ends the run
    # with the pages so far.
    try:
        for _ in range(min(concurrency, len(tasks))):
            threading.Thread(target=worker, daemon=True).start()
        while len(result.observations) < len(tasks):
            remaining = ends - time.monotonic()
            if remaining <= 0:
                result.deadline_hit = True
                break
            try:
                result.observations.append(done.get(timeout=min(remaining, 0.1)))
            except queue.Empty:
                continue
            on_done()
    except KeyboardInterrupt:
        result.interrupted = True
    stop.set()
    return result
