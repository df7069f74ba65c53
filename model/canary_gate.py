"""The canary gate's thresholds: what each means and the values each may take.

Pure, so that the stack config (stacks/config.py, which reads the `canary*` keys whose
defaults Pulumi.yaml declares) checks them before any resource and `bookinfo-mesh analyze`
judges by them. Pulumi.yaml declares no decimal type, so the two fractions are strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# A decimal as typed in a stack file: ASCII digits, at most one point ("0.01", "1.5").
_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
MAX_MIN_REQUESTS = 10_000_000
MAX_LATENCY_RATIO = 100.0
MAX_P99_MS = 3_600_000  # an hour: Istio's largest finite histogram bucket


@dataclass(frozen=True)
class GateThresholds:
    """When a canary passes: enough requests, few enough errors, fast enough.

    `max_error_rate_increase` is in percentage points as a share (0.01: the canary may fail
    one request in a hundred more than the baseline); the p99 bar is the baseline's p99 times
    `max_latency_ratio`, and never above `max_p99_ms`.
    """

    min_requests: int
    max_error_rate_increase: float
    max_latency_ratio: float
    max_p99_ms: int


def _decimal(value: Any) -> float:
    text = str(value)
    if isinstance(value, bool) or not _DECIMAL.fullmatch(text):
        raise ValueError('must be a decimal number of ASCII digits like "0.01"')
    return float(text)


def check_min_requests(number: int) -> int:
    if not 1 <= number <= MAX_MIN_REQUESTS:
        raise ValueError(f"must be 1 to {MAX_MIN_REQUESTS} requests per version")
    return number


def check_max_error_rate_increase(value: Any) -> float:
    share = _decimal(value)
    if not 0 < share < 1:
        raise ValueError('must be a share above 0 and below 1 ("0.01" is one percentage point)')
    return share


def check_max_latency_ratio(value: Any) -> float:
    ratio = _decimal(value)
    if not 1 <= ratio <= MAX_LATENCY_RATIO:
        raise ValueError(
            f"must be 1 to {MAX_LATENCY_RATIO:g} (the canary's p99 over the baseline's)"
        )
    return ratio


def check_max_p99_ms(number: int) -> int:
    if not 1 <= number <= MAX_P99_MS:
        raise ValueError(f"must be 1 to {MAX_P99_MS} milliseconds")
    return number
