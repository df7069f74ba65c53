"""Judging one cohort's pages against its prediction: outcomes, latencies, exact tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bookinfo_mesh.exact_tests import CONFIDENCE, binomial_p_value
from bookinfo_mesh.pages import Observation
from model.outcomes import CohortPrediction, PageOutcome, cohort_label

# A page is on time if it arrives within the predicted wait +- (1 s + 10 % of that wait):
# the 1 s covers the internet and productpage's own work, the 10 % the Envoy timers.
LATENCY_TOLERANCE_S = 1.0
LATENCY_TOLERANCE_FRACTION = 0.10


@dataclass(frozen=True)
class Tolerance:
    """Delays in real seconds for a mesh whose clocks run at `time_scale` (1 on a real stack)."""

    time_scale: float = 1.0

    def wait(self, outcome: PageOutcome) -> float:
        return outcome.wait_s * self.time_scale

    def band(self, outcome: PageOutcome) -> float:
        return LATENCY_TOLERANCE_S * self.time_scale + LATENCY_TOLERANCE_FRACTION * self.wait(
            outcome
        )


@dataclass
class OutcomeRow:
    """A predicted outcome and how often it was seen."""

    sees: str
    share: float
    wait_s: float
    tolerance_s: float
    observed: int = 0
    latencies_s: list[float] = field(default_factory=list)
    p_value: float | None = None


@dataclass
class FindingRow:
    """Pages that fit no predicted outcome, grouped by what was wrong with them."""

    sees: str
    observed: int = 0
    latencies_s: list[float] = field(default_factory=list)


@dataclass
class CohortReport:
    cohort: str
    requested: int
    outcomes: list[OutcomeRow]
    findings: list[FindingRow]
    mismatches: list[str]

    @property
    def completed(self) -> int:
        return sum(r.observed for r in self.outcomes) + sum(f.observed for f in self.findings)


def _classify(
    obs: Observation, prediction: CohortPrediction, user: str | None, tol: Tolerance
) -> tuple[int | None, str]:
    """(index of the predicted outcome it fits, or None; what it was)."""
    if obs.reading is None:
        return None, obs.problem or "no page"
    reading = obs.reading
    if reading.user != user:
        shown = "nobody" if reading.user is None else repr(reading.user)
        wanted = "nobody" if user is None else repr(user)
        return None, f"signed in as {shown}, expected {wanted}: {reading.what}"
    fits = [
        i
        for i, o in enumerate(prediction.outcomes)
        if (o.reviews_version, o.ratings_unavailable)
        == (reading.reviews_version, reading.ratings_unavailable)
    ]
    if not fits:
        return None, f"{reading.what} (not predicted)"
    nearest = min(fits, key=lambda i: abs(obs.latency_s - tol.wait(prediction.outcomes[i])))
    outcome = prediction.outcomes[nearest]
    if abs(obs.latency_s - tol.wait(outcome)) <= tol.band(outcome):
        return nearest, reading.what
    side = "later" if obs.latency_s > tol.wait(outcome) else "sooner"
    return None, (
        f"{reading.what}, {side} than predicted "
        f"(~{tol.wait(outcome):.3g} s ± {tol.band(outcome):.2g} s)"
    )


def judge_cohort(
    prediction: CohortPrediction,
    user: str | None,
    observations: Sequence[Observation],
    requested: int,
    tol: Tolerance,
    confidence: float = CONFIDENCE,
) -> CohortReport:
    """Compare one cohort's pages with its prediction.

    Every page must fit a predicted outcome (same reviews version and ratings state, and a
    latency within the tolerance of that outcome's wait). Where several outcomes are
    predicted, each one's count is tested against its share with an exact two-sided
    binomial test at (1 - confidence) / outcomes (Bonferroni), so the whole cohort is judged
    at `confidence`.
    """
    rows = [
        # The share has a column of its own: describe the page as if it were the only one.
        OutcomeRow(replace(o, share=1.0).describe(), o.share, tol.wait(o), tol.band(o))
        for o in prediction.outcomes
    ]
    findings: dict[str, FindingRow] = {}
    for obs in observations:
        index, what = _classify(obs, prediction, user, tol)
        if index is None:
            finding = findings.setdefault(what, FindingRow(what))
            finding.observed += 1
            finding.latencies_s.append(obs.latency_s)
        else:
            rows[index].observed += 1
            rows[index].latencies_s.append(obs.latency_s)
    n = len(observations)
    label = cohort_label(prediction.cohort)
    mismatches = [f"{label}: {f.observed} of {n} pages: {f.sees}" for f in findings.values()]
    if len(rows) > 1 and n:
        alpha = (1 - confidence) / len(rows)
        for row in rows:
            row.p_value = binomial_p_value(row.observed, n, row.share)
            if row.p_value < alpha:
                mismatches.append(
                    f"{label}: {row.observed} of {n} pages '{row.sees}', predicted "
                    f"{row.share:.0%} (exact binomial p = {row.p_value:.2g} < {alpha:.2g})"
                )
    return CohortReport(prediction.cohort, requested, rows, list(findings.values()), mismatches)
