"""Exact binomial tests, shared by verify (are the splits as predicted?) and the canary gate
(is the canary worse than its bar?). Each term is a pmf in log space, so any n is summed
without overflow; the one-sided tails stop once their terms no longer count.
"""

from __future__ import annotations

import math

CONFIDENCE = 0.99
# Counts exactly as likely as k (the mirror image under p = 0.5) are kept despite rounding.
_TIE_SLACK = 1e-7


def _log_pmf(i: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )


def _shrinking_sum(start: int, stop: int, step: int, n: int, p: float) -> float:
    """The pmf summed from `start` toward `stop` (exclusive), away from the mode, where every
    term is smaller than the one before: it stops once the terms no longer count."""
    total = 0.0
    for i in range(start, stop, step):
        term = math.exp(_log_pmf(i, n, p))
        total += term
        if term <= total * 1e-17:
            break
    return total


def _mode(n: int, p: float) -> int:
    return min(n, math.floor((n + 1) * p))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), exact to double precision, for any n."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    if k < _mode(n, p):
        return min(1.0, _shrinking_sum(k, -1, -1, n, p))
    return max(0.0, 1.0 - _shrinking_sum(k + 1, n + 1, 1, n, p))


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    if k > _mode(n, p):
        return min(1.0, _shrinking_sum(k, n + 1, 1, n, p))
    return max(0.0, 1.0 - _shrinking_sum(k - 1, -1, -1, n, p))


def binomial_p_value(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial test: P(a count no more likely than k | n, p), the definition
    scipy.stats.binomtest uses."""
    if n == 0:
        return 1.0
    if p <= 0 or p >= 1:
        return 1.0 if k == (n if p >= 1 else 0) else 0.0
    logs = [_log_pmf(i, n, p) for i in range(n + 1)]
    threshold = logs[k] + math.log1p(_TIE_SLACK)
    return min(1.0, sum(math.exp(x) for x in logs if x <= threshold))
