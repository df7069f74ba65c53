"""The exact binomial tests verify and the canary gate share, against exact sums."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from bookinfo_mesh.exact_tests import binomial_cdf, binomial_p_value, binomial_sf


def test_the_exact_binomial_test_matches_the_symmetric_closed_form() -> None:
    for n, k in [(40, 27), (40, 29), (40, 40), (15, 8), (40, 20)]:
        tail = max(k, n - k)
        # Under p = 1/2 the counts as unlikely as k are those at least |k - n/2| from n/2.
        if 2 * tail == n:
            expected = Fraction(1)
        else:
            expected = 2 * sum(Fraction(math.comb(n, i), 2**n) for i in range(tail, n + 1))
        got = binomial_p_value(k, n, 0.5)
        assert math.isclose(got, float(expected), rel_tol=1e-9), f"{k}/{n}: {got} != {expected}"


def _exact_cdf(k: int, n: int, p: Fraction) -> Fraction:
    return sum((math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)), Fraction(0))


@pytest.mark.parametrize("n", [1, 2, 7, 40, 200])
@pytest.mark.parametrize("p", [Fraction(1, 100), Fraction(1, 20), Fraction(1, 2), Fraction(9, 10)])
def test_the_tails_are_exact_sums(n: int, p: Fraction) -> None:
    for k in range(-1, n + 2):
        exact = float(_exact_cdf(min(k, n), n, p)) if k >= 0 else 0.0
        assert binomial_cdf(k, n, float(p)) == pytest.approx(exact, rel=1e-9, abs=1e-300)
        upper = 1 - float(_exact_cdf(k - 1, n, p)) if k > 0 else 1.0
        assert binomial_sf(k, n, float(p)) == pytest.approx(upper, rel=1e-9, abs=1e-15)


def test_the_tails_agree_with_verifys_two_sided_test_and_scale() -> None:
    # Under p = 1/2 the two-sided p-value is twice the smaller tail.
    for k in range(21):
        smaller = min(binomial_cdf(k, 20, 0.5), binomial_sf(k, 20, 0.5))
        assert binomial_p_value(k, 20, 0.5) == pytest.approx(min(1.0, 2 * smaller), rel=1e-6)
    # Millions of requests are summed in a few thousand terms, and still add up.
    n = 5_000_000
    assert binomial_cdf(50_000, n, 0.01) + binomial_sf(50_001, n, 0.01) == pytest.approx(1.0)
    assert binomial_sf(52_000, n, 0.01) < 1e-15 < binomial_cdf(52_000, n, 0.01)


def test_the_two_sided_test_takes_any_number_of_requests() -> None:
    """Past about 1030 requests math.comb(n, n/2) no longer fits a float; logs do."""
    n = 5000
    for k in (2400, 2500, 2600):
        smaller = min(binomial_cdf(k, n, 0.5), binomial_sf(k, n, 0.5))
        assert binomial_p_value(k, n, 0.5) == pytest.approx(min(1.0, 2 * smaller), rel=1e-6)


@pytest.mark.parametrize(
    ("k", "p", "expected"), [(0, 0.0, 1.0), (1, 0.0, 0.0), (3, 1.0, 1.0), (2, 1.0, 0.0)]
)
def test_a_certain_outcome_is_all_or_nothing(k: int, p: float, expected: float) -> None:
    assert binomial_p_value(k, 3, p) == expected
