"""Reading a Bookinfo /productpage: which reviews version served it, with what, for whom."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from model.outcomes import RATINGS_UNAVAILABLE, STAR_COLOR, PageOutcome

# Markers of samples/bookinfo/src/productpage/templates/productpage.html and the reviews
# JSON it renders (LibertyRestEndpoint.java), Istio 1.30.3; both files are the same at the
# commit that moved Bookinfo to the 1.20.3 images this project deploys (model/catalogue.py).
_SERVED_BY = re.compile(r"Reviews served by:\s*([^\s<]+)")
_REVIEWS_POD = re.compile(r"reviews-(v\d+)-")
_STARS = re.compile(r'<div class="flex gap-x-1 text-([a-z]+)-500">')
_SIGNED_IN = re.compile(r'<p class="text-base font-medium text-gray-50">(.*?)</p>', re.S)
_SIGN_IN_BUTTON = 'id="sign-in-button"'
_BOOK_REVIEWS = '<h4 class="text-3xl font-semibold">Book Reviews</h4>'
_REVIEWS_ERROR = "Error fetching product reviews"
_DETAILS_ERROR = "Error fetching product details"
_RATINGS_ERROR = f'<p class="text-red-500">{RATINGS_UNAVAILABLE}</p>'


class UnexpectedPageError(ValueError):
    """The page is not one Bookinfo shows for any routing: the reason, as a finding."""


@dataclass(frozen=True)
class PageReading:
    """What one /productpage says: who served reviews, with what, for whom."""

    reviews_version: str | None  # None: productpage shows "Error fetching product reviews"
    ratings_unavailable: bool
    user: str | None  # the signed-in user the page greets; None: a "Sign in" button

    @property
    def what(self) -> str:
        return PageOutcome(1.0, self.reviews_version, self.ratings_unavailable, 0.0).what


def read_page(page: str) -> PageReading:
    """Reviews version, ratings state and user of a productpage; UnexpectedPageError if none."""
    if _DETAILS_ERROR in page:
        raise UnexpectedPageError("details unavailable ('Error fetching product details')")
    if _SIGN_IN_BUTTON in page:
        user = None
    elif signed_in := _SIGNED_IN.search(page):
        user = html.unescape(signed_in.group(1).strip())
    else:
        raise UnexpectedPageError("malformed page: neither a signed-in user nor a 'Sign in' button")
    if _REVIEWS_ERROR in page:
        if _SERVED_BY.search(page):
            raise UnexpectedPageError("malformed page: a reviews error and reviews at once")
        return PageReading(None, False, user)
    if _BOOK_REVIEWS not in page:
        raise UnexpectedPageError("malformed page: no 'Book Reviews' section and no reviews error")
    pods = set(_SERVED_BY.findall(page))
    if len(pods) != 1:
        raise UnexpectedPageError(f"malformed page: 'Reviews served by:' names {len(pods)} pods")
    pod = html.unescape(pods.pop())
    served = _REVIEWS_POD.match(pod)
    if served is None:
        raise UnexpectedPageError(f"reviews served by {pod!r}, which is not a reviews-vN pod")
    version = served.group(1)
    colours = set(_STARS.findall(page))
    ratings_error = _RATINGS_ERROR in page
    expected_colour = STAR_COLOR.get(version)
    if expected_colour is None:
        if colours or ratings_error:
            raise UnexpectedPageError(f"reviews {version} shows ratings, which it never calls")
        return PageReading(version, False, user)
    if colours - {expected_colour}:
        shown = ", ".join(sorted(colours))
        raise UnexpectedPageError(
            f"reviews {version} with {shown} stars (its stars are {expected_colour})"
        )
    if not colours and not ratings_error:
        raise UnexpectedPageError(f"reviews {version} with neither stars nor a ratings error")
    return PageReading(version, ratings_error, user)


@dataclass(frozen=True)
class Observation:
    """One page load: how long it took, and what it showed or why it showed nothing usable."""

    cohort: str
    latency_s: float
    reading: PageReading | None
    problem: str | None = None  # HTTP error, no answer, malformed page
    unreachable: bool = False  # no HTTP answer at all
