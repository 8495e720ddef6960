"""Anytime-valid monitoring of a rate ratio: look every 5 minutes for 48 hours and stop at
the first clear failure without inflating false alarms.

Conditioned on the events that occurred, each event belongs to the canary with
probability p(θ) = θE / (θE + F) (θ the rate ratio, E and F the exposures accrued since
the last look). For any alternative θ' > θ0 the likelihood ratio of θ' against θ0 is a
nonnegative supermartingale whenever the truth is θ <= θ0 (monotone likelihood ratio),
and so is any fixed mixture of them. Ville's inequality then bounds the chance that the
mixture *ever* reaches 1/alpha by alpha, however often one looks (a mixture sequential
probability ratio test; Robbins 1970, Howard et al. 2021). The mixture is over a grid of
θ' with half-normal weight on log(θ'/θ0), which spends power where canary regressions
are (×1.2 … ×5) and is cheap to evaluate: one matrix of log-likelihood increments.

Overdispersed counts break the binomial model; `dispersion` (φ from `rates`) tempers
each increment's log-likelihood by 1/φ, the quasi-likelihood adjustment (approximate,
no longer exactly anytime-valid, but close when φ is estimated on past data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp


@dataclass(frozen=True)
class SequentialResult:
    """Running e-values (mixture likelihood ratios) at every look.

    `pvalue` is the anytime-valid p-value min(1, 1 / max e-value); `stopped_at` the index
    of the first look whose e-value reached 1/alpha (None if never).
    """

    e_values: np.ndarray
    alpha: float
    bound: float
    stopped_at: int | None
    events_canary: float
    events_control: float

    @property
    def statistic(self) -> float:
        return float(self.e_values[-1]) if len(self.e_values) else 1.0

    @property
    def pvalue(self) -> float:
        if len(self.e_values) == 0:
            return 1.0
        return float(min(1.0, 1.0 / np.max(self.e_values)))

    @property
    def rejected(self) -> bool:
        return self.stopped_at is not None


def _grid(bound: float, worse: str, points: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    steps = np.linspace(math.log(1.02), math.log(10.0), points)
    weights = np.exp(-0.5 * (steps / scale) ** 2)
    sign = 1.0 if worse == "increase" else -1.0
    return bound * np.exp(sign * steps), weights / weights.sum()


def _increments(*arrays: Sequence[float] | np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=float) for a in arrays]
    if len({a.shape for a in out}) != 1 or out[0].ndim != 1:
        raise ValueError("pass one increment per look, the same looks for every array")
    if any(np.any(a < 0) for a in out):
        raise ValueError("increments must be non-negative")
    return out


def _log_e_process(
    y: np.ndarray,
    e: np.ndarray,
    m: np.ndarray,
    f: np.ndarray,
    bound: float,
    worse: str,
    dispersion: float,
    grid_points: int,
    prior_scale: float,
) -> np.ndarray:
    """log of the mixture likelihood ratio against ratio = `bound`, after every look."""
    thetas, weights = _grid(bound, worse, grid_points, prior_scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where((e > 0) & (f > 0), e / np.where(f > 0, f, 1.0), 1.0)

        def log_p(theta: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
            t_odds = np.multiply.outer(odds, np.atleast_1d(theta))
            return -np.log1p(1.0 / t_odds), -np.log1p(t_odds)

        lp1, lq1 = log_p(thetas)
        lp0, lq0 = log_p(bound)
    inc = (y[:, None] * (lp1 - lp0) + m[:, None] * (lq1 - lq0)) / dispersion
    usable = ((y + m) > 0) & (e > 0) & (f > 0)
    inc = np.where(usable[:, None], inc, 0.0)
    return logsumexp(np.cumsum(inc, axis=0), axis=1, b=weights)


def sequential_rate_test(
    events_canary: Sequence[float] | np.ndarray,
    exposure_canary: Sequence[float] | np.ndarray,
    events_control: Sequence[float] | np.ndarray,
    exposure_control: Sequence[float] | np.ndarray,
    *,
    bound: float = 1.0,
    worse: str = "increase",
    alpha: float = 0.05,
    dispersion: float = 1.0,
    grid_points: int = 40,
    prior_scale: float = 0.7,
) -> SequentialResult:
    """Mixture SPRT of H0: rate ratio canary/control <= `bound` (for `worse="increase"`).

    Inputs are *increments* per look (events and exposure since the previous look), in
    look order. Rejecting H0 means the canary's rate is shown to exceed `bound` × the
    control's; the guarantee P(ever reject | H0) <= alpha holds for any number of looks.
    Looks whose exposure is zero for a variant carry no information and are skipped.
    """
    y, e, m, f = _increments(events_canary, exposure_canary, events_control, exposure_control)
    if worse not in ("increase", "decrease"):
        raise ValueError("worse must be 'increase' or 'decrease'")
    if dispersion < 1.0:
        raise ValueError("dispersion is at least 1")
    log_e = _log_e_process(y, e, m, f, bound, worse, dispersion, grid_points, prior_scale)
    e_values = np.exp(np.minimum(log_e, 700.0))  # capped: beyond e^700 the answer is the same
    hit = np.nonzero(log_e >= math.log(1.0 / alpha))[0]
    return SequentialResult(
        e_values=e_values,
        alpha=alpha,
        bound=bound,
        stopped_at=int(hit[0]) if len(hit) else None,
        events_canary=float(y.sum()),
        events_control=float(m.sum()),
    )


@dataclass(frozen=True)
class ConfidenceSequence:
    """Anytime-valid interval for the rate ratio after every look: with probability
    at least `level` the true ratio lies inside every one of them simultaneously."""

    lower: np.ndarray
    upper: np.ndarray
    level: float

    def at(self, look: int) -> tuple[float, float]:
        return float(self.lower[look]), float(self.upper[look])


def rate_confidence_sequence(
    events_canary: Sequence[float] | np.ndarray,
    exposure_canary: Sequence[float] | np.ndarray,
    events_control: Sequence[float] | np.ndarray,
    exposure_control: Sequence[float] | np.ndarray,
    *,
    level: float = 0.95,
    dispersion: float = 1.0,
    ratios: np.ndarray | None = None,
    grid_points: int = 30,
    prior_scale: float = 0.7,
) -> ConfidenceSequence:
    """Confidence sequence for the ratio by inverting the mixture test: a candidate
    ratio is excluded from the look it is rejected on (either direction, alpha/2 each)
    onward, so intervals only shrink. `ratios` is the candidate grid (default 0.05 …
    20, 2% steps); bounds are reported at grid resolution.
    """
    y, e, m, f = _increments(events_canary, exposure_canary, events_control, exposure_control)
    grid = ratios if ratios is not None else np.exp(np.arange(math.log(0.05), math.log(20.0), 0.02))
    threshold = math.log(2.0 / (1.0 - level))
    alive = np.ones((len(y), len(grid)), dtype=bool)
    for j, r0 in enumerate(grid):
        for worse in ("increase", "decrease"):
            log_e = _log_e_process(
                y, e, m, f, float(r0), worse, dispersion, grid_points, prior_scale
            )
            alive[:, j] &= np.maximum.accumulate(log_e) < threshold
    lower = np.where(alive.any(axis=1), grid[np.argmax(alive, axis=1)], np.nan)
    upper = np.where(
        alive.any(axis=1), grid[len(grid) - 1 - np.argmax(alive[:, ::-1], axis=1)], np.nan
    )
    return ConfidenceSequence(lower, upper, level)
