"""Sample-ratio mismatch: is the canary's share of sessions what the split declared?

A canary that receives 8% of sessions under a declared 10% split is being fed a
different population (sticky routing, crashes before the first beacon, a broken
client that never reports), and every comparison downstream is suspect. Convention
(Fabijan et al., "Diagnosing Sample Ratio Mismatch", KDD 2019) is a chi-square
goodness-of-fit test at a strict alpha of 0.001: with many checks run daily, a looser
alpha would cry wolf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

SRM_ALPHA = 0.001


@dataclass(frozen=True)
class SRMResult:
    """Chi-square goodness of fit of the observed split against the declared one."""

    statistic: float
    pvalue: float
    observed_share: float
    expected_share: float
    n_canary: int
    n_control: int
    alpha: float

    @property
    def mismatch(self) -> bool:
        return self.pvalue < self.alpha

    def explanation(self) -> str:
        verdict = "mismatch" if self.mismatch else "no mismatch"
        return (
            f"canary received {self.observed_share:.2%} of {self.n_canary + self.n_control} units "
            f"against a declared {self.expected_share:.2%} (chi-square p = {self.pvalue:.2g}): {verdict}"
        )


def _no_units(
    n_canary: int, n_control: int, expected_share: float, alpha: float
) -> SRMResult | None:
    """Both tests' argument checks, and their answer when no unit was counted."""
    if not 0 < expected_share < 1:
        raise ValueError("expected_share must be strictly between 0 and 1")
    if n_canary < 0 or n_control < 0:
        raise ValueError("counts must be non-negative")
    if n_canary + n_control == 0:
        return SRMResult(math.nan, math.nan, math.nan, expected_share, 0, 0, alpha)
    return None


def sample_ratio_mismatch(
    n_canary: int, n_control: int, expected_share: float, *, alpha: float = SRM_ALPHA
) -> SRMResult:
    """Test the canary's share of units (sessions, connections) against `expected_share`."""
    empty = _no_units(n_canary, n_control, expected_share, alpha)
    if empty is not None:
        return empty
    total = n_canary + n_control
    expected = [total * expected_share, total * (1 - expected_share)]
    res = stats.chisquare([n_canary, n_control], expected)
    return SRMResult(
        float(res.statistic),
        float(res.pvalue),
        n_canary / total,
        expected_share,
        n_canary,
        n_control,
        alpha,
    )


# a Beta(k·share, k·(1 - share)) prior on the canary's share: sd about 0.3 / √k around the
# declared split, so the test is most sensitive to mismatches of about a point of share
SEQUENTIAL_CONCENTRATION = 1000.0


def log_bayes_factor(n_canary, n_control, expected_share: float, concentration: float):
    """log of the beta-binomial Bayes factor against the declared share (arrays welcome)."""
    a, b = concentration * expected_share, concentration * (1 - expected_share)
    n_canary, n_control = np.asarray(n_canary, dtype=float), np.asarray(n_control, dtype=float)
    return (
        special.betaln(a + n_canary, b + n_control)
        - special.betaln(a, b)
        - n_canary * math.log(expected_share)
        - n_control * math.log1p(-expected_share)
    )


def sequential_sample_ratio_mismatch(
    n_canary: int,
    n_control: int,
    expected_share: float,
    *,
    alpha: float = SRM_ALPHA,
    concentration: float = SEQUENTIAL_CONCENTRATION,
) -> SRMResult:
    """Anytime-valid sample-ratio test on cumulative counts (Lindon & Malek 2022,
    "Anytime-valid inference for multinomial count data"): the Dirichlet-multinomial
    (here beta-binomial) Bayes factor of "the share is anything" against "the share is
    the declared one" is a nonnegative martingale under the declared split, so by Ville's
    inequality it ever reaches 1 / alpha with probability at most alpha, however often it
    is read. `statistic` is the Bayes factor, `pvalue` min(1, 1 / BF).
    A chi-square re-run at every 5-minute look of a 48 h canary trips on 2.65% of
    healthy canaries at alpha 0.001; this one on fewer than alpha of them
    (tests/stats/test_categorical_srm_multiplicity.py).
    """
    empty = _no_units(n_canary, n_control, expected_share, alpha)
    if empty is not None:
        return empty
    total = n_canary + n_control
    log_bf = float(log_bayes_factor(n_canary, n_control, expected_share, concentration))
    bf = math.exp(min(log_bf, 700.0))
    return SRMResult(
        bf, min(1.0, math.exp(-log_bf)), n_canary / total, expected_share,
        n_canary, n_control, alpha,
    )  # fmt: skip
