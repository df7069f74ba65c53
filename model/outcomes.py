"""What each cohort sees on /productpage, derived from a route table and Bookinfo's timeouts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from model.http_policy import Abort, Delay, HttpRule
from model.routing import RouteTable, rule_for
from model.serving import Served, Serving

# productpage.py getProductReviews: two attempts of requests.get(timeout=3.0); any timeout,
# error or non-200 answer counts as a failed attempt ("Bug introduced explicitly").
PRODUCTPAGE_REVIEWS_TIMEOUT_S = 3.0
PRODUCTPAGE_REVIEWS_ATTEMPTS = 2
# LibertyRestEndpoint.java: timeout = star_color == "black" ? 10000 : 2500 ms; v1 never calls.
REVIEWS_RATINGS_TIMEOUT_S: dict[str, float] = {"v2": 10.0, "v3": 2.5}
STAR_COLOR: dict[str, str] = {"v2": "black", "v3": "red"}

RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"
REVIEWS_UNAVAILABLE = "Sorry, product reviews are currently unavailable for this book."
# Cohort keys are identities, not names: a test user called "anonymous" is still a user.
ANONYMOUS = "anonymous"
EVERYONE = "everyone"  # the one cohort of a project whose cohorts are not Bookinfo's
_USER_PREFIX = "user:"


def cohort_key(user: str | None) -> str:
    """The identity of a cohort: ANONYMOUS for visitors not logged in, "user:<name>" else."""
    return ANONYMOUS if user is None else f"{_USER_PREFIX}{user}"


def cohort_label(key: str) -> str:
    """How reports name a cohort: "not logged in", "user <name>" or "everyone"."""
    if key == ANONYMOUS:
        return "not logged in"
    return f"user {key.removeprefix(_USER_PREFIX)}" if key.startswith(_USER_PREFIX) else key


@dataclass(frozen=True)
class PageOutcome:
    """One way the reviews part of the page can turn out, and how often."""

    share: float  # fraction of page loads, 0..1
    reviews_version: str | None  # None: productpage gave up on reviews
    ratings_unavailable: bool
    wait_s: float  # delay the mesh adds before the page arrives

    @property
    def what(self) -> str:
        if self.reviews_version is None:
            return "reviews unavailable"
        if self.reviews_version not in STAR_COLOR:
            return f"reviews {self.reviews_version}, no stars"
        if self.ratings_unavailable:
            return f"reviews {self.reviews_version}, '{RATINGS_UNAVAILABLE}'"
        return f"reviews {self.reviews_version}, {STAR_COLOR[self.reviews_version]} stars"

    def describe(self) -> str:
        when = f"waits ~{self.wait_s:g} s, then " if self.wait_s >= 0.5 else ""
        share = "" if self.share >= 1 else f"{self.share * 100:g} %: "
        return f"{share}{when}{self.what}"


@dataclass(frozen=True)
class CohortPrediction:
    """The page as one cohort of users sees it."""

    cohort: str  # cohort_key(): ANONYMOUS or "user:<name>"
    outcomes: tuple[PageOutcome, ...]

    def describe(self) -> str:
        return "; ".join(o.describe() for o in self.outcomes)


@dataclass(frozen=True)
class _Attempt:
    """One productpage -> reviews call, and the reviews version that answered it (None: the
    call failed or timed out)."""

    prob: float
    elapsed_s: float
    version: str | None
    ratings_unavailable: bool


_FAILED = (None, False)  # (version, ratings_unavailable) of a failed attempt


def _fault_branches(rule: HttpRule) -> list[tuple[float, Delay | Abort | None]]:
    """(probability, fault that hit) for one request through `rule`; a branch may have
    probability 0, and adds nothing then."""
    if rule.fault is None:
        return [(1.0, None)]
    hit = rule.fault.percent / 100.0  # config and Istio both keep it within 0..100
    return [(hit, rule.fault), (1.0 - hit, None)]


def _answered_share(rule: HttpRule, served: Mapping[str, Served]) -> float:
    """The share of `rule`'s requests that reach a pod; the rest get Envoy's 503 at once."""
    total = sum(d.weight for d in rule.destinations)
    return sum(d.weight for d in rule.destinations if served.get(d.subset)) / total


def _ratings_call(
    rule: HttpRule, served: Mapping[str, Served], timeout_s: float
) -> list[tuple[float, bool, float]]:
    """(probability, ratings answered, seconds reviews waited) for one reviews -> ratings call;
    a branch of probability 0 adds nothing to the page."""
    reached = _answered_share(rule, served)
    branches = []
    for prob, fault in _fault_branches(rule):
        if isinstance(fault, Abort):
            branches.append((prob, False, 0.0))
        elif isinstance(fault, Delay) and fault.seconds >= timeout_s:
            branches.append((prob, False, timeout_s))
        else:
            waited = fault.seconds if isinstance(fault, Delay) else 0.0
            branches.append((prob * reached, True, waited))
            branches.append((prob * (1.0 - reached), False, waited))
    return branches


def _reviews_attempt(routes: RouteTable, serving: Serving, user: str | None) -> list[_Attempt]:
    reviews_rule = rule_for(routes["reviews"], user)
    ratings_rule = rule_for(routes["ratings"], user)
    reviews_served = serving.get("reviews", {})
    attempts: list[_Attempt] = []
    total_weight = sum(d.weight for d in reviews_rule.destinations)
    for dest in reviews_rule.destinations:
        share = dest.weight / total_weight
        for f_prob, fault in _fault_branches(reviews_rule):
            before = fault.seconds if isinstance(fault, Delay) else 0.0
            # An abort, or a subset no pod serves (Envoy's 503), fails the attempt at once.
            versions = () if isinstance(fault, Abort) else reviews_served.get(dest.subset, ())
            if not versions:
                attempts.append(_Attempt(share * f_prob, before, *_FAILED))
            for version, v_share in versions:
                calls = (
                    _ratings_call(
                        ratings_rule, serving.get("ratings", {}), REVIEWS_RATINGS_TIMEOUT_S[version]
                    )
                    if version in REVIEWS_RATINGS_TIMEOUT_S
                    else [(1.0, True, 0.0)]
                )
                for r_prob, answered, waited in calls:
                    elapsed = before + waited
                    prob = share * f_prob * v_share * r_prob
                    if elapsed >= PRODUCTPAGE_REVIEWS_TIMEOUT_S:
                        attempts.append(_Attempt(prob, PRODUCTPAGE_REVIEWS_TIMEOUT_S, *_FAILED))
                    else:
                        attempts.append(_Attempt(prob, elapsed, version, not answered))
    return attempts


def predict_cohort(routes: RouteTable, serving: Serving, user: str | None) -> CohortPrediction:
    """Outcomes of loading /productpage as `user` (None: not logged in), merged and sorted.

    `serving` says which version answers each subset (model.serving); a subset's name alone
    promises nothing.
    """
    one = _reviews_attempt(routes, serving, user)
    paths: list[tuple[float, float, _Attempt | None]] = [(1.0, 0.0, None)]
    for _ in range(PRODUCTPAGE_REVIEWS_ATTEMPTS):
        next_paths: list[tuple[float, float, _Attempt | None]] = []
        for prob, elapsed, done in paths:
            if done is not None and done.version is not None:
                next_paths.append((prob, elapsed, done))
                continue
            next_paths.extend((prob * a.prob, elapsed + a.elapsed_s, a) for a in one)
        paths = next_paths
    merged: dict[tuple[str | None, bool, float], float] = defaultdict(float)
    for prob, elapsed, last in paths:
        assert last is not None
        key = (last.version, last.ratings_unavailable, round(elapsed, 1))
        merged[key] += prob
    # Shares are rounded for display; one that rounds to 0 % is too rare to show.
    rounded = {key: round(share, 4) for key, share in merged.items()}
    outcomes = tuple(
        PageOutcome(share, version, unavailable, wait)
        for (version, unavailable, wait), share in sorted(
            rounded.items(), key=lambda kv: (-kv[1], kv[0][2], str(kv[0][0]))
        )
        if share > 0
    )
    return CohortPrediction(cohort_key(user), outcomes)


def predict_page(
    routes: RouteTable, serving: Serving, test_user: str
) -> tuple[CohortPrediction, CohortPrediction]:
    """The page for anonymous visitors and for the logged-in test user."""
    return predict_cohort(routes, serving, None), predict_cohort(routes, serving, test_user)
