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
    inc = (y[:, None] * (lp1 - lp0) + m[:, None] * (lq1 - lq0)) / _per_look(dispersion, len(y))
    usable = ((y + m) > 0) & (e > 0) & (f > 0)
    inc = np.where(usable[:, None], inc, 0.0)
    return logsumexp(np.cumsum(inc, axis=0), axis=1, b=weights)


def _per_look(dispersion: float | np.ndarray, looks: int) -> np.ndarray:
    """φ for every look as a column: one number, or one per look (each computed from the
    data up to that look only, so later data never change an earlier increment)."""
    phi = np.broadcast_to(np.asarray(dispersion, dtype=float), (looks,))
    if np.any(phi < 1.0):
        raise ValueError("dispersion is at least 1")
    return phi[:, None]


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


# -- pass tests and quantiles: the rest of decision rule v2 in sequential mode -------------


def running_pvalues(result: SequentialResult) -> np.ndarray:
    """Anytime-valid p-value after every look: 1 / the running maximum e-value.

    Non-increasing, so a decision taken on it at some look is never undone.
    """
    if len(result.e_values) == 0:
        return np.ones(0)
    return np.minimum(1.0, 1.0 / np.maximum.accumulate(np.maximum(result.e_values, 1e-300)))


def mixture_boundary(variance: np.ndarray | float, alpha: float, rho: float) -> np.ndarray:
    """Two-sided normal-mixture boundary for a sum with variance `variance` (Robbins):
    P(ever |S| >= boundary) <= alpha for a sub-Gaussian S. `rho` sets where it is
    tightest (about a variance of rho · 2 log(1/alpha))."""
    v = np.asarray(variance, dtype=float) + rho
    return np.sqrt(v * (np.log(v / rho) + 2.0 * np.log(1.0 / np.asarray(alpha, dtype=float))))


def _bins(values: np.ndarray, max_bins: int) -> np.ndarray:
    """Bin edges for the order statistics: every distinct value when few, else a fine
    (log when positive) grid; a value is then bracketed by its bin's two edges."""
    distinct = np.unique(values)
    if len(distinct) <= max_bins:
        return distinct
    low, high = float(distinct[0]), float(distinct[-1])
    if low > 0:
        return np.geomspace(low, high, max_bins)
    return np.linspace(low, high, max_bins)


class QuantileLooks:
    """One variant's samples as cumulative counts per look over fine bins, from which
    anytime-valid bounds of a quantile are read at any level (Howard & Ramdas 2022,
    "Sequential estimation of quantiles with applications to A/B-testing and best-arm
    identification").

    S_n = #{X_i <= Q_q} - n q is a sum of centred Bernoulli(q) terms; a normal-mixture
    boundary f(n) on |S_n| at level alpha turns into order statistics:
    Q_q >= X_(ceil(nq - f)) and Q_q <= X_(floor(nq + f) + 1) at every n at once. The
    variance is n q (1 - q) times `design_effect` (samples clustered by session: the
    asymptotic confidence sequences of Waudby-Smith et al. 2021 with the clustered
    variance in place of the Bernoulli one, an approximation where sessions are few).
    Order statistics come from cumulative counts over fine bins, each rounded outward
    (exact when the values have at most `max_bins` distinct values).
    """

    def __init__(
        self, values: np.ndarray, looks: np.ndarray, n_looks: int, max_bins: int = 4096
    ) -> None:
        v = np.asarray(values, dtype=float)
        look = np.asarray(looks, dtype=np.int64)
        if v.shape != look.shape:
            raise ValueError("one look index per value")
        if len(v) and (look.min() < 0 or look.max() >= n_looks):
            raise ValueError("look indices must lie in 0 ... n_looks - 1")
        self.n_looks = n_looks
        self.edges = _bins(v, max_bins) if len(v) else np.zeros(1)
        self.exact = len(v) > 0 and len(self.edges) == len(np.unique(v))
        width = len(self.edges)
        b = np.clip(np.searchsorted(self.edges, v, side="left"), 0, width - 1)
        counts = np.bincount(look * width + b, minlength=n_looks * width)
        cumulative = np.cumsum(np.cumsum(counts.reshape(n_looks, width), axis=0), axis=1)
        self.n = cumulative[:, -1].astype(float)
        # rows laid end to end with an offset each, so one searchsorted serves every look
        self._offset = float(self.n.max() + 1 if len(self.n) else 1)
        self._flat = (cumulative + self._offset * np.arange(n_looks)[:, None]).ravel()

    def _order_statistic(self, k: np.ndarray, outward: int) -> np.ndarray:
        rows = np.arange(self.n_looks)
        at = np.searchsorted(self._flat, k + self._offset * rows, side="left")
        at = np.clip(at - rows * len(self.edges), 0, len(self.edges) - 1)
        if not self.exact and outward < 0:
            at = np.maximum(at - 1, 0)
        return self.edges[at]

    def bounds(
        self,
        q: float,
        alpha: np.ndarray | float,
        design_effect: np.ndarray | float = 1.0,
        tuned_for: float = 10_000.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of the q-quantile after every look, each side at `alpha`
        (a number, or one per look; `design_effect` likewise), running-intersected so they only tighten when
        `alpha` is one number."""
        variance = design_effect * q * (1 - q)
        f = mixture_boundary(self.n * variance, alpha, max(tuned_for, 1.0) * variance)
        k_low = np.ceil(self.n * q - f)
        k_high = np.floor(self.n * q + f) + 1
        lower = np.where(
            (k_low >= 1) & (self.n > 0), self._order_statistic(np.maximum(k_low, 1), -1), -np.inf
        )
        upper = np.where(
            (k_high <= self.n) & (self.n > 0),
            self._order_statistic(np.minimum(k_high, self.n), 1),
            np.inf,
        )
        if np.ndim(alpha) == 0:
            lower, upper = np.maximum.accumulate(lower), np.minimum.accumulate(upper)
        return lower, upper


def quantile_difference_pvalues(
    canary: QuantileLooks,
    control: QuantileLooks,
    q: float,
    line: float,
    side: str,
    design_effects: tuple[np.ndarray | float, np.ndarray | float] = (1.0, 1.0),
    tuned_for: float = 10_000.0,
) -> np.ndarray:
    """Anytime-valid one-sided p-values, per look, that Q_canary - Q_control lies
    on `side` of `line` ("above" or "below"). Each variant's sequence
    spends half; the p-value is the smallest level at which the difference's bound
    clears the line, then the running minimum (a claim once shown stays shown)."""
    if canary.n_looks != control.n_looks:
        raise ValueError("canary and control need the same looks")
    if side not in ("above", "below"):
        raise ValueError("side must be 'above' or 'below'")
    low, high = np.full(canary.n_looks, -15.0), np.zeros(canary.n_looks)  # log10 alpha
    for _ in range(40):
        mid = (low + high) / 2
        a = 10.0**mid / 2
        c_low, c_high = canary.bounds(q, a, design_effects[0], tuned_for)
        k_low, k_high = control.bounds(q, a, design_effects[1], tuned_for)
        shown = (c_low - k_high > line) if side == "above" else (c_high - k_low < line)
        high = np.where(shown, mid, high)
        low = np.where(shown, low, mid)
    p = np.where(high >= 0, 1.0, 10.0**high)
    return np.minimum.accumulate(p)


def sequential_poisson_test(
    events: Sequence[float] | np.ndarray,
    exposure: Sequence[float] | np.ndarray,
    *,
    bound: float,
    worse: str = "increase",
    alpha: float = 0.05,
    dispersion: float = 1.0,
    grid_points: int = 40,
    prior_scale: float = 0.7,
) -> SequentialResult:
    """Mixture SPRT of one Poisson rate against an absolute `bound`.

    `worse="increase"` tests H0: rate <= bound (rejecting shows it above);
    `"decrease"` tests H0: rate >= bound (rejecting shows it below). Increments per look;
    the likelihood ratio of rate r·bound against bound over a look is
    exp(y log r - (r - 1) bound e), mixed over r as in `sequential_rate_test`, each
    increment tempered by 1 / `dispersion`.
    """
    y, e = _increments(events, exposure)
    if worse not in ("increase", "decrease"):
        raise ValueError("worse must be 'increase' or 'decrease'")
    if bound <= 0:
        raise ValueError("the bound must be positive")
    ratios, weights = _grid(1.0, worse, grid_points, prior_scale)
    inc = np.multiply.outer(y, np.log(ratios)) - np.multiply.outer(bound * e, ratios - 1.0)
    log_e = logsumexp(np.cumsum(inc / _per_look(dispersion, len(y)), axis=0), axis=1, b=weights)
    hit = np.nonzero(log_e >= math.log(1.0 / alpha))[0]
    return SequentialResult(
        e_values=np.exp(np.minimum(log_e, 700.0)),
        alpha=alpha,
        bound=bound,
        stopped_at=int(hit[0]) if len(hit) else None,
        events_canary=float(y.sum()),
        events_control=0.0,
    )


def rate_sequence_bounds(
    events_canary: np.ndarray,
    exposure_canary: np.ndarray,
    events_control: np.ndarray,
    exposure_control: np.ndarray,
    *,
    alpha: float,
    dispersion: float = 1.0,
) -> tuple[float, float]:
    """The rate ratio's anytime-valid bounds after the last look, each side at `alpha`:
    the ratios no mixture test has rejected at any look (found by bisection, as the
    inversion of `sequential_rate_test`)."""
    y, e, m, f = _increments(events_canary, exposure_canary, events_control, exposure_control)
    threshold = math.log(1.0 / alpha)

    def rejected(r0: float, worse: str) -> bool:
        log_e = _log_e_process(y, e, m, f, r0, worse, dispersion, 40, 0.7)
        return bool(len(log_e) and log_e.max() >= threshold)

    def edge(worse: str) -> float:
        # increase: rejected for small r0 (shown above them); find the largest such r0
        low, high = math.log(1e-4), math.log(1e4)
        if worse == "increase" and not rejected(math.exp(low), worse):
            return 0.0
        if worse == "decrease" and not rejected(math.exp(high), worse):
            return math.inf
        for _ in range(40):
            mid = (low + high) / 2
            if rejected(math.exp(mid), worse) == (worse == "increase"):
                low = mid
            else:
                high = mid
        return math.exp(low if worse == "increase" else high)

    return edge("increase"), edge("decrease")
