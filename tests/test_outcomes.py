"""What each cohort sees on /productpage per mode, against the BRIEF and Bookinfo's timeouts."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from model.http_policy import Abort, Delay, Destination, HttpRule
from model.outcomes import (
    CohortPrediction,
    PageOutcome,
    cohort_key,
    cohort_label,
    predict_page,
)
from model.routing import Mode, TrafficSettings, bookinfo_rule, route_table

# Upstream Bookinfo (istio/istio 1.30.3 samples/bookinfo/src), as the facts file restates it:
# productpage.py tries reviews twice with a 3 s timeout each ("bug introduced explicitly");
# reviews v2 waits 10 s for ratings, v3 2.5 s, v1 never calls ratings and shows no stars.
PRODUCTPAGE_TIMEOUT_S = 3.0
PRODUCTPAGE_ATTEMPTS = 2
REVIEWS_TO_RATINGS_TIMEOUT_S = {"v2": 10.0, "v3": 2.5}
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"
JASON = "jason"
# destination-rule-all.yaml over bookinfo.yaml: each subset's labels select the pods of the
# version it is named after, one Deployment each.
UPSTREAM_SERVING = {
    "productpage": {"v1": (("v1", 1.0),)},
    "reviews": {v: ((v, 1.0),) for v in ("v1", "v2", "v3")},
    "ratings": {"v1": (("v1", 1.0),), "v2": ()},
    "details": {"v1": (("v1", 1.0),), "v2": ()},
}

# One rule for everyone, to v1: the routes a table starts from.
EVERYONE_V1 = (bookinfo_rule((Destination("v1"),)),)


class Seen(NamedTuple):
    """One way the page turns out: how often, which reviews, and after how long."""

    share: float
    reviews: str | None  # the reviews version shown; None: "reviews unavailable"
    ratings_unavailable: bool = False
    wait_s: float = 0.0


def v1(share: float = 1.0) -> Seen:
    return Seen(share, "v1")


# The BRIEF's table, cohort by cohort: (anonymous, jason).
BRIEF: dict[str, tuple[list[Seen], list[Seen]]] = {
    "all-v1": ([v1()], [v1()]),
    "user-v2": ([v1()], [Seen(1.0, "v2")]),
    "delay": (
        [v1()],
        [Seen(1.0, None, wait_s=PRODUCTPAGE_TIMEOUT_S * PRODUCTPAGE_ATTEMPTS)],
    ),
    "abort": ([v1()], [Seen(1.0, "v2", ratings_unavailable=True)]),
    "split50": ([v1(0.5), Seen(0.5, "v3")], [v1(0.5), Seen(0.5, "v3")]),
    "v3": ([Seen(1.0, "v3")], [Seen(1.0, "v3")]),
}


def _key(seen: Seen) -> tuple[str, bool, float]:
    return (str(seen.reviews), seen.ratings_unavailable, seen.wait_s)


def seen(prediction: CohortPrediction) -> list[Seen]:
    return sorted(
        (
            Seen(o.share, o.reviews_version, o.ratings_unavailable, o.wait_s)
            for o in prediction.outcomes
        ),
        key=_key,
    )


def assert_sees(prediction: CohortPrediction, expected: list[Seen], context: str) -> None:
    got = seen(prediction)
    want = sorted(expected, key=_key)
    assert len(got) == len(want), f"{context}: {prediction.cohort} sees {got}, expected {want}"
    for g, w in zip(got, want, strict=True):
        assert g.reviews == w.reviews, f"{context}: {prediction.cohort} sees {got}, not {want}"
        assert g.ratings_unavailable == w.ratings_unavailable, (
            f"{context}: {prediction.cohort} ratings availability wrong in {got}"
        )
        assert g.share == pytest.approx(w.share, abs=1e-3), (
            f"{context}: {prediction.cohort} shares {got}, expected {want}"
        )
        assert g.wait_s == pytest.approx(w.wait_s, abs=0.1), (
            f"{context}: {prediction.cohort} waits {got}, expected {want}"
        )


def page(mode: str, settings: TrafficSettings | None = None) -> tuple[CohortPrediction, ...]:
    settings = settings or TrafficSettings()
    return predict_page(route_table(Mode(mode), settings), UPSTREAM_SERVING, settings.test_user)


@pytest.mark.parametrize("mode", list(BRIEF))
def test_each_cohort_sees_the_page_the_brief_describes(mode: str) -> None:
    anonymous, jason = page(mode)
    expected_anonymous, expected_jason = BRIEF[mode]
    assert_sees(anonymous, expected_anonymous, mode)
    assert_sees(jason, expected_jason, mode)


@pytest.mark.parametrize("mode", list(BRIEF))
def test_predictions_name_the_cohorts(mode: str) -> None:
    anonymous, jason = page(mode)
    assert jason.cohort == f"user:{JASON}", f"{mode}: test user's cohort is {jason.cohort!r}"
    assert anonymous.cohort != JASON, f"{mode}: anonymous visitors are called {JASON!r}"


# The same table as the sentences render, diff and verify print: (anonymous, jason).
BRIEF_SENTENCES: dict[str, tuple[str, str]] = {
    "all-v1": ("reviews v1, no stars", "reviews v1, no stars"),
    "user-v2": ("reviews v1, no stars", "reviews v2, black stars"),
    "delay": ("reviews v1, no stars", "waits ~6 s, then reviews unavailable"),
    "abort": ("reviews v1, no stars", f"reviews v2, '{RATINGS_UNAVAILABLE}'"),
    "split50": (
        "50 %: reviews v1, no stars; 50 %: reviews v3, red stars",
        "50 %: reviews v1, no stars; 50 %: reviews v3, red stars",
    ),
    "v3": ("reviews v3, red stars", "reviews v3, red stars"),
}


@pytest.mark.parametrize("mode", list(BRIEF_SENTENCES))
def test_each_cohorts_page_reads_as_the_brief_says(mode: str) -> None:
    anonymous, jason = page(mode)
    assert (anonymous.describe(), jason.describe()) == BRIEF_SENTENCES[mode]


def test_a_cohort_is_labelled_by_who_it_is_not_by_its_name() -> None:
    assert cohort_label(cohort_key(None)) == "not logged in"
    assert cohort_label(cohort_key(JASON)) == "user jason"
    # A test user may be called "anonymous", or start with the key's own prefix.
    assert cohort_label(cohort_key("anonymous")) == "user anonymous"
    assert cohort_label(cohort_key("user:x")) == "user user:x"


@pytest.mark.parametrize(
    ("wait_s", "sentence"),
    [
        (0.4, "reviews v1, no stars"),  # below half a second nobody notices the wait
        (0.5, "waits ~0.5 s, then reviews v1, no stars"),
        (1.0, "waits ~1 s, then reviews v1, no stars"),
    ],
)
def test_a_wait_is_told_from_half_a_second_on(wait_s: float, sentence: str) -> None:
    assert PageOutcome(1.0, "v1", False, wait_s).describe() == sentence


def test_a_delay_shorter_than_productpages_timeout_only_slows_jason_down() -> None:
    anonymous, jason = page("delay", TrafficSettings(fault_delay="2s"))
    assert_sees(jason, [Seen(1.0, "v2", wait_s=2.0)], "2s delay")
    assert_sees(anonymous, [v1()], "2s delay")


def test_jason_on_reviews_v3_sees_ratings_unavailable_after_its_shorter_timeout() -> None:
    table = {
        "productpage": EVERYONE_V1,
        "details": EVERYONE_V1,
        "reviews": (bookinfo_rule((Destination("v3"),), user=JASON), *EVERYONE_V1),
        "ratings": (
            bookinfo_rule((Destination("v1"),), user=JASON, fault=Delay("7s", 100.0)),
            *EVERYONE_V1,
        ),
    }
    anonymous, jason = predict_page(table, UPSTREAM_SERVING, JASON)
    expected = Seen(1.0, "v3", ratings_unavailable=True, wait_s=REVIEWS_TO_RATINGS_TIMEOUT_S["v3"])
    assert_sees(jason, [expected], "7s delay with jason on v3")
    assert_sees(anonymous, [v1()], "7s delay with jason on v3")


@pytest.mark.parametrize(
    ("delay", "sentence"),
    [
        ("2499ms", "waits ~2.5 s, then reviews v3, red stars"),
        # A reply due exactly when the timer fires arrives after it: the timer wins.
        ("2500ms", f"waits ~2.5 s, then reviews v3, '{RATINGS_UNAVAILABLE}'"),
    ],
)
def test_a_ratings_delay_fails_reviews_v3_from_its_timeout_on(delay: str, sentence: str) -> None:
    table = {
        "productpage": EVERYONE_V1,
        "details": EVERYONE_V1,
        "reviews": (bookinfo_rule((Destination("v3"),)),),
        "ratings": (bookinfo_rule((Destination("v1"),), fault=Delay(delay, 100.0)),),
    }
    anonymous, _ = predict_page(table, UPSTREAM_SERVING, JASON)
    assert anonymous.describe() == sentence


def anonymous_prediction(
    reviews: tuple[HttpRule, ...], serving: dict | None = None
) -> CohortPrediction:
    """The page a visitor not logged in gets when these rules route reviews (ratings: all v1)."""
    table = {
        "productpage": EVERYONE_V1,
        "details": EVERYONE_V1,
        "reviews": reviews,
        "ratings": EVERYONE_V1,
    }
    anonymous, _ = predict_page(table, UPSTREAM_SERVING if serving is None else serving, JASON)
    return anonymous


def anonymous_page(reviews: tuple[HttpRule, ...], serving: dict | None = None) -> str:
    return anonymous_prediction(reviews, serving).describe()


@pytest.mark.parametrize(
    ("fault", "sentence"),
    [
        (Delay("2s", 100.0), "waits ~2 s, then reviews v1, no stars"),
        (Delay("3s", 100.0), "waits ~6 s, then reviews unavailable"),
        (
            Delay("1s", 50.0),
            "50 %: reviews v1, no stars; 50 %: waits ~1 s, then reviews v1, no stars",
        ),
        (Abort(503, 100.0), "reviews unavailable"),  # Envoy answers at once, so does the retry
        (Abort(503, 50.0), "75 %: reviews v1, no stars; 25 %: reviews unavailable"),
    ],
)
def test_a_fault_on_the_reviews_route_itself(fault: Delay | Abort, sentence: str) -> None:
    assert anonymous_page((bookinfo_rule((Destination("v1"),), fault=fault),)) == sentence


def test_a_failed_page_carries_no_ratings_error() -> None:
    aborted = (bookinfo_rule((Destination("v1"),), fault=Abort(503, 100.0)),)
    assert_sees(anonymous_prediction(aborted), [Seen(1.0, None)], "reviews aborted")


def test_equal_shares_are_told_in_version_order_whatever_the_route_order() -> None:
    split = (bookinfo_rule((Destination("v3", 50), Destination("v1", 50))),)
    assert anonymous_page(split) == "50 %: reviews v1, no stars; 50 %: reviews v3, red stars"


def test_a_service_no_destination_rule_serves_answers_503_for_every_subset() -> None:
    without = {
        service: {k: v for k, v in UPSTREAM_SERVING.items() if k != service}
        for service in ("reviews", "ratings")
    }
    to_v2 = (bookinfo_rule((Destination("v2"),)),)
    assert anonymous_page(to_v2, without["reviews"]) == "reviews unavailable"
    assert anonymous_page(to_v2, without["ratings"]) == f"reviews v2, '{RATINGS_UNAVAILABLE}'"


def test_a_half_applied_delay_splits_jasons_page_loads_by_the_retry() -> None:
    _, jason = page("delay", TrafficSettings(fault_percent=50))
    # Each attempt is delayed with probability 1/2; a delayed attempt fails after 3 s.
    expected = [
        Seen(0.5, "v2"),
        Seen(0.25, "v2", wait_s=PRODUCTPAGE_TIMEOUT_S),
        Seen(0.25, None, wait_s=PRODUCTPAGE_TIMEOUT_S * PRODUCTPAGE_ATTEMPTS),
    ]
    assert_sees(jason, expected, "delay at 50 %")
    total = sum(o.share for o in jason.outcomes)
    assert total == pytest.approx(1.0), f"shares of jason's page loads sum to {total}"


def test_a_half_applied_abort_shows_ratings_unavailable_on_half_of_jasons_loads() -> None:
    _, jason = page("abort", TrafficSettings(fault_percent=50))
    assert_sees(jason, [Seen(0.5, "v2"), Seen(0.5, "v2", ratings_unavailable=True)], "abort 50 %")


def test_a_zero_percent_fault_changes_nothing_for_jason() -> None:
    for mode in ("delay", "abort"):
        _, jason = page(mode, TrafficSettings(fault_percent=0))
        assert_sees(jason, [Seen(1.0, "v2")], f"{mode} at 0 %")


def test_split_weights_become_the_shares_of_page_loads() -> None:
    settings = TrafficSettings(split_weights={"v1": 90, "v3": 10})
    for cohort in page("split50", settings):
        assert_sees(cohort, [v1(0.9), Seen(0.1, "v3")], "split50 90/10")


# --- Properties ---------------------------------------------------------------------------
@st.composite
def settings(draw: st.DrawFn) -> TrafficSettings:
    subsets = draw(
        st.lists(st.sampled_from(["v1", "v2", "v3"]), min_size=1, max_size=3, unique=True)
    )
    cuts = sorted(
        draw(st.lists(st.integers(0, 100), min_size=len(subsets) - 1, max_size=len(subsets) - 1))
    )
    bounds = [0, *cuts, 100]
    return TrafficSettings(
        fault_delay=f"{draw(st.integers(1, 300_000))}ms",
        fault_percent=draw(st.floats(0, 100, allow_nan=False)),
        fault_abort_status=draw(st.integers(400, 599)),
        split_weights={s: bounds[i + 1] - bounds[i] for i, s in enumerate(subsets)},
    )


@given(mode=st.sampled_from(list(BRIEF)), traffic=settings())
def test_shares_of_every_cohort_always_sum_to_one(mode: str, traffic: TrafficSettings) -> None:
    for cohort in page(mode, traffic):
        total = sum(o.share for o in cohort.outcomes)
        assert total == pytest.approx(1.0, abs=1e-3), (
            f"{mode} {traffic}: {cohort.cohort}'s outcomes sum to {total}: {cohort.outcomes}"
        )


@given(delay_ms=st.integers(1, 300_000))
def test_a_full_delay_breaks_reviews_exactly_when_it_outlasts_productpages_timeout(
    delay_ms: int,
) -> None:
    delay_s = delay_ms / 1000
    assume(abs(delay_s - PRODUCTPAGE_TIMEOUT_S) >= 0.05)  # at the boundary it is a race
    _, jason = page("delay", TrafficSettings(fault_delay=f"{delay_ms}ms"))
    if delay_s < PRODUCTPAGE_TIMEOUT_S:
        expected = Seen(1.0, "v2", wait_s=round(delay_s, 1))
    else:
        expected = Seen(1.0, None, wait_s=PRODUCTPAGE_TIMEOUT_S * PRODUCTPAGE_ATTEMPTS)
    assert_sees(jason, [expected], f"delay {delay_ms}ms")


def test_an_outcome_too_rare_to_show_is_left_out_rather_than_shown_as_0_percent() -> None:
    # 0.004 % of loads see the ratings error: 0.00004 rounds to 0 % at four decimals.
    _, jason = page("abort", TrafficSettings(fault_percent=0.004))
    assert jason.describe() == "reviews v2, black stars"


def test_a_one_percent_delay_shows_the_retry_and_the_rare_double_failure() -> None:
    _, jason = page("delay", TrafficSettings(fault_percent=1))
    assert jason.describe() == (
        "99 %: reviews v2, black stars; 0.99 %: waits ~3 s, then reviews v2, black stars; "
        "0.01 %: waits ~6 s, then reviews unavailable"
    )


@pytest.mark.parametrize(
    ("delay", "sentence"),
    [
        ("1240ms", "waits ~1.2 s, then reviews v2, black stars"),  # told to a tenth of a second
        # A reply due exactly when productpage's 3 s timer fires arrives after it.
        ("3s", "waits ~6 s, then reviews unavailable"),
    ],
)
def test_jasons_wait_under_the_delay_mode(delay: str, sentence: str) -> None:
    _, jason = page("delay", TrafficSettings(fault_delay=delay))
    assert jason.describe() == sentence


def test_page_outcome_reads_as_a_sentence() -> None:
    slow = PageOutcome(share=0.25, reviews_version=None, ratings_unavailable=False, wait_s=6.0)
    assert slow.describe() == "25 %: waits ~6 s, then reviews unavailable"


def serving_with(service: str, subset: str, served: tuple) -> dict:
    """UPSTREAM_SERVING with one subset answered by other pods (or none)."""
    return {**UPSTREAM_SERVING, service: {**UPSTREAM_SERVING[service], subset: served}}


def sentences(mode: Mode, serving: dict) -> tuple[str, str]:
    anonymous, jason = predict_page(route_table(mode, TrafficSettings()), serving, JASON)
    return anonymous.describe(), jason.describe()


def test_a_subset_named_v3_whose_labels_select_v1_pods_predicts_v1() -> None:
    mislabelled = serving_with("reviews", "v3", (("v1", 1.0),))
    assert sentences(Mode.V3, mislabelled) == ("reviews v1, no stars", "reviews v1, no stars")


def test_a_subset_no_pod_serves_fails_at_once_and_the_retry_cannot_help() -> None:
    # Envoy answers 503 (no healthy upstream) without waiting; both attempts fail the same way.
    no_v3 = serving_with("reviews", "v3", ())
    assert sentences(Mode.V3, no_v3) == ("reviews unavailable", "reviews unavailable")


def test_a_split_onto_an_empty_subset_fails_a_quarter_of_loads_after_the_retry() -> None:
    # One attempt lands on v3 half the time; the page fails only when both do: 1/2 * 1/2.
    no_v3 = serving_with("reviews", "v3", ())
    expected = "75 %: reviews v1, no stars; 25 %: reviews unavailable"
    assert sentences(Mode.SPLIT50, no_v3) == (expected, expected)


def test_ratings_without_pods_shows_the_ratings_error_to_star_readers_only() -> None:
    no_ratings = serving_with("ratings", "v1", ())
    assert sentences(Mode.USER_V2, no_ratings) == (
        "reviews v1, no stars",
        f"reviews v2, '{RATINGS_UNAVAILABLE}'",
    )


def test_a_subset_shared_by_two_versions_splits_the_page_by_their_pods() -> None:
    shared = serving_with("reviews", "v1", (("v1", 0.75), ("v2", 0.25)))
    expected = "75 %: reviews v1, no stars; 25 %: reviews v2, black stars"
    assert sentences(Mode.ALL_V1, shared) == (expected, expected)
