"""A stand-in for Bookinfo behind Istio, on 127.0.0.1, for testing `bookinfo-mesh verify`.

It serves /productpage and POST /login as productpage does, and plays the mesh's part from a
route table: it picks the reviews subset by weight, applies the ratings faults, and follows
Bookinfo's timeouts, sleeping each delay times `time_scale`. It can be told to misbehave.

Upstream facts it relies on, restated here and in tests/data/istio_bookinfo_facts.json
(`ui_strings`), read from github.com/istio/istio at tag 1.30.3
(56df41f63e513f834c9a3af33d8aed82d1d961f2). The three source files below are the same at
05d518b996fb5c93a115ae147409fc09edbbe541, the commit that moved Bookinfo to the 1.20.3
images deployed here, but for one comment:
- samples/bookinfo/src/productpage/productpage.py: POST /login stores `username` in Flask's
  `session` cookie and redirects to the Referer; `end-user` is set from that session only
  (an incoming end-user header is not among the headers it forwards); reviews is tried
  twice, 3 s each; /productpage answers 200 even when reviews or details failed.
- samples/bookinfo/src/productpage/templates/productpage.html: the markup below (trimmed to
  the parts around what the verifier reads; the classes and texts are verbatim).
- samples/bookinfo/src/reviews/reviews-application/src/main/java/application/rest/
  LibertyRestEndpoint.java: podname = HOSTNAME, star colour from STAR_COLOR (v2 black, v3
  red, per samples/bookinfo/src/docker-bake.hcl), ratings timeout 10 s (black) or 2.5 s,
  "Ratings service is currently unavailable" per reviewer when the ratings call fails;
  samples/bookinfo/src/ratings/ratings.js: Reviewer1 5 stars, Reviewer2 4.
"""

from __future__ import annotations

import gc
import html
import json
import random
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from model.http_policy import Abort, Delay
from model.routing import RouteTable, rule_for

_FACTS = json.loads((Path(__file__).parent / "data" / "istio_bookinfo_facts.json").read_text())
_UI = _FACTS["ui_strings"]
ATTEMPT_TIMEOUT_S = float(_UI["productpage_to_reviews"]["per_attempt_timeout_s"])
ATTEMPTS = int(_UI["productpage_to_reviews"]["attempts"])
RATINGS_TIMEOUT_S = {
    v: float(_UI["reviews_to_ratings_timeout"][v].removesuffix(" s")) for v in ("v2", "v3")
}
RATINGS_ERROR = _UI["ratings_unavailable"]["text"]
REVIEWS_ERROR = _UI["reviews_unavailable"]
DETAILS_ERROR = _UI["details_unavailable"]
STAR_COLOR = {"v2": "black", "v3": "red"}
STARS = (5, 4)  # ratings.js: Reviewer1, Reviewer2
POD_SUFFIX = "-7f8c9d6b5-x2k4q"  # a ReplicaSet hash and pod suffix, as Kubernetes names them

_FILLED_STAR = (
    '<svg id="glyphicon glyphicon-star" class="h-5 w-5 flex-none" viewBox="0 0 20 20" '
    'fill="currentColor" aria-hidden="true"><path fill-rule="evenodd" d="M10.868 2.884"/></svg>'
)
_EMPTY_STAR = (
    '<svg xmlns="http://www.w3.org/2000/svg" fill="none" viewBox="0 0 24 24" '
    'stroke-width="1.5" stroke="currentColor" class="h-5 w-5 flex-none"><path d="M11.48 3.499"/>'
    "</svg>"
)


@dataclass
class Misbehaviour:
    """Ways the double departs from what its route table says."""

    reviews_weights: Mapping[str, int] | None = None  # serve this mix to everyone instead
    drop_faults: bool = False  # the fault rules never fire
    delay_factor: float = 1.0  # injected delays last this many times as long
    status: int | None = None  # every page answers this HTTP status (e.g. 503 from Envoy)
    details_error: bool = False  # details fails, so the page says so
    extra_latency_s: float = 0.0  # every page takes this much longer (before scaling)
    garbage: bool = False  # 200 with a body that is no productpage
    login_sets_no_cookie: bool = False


@dataclass
class BookinfoDouble:
    """The route table to play, the clock scale, the misbehaviour; sessions and served pages."""

    routes: RouteTable
    time_scale: float = 0.1
    misbehaviour: Misbehaviour = field(default_factory=Misbehaviour)
    seed: int = 7
    path_prefix: str = ""  # where productpage is served: "" is /productpage, "/shop" /shop/...
    sessions: dict[str, str] = field(default_factory=dict)
    end_user_headers_seen: int = 0
    pages_served: int = 0
    _rngs: dict[str | None, random.Random] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _draw(self, user: str | None) -> float:
        # One random stream per cohort, so a cohort's mix does not depend on thread timing.
        with self._lock:
            rng = self._rngs.setdefault(user, random.Random(f"{self.seed}:{user}"))
            return rng.random()

    def _reviews_subset(self, user: str | None) -> str:
        weights = self.misbehaviour.reviews_weights or {
            d.subset: d.weight for d in rule_for(self.routes["reviews"], user).destinations
        }
        point = self._draw(user) * sum(weights.values())
        for subset, weight in weights.items():
            point -= weight
            if point < 0:
                return subset
        return subset

    def _ratings_call(self, user: str | None, timeout_s: float) -> tuple[bool, float]:
        """(ratings answered, seconds reviews waited for it)."""
        fault = rule_for(self.routes["ratings"], user).fault
        if (
            fault is None
            or self.misbehaviour.drop_faults
            or self._draw(user) * 100 >= fault.percent
        ):
            return True, 0.0
        if isinstance(fault, Abort):
            return False, 0.0
        assert isinstance(fault, Delay)
        delay = fault.seconds * self.misbehaviour.delay_factor
        return (False, timeout_s) if delay >= timeout_s else (True, delay)

    def product_page(self, user: str | None) -> tuple[float, str | None, bool]:
        """(seconds taken, reviews subset or None if none answered, ratings failed)."""
        elapsed = 0.0
        for _ in range(ATTEMPTS):
            subset = self._reviews_subset(user)
            answered, waited = (
                self._ratings_call(user, RATINGS_TIMEOUT_S[subset])
                if subset in RATINGS_TIMEOUT_S
                else (True, 0.0)
            )
            if waited >= ATTEMPT_TIMEOUT_S:
                elapsed += ATTEMPT_TIMEOUT_S
                continue
            return elapsed + waited, subset, not answered
        return elapsed, None, False


def _nav(user: str | None) -> str:
    if user:
        return (
            '<div class="ml-4">\n'
            f'  <p class="text-base font-medium text-gray-50">{html.escape(user)}</p>\n'
            '  <a href="logout" class="text-xs font-medium text-gray-400 '
            'hover:text-gray-300">Sign out</a>\n</div>'
        )
    return (
        '<button type="button" id="sign-in-button" class="rounded-md bg-blue-600">Sign in</button>'
    )


def _review(name: str, stars: int, subset: str, ratings_failed: bool) -> str:
    rating = ""
    if subset in STAR_COLOR and ratings_failed:
        rating = f'<p class="text-red-500">{RATINGS_ERROR}</p>'
    elif subset in STAR_COLOR:
        rating = (
            f'<div class="flex gap-x-1 text-{STAR_COLOR[subset]}-500">\n'
            + _FILLED_STAR * stars
            + _EMPTY_STAR * (5 - stars)
            + "\n</div>"
        )
    return (
        '<section class="px-6 py-12 sm:py-8 lg:px-8">\n<div class="mx-auto max-w-2xl">\n'
        f"{rating}\n"
        '<blockquote class="mt-10 text-xl font-semibold"><p>"A review."</p></blockquote>\n'
        f'<div class="font-semibold text-gray-900">{name}</div>\n'
        '<div class="mt-0.5 text-gray-600 font-mono">Reviews served by: \n'
        f"                  reviews-{subset}{POD_SUFFIX}\n                  \n</div>\n"
        "</div>\n</section>"
    )


def render_page(
    user: str | None, subset: str | None, ratings_failed: bool, details_ok: bool = True
) -> str:
    """A productpage as productpage.html renders it, for one reviews answer."""
    details = (
        '<h4 class="text-3xl font-semibold">Book Details</h4>\n<table></table>'
        if details_ok
        else f'<p class="text-2xl text-red-500">{DETAILS_ERROR["heading"]}</p>\n'
        f'<p class="text-lg text-gray-600">{DETAILS_ERROR["detail"]}</p>'
    )
    if subset is None:
        reviews = (
            f'<p class="text-2xl text-red-500">{REVIEWS_ERROR["heading"]}</p>\n'
            f'<p class="text-lg text-gray-600">{REVIEWS_ERROR["detail"]}</p>'
        )
    else:
        sections = "\n".join(
            _review(f"Reviewer{i + 1}", stars, subset, ratings_failed)
            for i, stars in enumerate(STARS)
        )
        reviews = (
            '<h4 class="text-3xl font-semibold">Book Reviews</h4>\n'
            f'<div class="flex flex-col md:flex-row">\n{sections}\n</div>'
        )
    return (
        "<title>Simple Bookstore App</title>\n"
        '<nav class="bg-gray-800"><a href="#" class="text-white px-3 py-2 text-lg font-medium" '
        f'aria-current="page">BookInfo Sample</a>\n{_nav(user)}\n</nav>\n'
        '<form class="space-y-6" method="post" action=\'login\' name="login_form">'
        '<input id="username" name="username" required>'
        '<input id="password" name="passwd" type="password" required></form>\n'
        f'<div class="flow-root">\n{details}\n</div>\n'
        f'<div class="max-w-2xl">\n{reviews}\n</div>\n'
    )


def _handler(double: BookinfoDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests read the verifier's report, not an access log."""

        def _user(self) -> str | None:
            if self.headers.get("end-user") is not None:
                double.end_user_headers_seen += 1  # and ignored, as productpage does
            cookie: SimpleCookie = SimpleCookie(self.headers.get("Cookie", ""))
            token = cookie["session"].value if "session" in cookie else None
            return double.sessions.get(token) if token else None

        def _send(self, status: int, body: str, headers: Mapping[str, str] = {}) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path != f"{double.path_prefix}/login":
                self._send(404, "not found")
                return
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            headers = {"Location": self.headers["Referer"]} if "Referer" in self.headers else {}
            if not double.misbehaviour.login_sets_no_cookie:
                token = secrets.token_urlsafe(16)
                double.sessions[token] = form.get("username", [""])[0]
                headers["Set-Cookie"] = f"session={token}; HttpOnly; Path=/"
            self._send(302, "", headers)

        def do_GET(self) -> None:
            if self.path != f"{double.path_prefix}/productpage":
                self._send(404, "not found")
                return
            user = self._user()
            bad = double.misbehaviour
            wait, subset, ratings_failed = double.product_page(user)
            time.sleep((wait + bad.extra_latency_s) * double.time_scale)
            if bad.status is not None:
                self._send(bad.status, "no healthy upstream")
            elif bad.garbage:
                self._send(200, "<html><body><h1>It works!</h1><p>%%%&&<div")
            else:
                self._send(200, render_page(user, subset, ratings_failed, not bad.details_error))
            with double._lock:
                double.pages_served += 1

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections the verifier opens at once; a dropped SYN
    # is retried after 1 s and would read as a slow page.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet about clients that left (the verifier after its deadline or Ctrl-C)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve(double: BookinfoDouble) -> Iterator[str]:
    """Serve the double on 127.0.0.1, an ephemeral port; yields the productpage URL.

    The garbage collector is off meanwhile. Verifier and double share this process, and by
    the end of the suite a full collection walks ~360,000 objects in 250-370 ms: one during a
    run stalls every page in flight past the latency tolerance, scaled down as the delays are.
    """
    server = _Server(("127.0.0.1", 0), _handler(double))
    # A short poll, so that shutdown() at the end of each test returns at once.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    gc.disable()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{double.path_prefix}/productpage"
    finally:
        server.shutdown()
        server.server_close()
        gc.enable()


def refused_url() -> str:
    """A productpage URL on a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/productpage"
