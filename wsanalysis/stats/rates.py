"""Event rates per unit of exposure (errors per connection, reconnects per hour), canary
against control, with overdispersion and autocorrelation taken into account.

Input is time-bucketed: `events[t]` and `exposure[t]` per variant for the same buckets t
(e.g. 1-minute increases of `ws_closes_total{code="1011"}` and of `ws_connections_total`).

Method (chosen for being exact when counts are Poisson and honest when they are not):

* Conditioned on the total N = Y + M of canary (Y) and control (M) events, Y is binomial
  with share p = θE / (θE + F), θ the rate ratio, E and F the exposures. Intervals are
  Clopper–Pearson on p mapped to θ, p-values the matching exact tails; with Poisson data
  this is scipy's `binomtest`, exactly.
* Real counts are overdispersed (one broken client throws many errors) and
  autocorrelated (a bad minute is followed by another). The variance of log θ̂ is then
  measured from the data: each bucket's contribution to log θ̂ is summed over batches
  of B / K contiguous buckets, K ≈ B^0.4 (overlapping batch means: every such window,
  not only K disjoint ones), which absorbs autocorrelation shorter than a batch; the
  ratio of that variance to the Poisson one is the dispersion φ. The interval and
  p-value are Wald on the log scale with Student t on K - 1 degrees of freedom, because
  a variance estimated from a few batch lengths is itself uncertain (on 60 one-minute
  buckets of overdispersed, autocorrelated counts, an A/A run fails 13% of the time at
  nominal 5% with a normal HAC interval, 6-7% with batch means). φ is never taken below
  1, and an estimate at or below 1 keeps the t interval: switching to the exact Poisson
  interval there would pick exactly the runs whose variance was underestimated (they
  false-passed 11.5% against 1.8%). The exact interval is `method="poisson"`, asked for.
  Overlapping batches would claim 1.5 (K - 1) degrees of freedom, which holds for white
  noise only; on the judge's autocorrelated counts the effective figure is nearer K - 1
  (tests/stats/test_rates.py measures it).
* Pooled across variants: a canary with few events cannot show its own clustering
  (6 error frames from two broken connections look Poisson in 60 buckets), while control,
  with many times the events of the same process, can. The canary's share of the
  variance is therefore shrunk toward control's own dispersion with the weight of
  `PRIOR_EVENTS` events (its own estimate dominates once it has many events): control's
  dispersion is an upper bound for a smaller variant's under any mix of clustering and
  multiplicative noise, so the prior only errs on the safe side.
* Canary and control run in the same buckets, so load swings and incidents that hit both
  cancel in the bucket contributions instead of inflating φ.

A moving-block bootstrap was the alternative; it needs thousands of resamples per gate
and a block-length choice and gives the same answer on long series; HAC (Newey–West)
variances were tried and over-reject on short windows for the same reason as above.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from wsanalysis.stats.results import Comparison, ConfidenceInterval, Worse

MIN_EVENTS = 10
# the weight, in canary events, of control's dispersion as a prior for the canary's own
PRIOR_EVENTS = 5.0

ArrayLike = Sequence[float] | np.ndarray | float


def _as_buckets(values: ArrayLike) -> np.ndarray:
    a = np.atleast_1d(np.asarray(values, dtype=float))
    if a.ndim != 1:
        raise ValueError("events and exposure must be one value per time bucket")
    if np.any(np.isnan(a)) or np.any(a < 0):
        raise ValueError("events and exposure must be non-negative numbers")
    return a


def batch_variance(contributions: np.ndarray, batches: int | None = None) -> tuple[float, float]:
    """Variance of the sum of mean-zero bucket contributions by overlapping batch means,
    and its degrees of freedom.

    The batch length is n / K buckets, K = B^0.4 rounded within [3, 30] unless given
    (5 batches' length for an hour of 1-minute buckets, 13 for 48 h of 5-minute ones):
    longer batches absorb more autocorrelation. Every window of that length is used,
    not only K disjoint ones (Meketon & Schmeiser's overlapping batch means): the same
    bias, a third less variance. The degrees of freedom returned are K - 1, what
    disjoint batches carry: the overlapping gain (1.5 (K - 1)) is exact for white noise
    only, and on autocorrelated, overdispersed counts the effective figure falls to
    about K - 1 (tests/stats/test_rates.py measures it on the judge's synthetic counts;
    benchmarks/RESULTS-calibration.md the false-pass rate it gives).
    """
    g = np.asarray(contributions, dtype=float)
    n = len(g)
    k = batches if batches is not None else int(np.clip(round(n**0.4), 3, 30))
    k = max(1, min(k, n))
    m = max(1, round(n / k))
    if k < 2 or m >= n:
        return float(np.sum(g**2)), 0.0  # one batch: no variance estimate (0 df)
    cumulative = np.concatenate([[0.0], np.cumsum(g)])
    means = (cumulative[m:] - cumulative[:-m]) / m  # n - m + 1 overlapping batch means
    spread = float(np.sum((means - g.mean()) ** 2))
    variance_of_mean = m * spread / ((n - m + 1) * (n - m))
    return n * n * variance_of_mean, float(n / m - 1)


def _dispersion(g: np.ndarray, poisson_var: float, batches: int | None) -> tuple[float, float]:
    """(φ, degrees of freedom): φ floored at 1; df infinite only when no variance can be
    measured (fewer than 3 buckets, or one batch), which the caller must say."""
    if len(g) < 3 or poisson_var <= 0:
        return 1.0, math.inf
    var, df = batch_variance(g, batches)
    if df < 1:
        return 1.0, math.inf
    return max(1.0, var / poisson_var), df


def _own_dispersion(x_t: np.ndarray, rate: float, exposure_t: np.ndarray, k: int | None) -> float:
    """One variant's dispersion from its own buckets (events over expected), at least 1."""
    total = float(x_t.sum())
    if total <= 0 or len(x_t) < 3:
        return 1.0
    var, df = batch_variance((x_t - rate * exposure_t) / total, k)
    return max(1.0, var * total) if df >= 1 else 1.0


def pooled_dispersion(
    y_t: np.ndarray, e_t: np.ndarray, m_t: np.ndarray, f_t: np.ndarray, batches: int | None
) -> tuple[float, float]:
    """(φ, df) of the log rate ratio: the contrast's own batch-means dispersion, plus the
    canary's share shrunk toward control's dispersion (`PRIOR_EVENTS`)."""
    y, m = float(y_t.sum()), float(m_t.sum())
    rate_c, rate_k = y / float(e_t.sum()), m / float(f_t.sum())
    g = (y_t - rate_c * e_t) / y - (m_t - rate_k * f_t) / m
    poisson_var = 1.0 / y + 1.0 / m
    phi, df = _dispersion(g, poisson_var, batches)
    if math.isinf(df):
        return phi, df
    own_c = _own_dispersion(y_t, rate_c, e_t, batches)
    own_k = _own_dispersion(m_t, rate_k, f_t, batches)
    prior = PRIOR_EVENTS / (y + PRIOR_EVENTS) * max(0.0, own_k - own_c) / y
    return phi + prior / poisson_var, df


# Exact binomial tails on possibly fractional (effective) counts via the incomplete beta.
def _prob_at_least(y: float, n: float, p: float) -> float:
    if y <= 0:
        return 1.0
    if y > n:
        return 0.0
    return float(special.betainc(y, n - y + 1.0, p))


def _prob_at_most(y: float, n: float, p: float) -> float:
    if y >= n:
        return 1.0
    return float(special.betainc(n - y, y + 1.0, 1.0 - p))


def garwood_interval(events: float, exposure: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) two-sided interval for a Poisson rate: events per unit exposure.

    Each side holds with probability at least (1 + level) / 2; zero events give a lower
    limit of 0 and an upper limit of -log((1 - level) / 2) / exposure.
    """
    if exposure <= 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    low = float(stats.gamma.ppf(a, events)) / exposure if events > 0 else 0.0
    high = float(stats.gamma.ppf(1.0 - a, events + 1.0)) / exposure
    return low, high


def _clopper_pearson(y: float, n: float, level: float) -> tuple[float, float]:
    a = (1.0 - level) / 2.0
    low = 0.0 if y <= 0 else float(stats.beta.ppf(a, y, n - y + 1.0))
    high = 1.0 if y >= n else float(stats.beta.ppf(1.0 - a, y + 1.0, n - y))
    return low, high


@dataclass(frozen=True, kw_only=True)
class RateComparison(Comparison):
    """A `Comparison` of rates plus what it was computed from.

    `dispersion` is φ (1 = Poisson, exact binomial inference; above 1, Wald on the log
    scale with `df` degrees of freedom); `buckets` is the number of time buckets used.
    """

    events_canary: float
    events_control: float
    exposure_canary: float
    exposure_control: float
    dispersion: float
    buckets: int

    def noninferiority(self, bound: float, worse: Worse = "increase") -> float:
        """One-sided p-value of "canary is at least as bad as `bound`".

        For a ratio, `bound` is e.g. 1.1 (canary rate up to 10% above control is
        acceptable; exact binomial when φ = 1); for a difference, an absolute rate
        (events per unit exposure). Small p-value: the canary is better than the bound.
        """
        if self.effect != "ratio" or not math.isinf(self.df):
            return super().noninferiority(bound, worse)
        y, n = self.events_canary, self.events_canary + self.events_control
        if n <= 0:
            return math.nan
        e, f = self.exposure_canary, self.exposure_control
        p0 = bound * e / (bound * e + f)
        return _prob_at_most(y, n, p0) if worse == "increase" else _prob_at_least(y, n, p0)


def _buckets4(events_canary, exposure_canary, events_control, exposure_control):
    y_t, e_t = _as_buckets(events_canary), _as_buckets(exposure_canary)
    m_t, f_t = _as_buckets(events_control), _as_buckets(exposure_control)
    if not (len(y_t) == len(e_t) == len(m_t) == len(f_t)):
        raise ValueError("canary and control need the same time buckets")
    if e_t.sum() <= 0 or f_t.sum() <= 0:
        raise ValueError("exposure must be positive for both variants")
    return y_t, e_t, m_t, f_t


def _method(method: str) -> str:
    if method not in ("robust", "poisson"):
        raise ValueError(f"unknown method {method!r}; use 'robust' or 'poisson'")
    return method


def _t(df: float, p: float) -> float:
    return float(stats.norm.ppf(p) if math.isinf(df) else stats.t.ppf(p, df))


def _rate_comparison(
    effect: str,
    statistic: float,
    pvalue: float,
    method: str,
    se: float,
    df: float,
    interval: Callable[[float], tuple[float, float]],
    level: float,
    min_events: int,
    totals: tuple[float, float, float, float],
    phi: float,
    buckets: int,
) -> RateComparison:
    """The result both rate comparisons return; `totals` is (y, e, m, f)."""
    y, e, m, f = totals
    n = y + m
    low, high = interval(level)
    return RateComparison(
        effect=effect,
        statistic=statistic,
        pvalue=pvalue,
        canary=y / e,
        control=m / f,
        standard_error=se,
        ci=ConfidenceInterval(low, high, level),
        n_canary=int(round(y)),
        n_control=int(round(m)),
        sufficient=n >= min_events,
        method=method,
        df=df,
        reason=""
        if n >= min_events
        else f"only {n:g} events in both variants (minimum {min_events})",
        _interval=interval,
        events_canary=y,
        events_control=m,
        exposure_canary=e,
        exposure_control=f,
        dispersion=phi,
        buckets=buckets,
    )


def compare_rates(
    events_canary: ArrayLike,
    exposure_canary: ArrayLike,
    events_control: ArrayLike,
    exposure_control: ArrayLike,
    *,
    level: float = 0.95,
    method: str = "robust",
    batches: int | None = None,
    min_events: int = MIN_EVENTS,
) -> RateComparison:
    """Rate ratio canary / control with its interval and a two-sided p-value.

    `method="poisson"` assumes plain Poisson counts (φ = 1, exact conditional binomial);
    `"robust"` (default) estimates φ from the buckets, pooled across variants, as the
    module docstring describes, and never switches to the Poisson interval by itself:
    only a window too short to measure a variance (fewer than 3 buckets) or a variant
    with no event is judged exactly, and `method` says so. `sufficient` is False below
    `min_events` events in total (both variants together).
    """
    y_t, e_t, m_t, f_t = _buckets4(events_canary, exposure_canary, events_control, exposure_control)
    y, e, m, f = float(y_t.sum()), float(e_t.sum()), float(m_t.sum()), float(f_t.sum())
    rate_c, rate_k = y / e, m / f
    phi, df = 1.0, math.inf
    robust = _method(method) == "robust" and y > 0 and m > 0
    if robust:
        phi, df = pooled_dispersion(y_t, e_t, m_t, f_t, batches)
    wald = robust and not math.isinf(df)
    n = y + m
    ratio = rate_c / rate_k if rate_k > 0 else (math.inf if rate_c > 0 else math.nan)
    se = math.sqrt(phi * (1.0 / y + 1.0 / m)) if y > 0 and m > 0 else math.inf

    def ratio_of_share(p: float) -> float:
        return math.inf if p >= 1.0 else p / (1.0 - p) * f / e

    def interval(lv: float) -> tuple[float, float]:
        if wald:
            half = _t(df, 1 - (1 - lv) / 2) * se
            return ratio * math.exp(-half), ratio * math.exp(half)
        if n <= 0:
            return 0.0, math.inf
        lo, hi = _clopper_pearson(y, n, lv)
        return ratio_of_share(lo), ratio_of_share(hi)

    if wald:
        tstat = math.log(ratio) / se
        pvalue = float(2 * (stats.t.sf(abs(tstat), df)))
    elif n > 0:
        p0 = e / (e + f)
        pvalue = min(1.0, 2.0 * min(_prob_at_least(y, n, p0), _prob_at_most(y, n, p0)))
    else:
        pvalue = 1.0
    if wald:
        model = f"quasi-Poisson φ={phi:.2f} pooled across variants (batch means, t{df:.0f})"
    elif method == "poisson":
        model = "Poisson"
    else:
        model = "Poisson (exact: too few buckets or events to measure dispersion)"
    return _rate_comparison(
        "ratio", ratio, pvalue, f"rate ratio, conditional binomial, {model}", se, df, interval,
        level, min_events, (y, e, m, f), phi, len(y_t),
    )  # fmt: skip


def rate_difference(
    events_canary: ArrayLike,
    exposure_canary: ArrayLike,
    events_control: ArrayLike,
    exposure_control: ArrayLike,
    *,
    level: float = 0.95,
    method: str = "robust",
    batches: int | None = None,
    min_events: int = MIN_EVENTS,
) -> RateComparison:
    """Rate difference canary - control (events per unit exposure), Wald interval with
    the same dispersion treatment as `compare_rates`, for absolute margins."""
    y_t, e_t, m_t, f_t = _buckets4(events_canary, exposure_canary, events_control, exposure_control)
    y, e, m, f = float(y_t.sum()), float(e_t.sum()), float(m_t.sum()), float(f_t.sum())
    rate_c, rate_k = y / e, m / f
    # Poisson variance, with half an event added so zero counts still give a width
    poisson_var = max(y, 0.5) / e**2 + max(m, 0.5) / f**2
    phi, df = 1.0, math.inf
    if _method(method) == "robust":
        h = (y_t - rate_c * e_t) / e - (m_t - rate_k * f_t) / f
        phi, df = _dispersion(h, poisson_var, batches)
    se = math.sqrt(phi * poisson_var)
    diff = rate_c - rate_k

    def interval(lv: float) -> tuple[float, float]:
        half = _t(df, 1 - (1 - lv) / 2) * se
        return diff - half, diff + half

    pvalue = float(
        2 * (stats.norm.sf(abs(diff) / se) if math.isinf(df) else stats.t.sf(abs(diff) / se, df))
    )
    model = "Poisson" if math.isinf(df) else f"quasi-Poisson φ={phi:.2f} (batch means, t{df:.0f})"
    return _rate_comparison(
        "difference", diff, pvalue, f"rate difference, {model}", se, df, interval, level,
        min_events, (y, e, m, f), phi, len(y_t),
    )  # fmt: skip


@dataclass(frozen=True)
class RateBound:
    """One variant's rate against an absolute bound (e.g. reconnects ≤ 5% of connections)."""

    rate: float
    ci: ConfidenceInterval
    pvalue_above: float  # one-sided p-value of "rate >= bound": small → rate is below it
    events: float
    exposure: float
    dispersion: float
    sufficient: bool
    df: float = math.inf  # of the t interval; infinite: the exact Poisson one

    def confidence_interval(self) -> ConfidenceInterval:
        return self.ci


def rate_against_bound(
    events: ArrayLike,
    exposure: ArrayLike,
    bound: float,
    *,
    level: float = 0.95,
    method: str = "robust",
    batches: int | None = None,
    min_events: int = MIN_EVENTS,
) -> RateBound:
    """One variant's rate with a log-scale t interval on its batch-means dispersion
    (at least 1), and a one-sided test of "rate >= bound"; the exact Poisson (Garwood)
    interval when asked (`method="poisson"`), or when there is no event or fewer than
    3 buckets to measure a variance from (`df` is then infinite: callers say so)."""
    y_t, e_t = _as_buckets(events), _as_buckets(exposure)
    if len(y_t) != len(e_t):
        raise ValueError("events and exposure need the same time buckets")
    y, e = float(y_t.sum()), float(e_t.sum())
    if e <= 0:
        raise ValueError("exposure must be positive")
    rate = y / e
    phi, df = 1.0, math.inf
    if _method(method) == "robust" and y > 0:
        phi, df = _dispersion((y_t - rate * e_t) / y, 1.0 / y, batches)
    a = (1 - level) / 2
    if not math.isinf(df):
        se = math.sqrt(phi / y)
        half = _t(df, 1 - a) * se
        low, high = rate * math.exp(-half), rate * math.exp(half)
        p_above = float(stats.t.cdf(math.log(rate / bound) / se, df)) if bound > 0 else 1.0
    else:
        low, high = garwood_interval(y, e, level)
        # P(Y <= y | rate = bound), Y ~ Poisson(bound * E)
        p_above = float(special.gammaincc(y + 1.0, bound * e)) if bound > 0 else 1.0
    return RateBound(
        rate, ConfidenceInterval(low, high, level), p_above, y, e, phi, y >= min_events, df
    )


@dataclass(frozen=True)
class SpikeResult:
    """Per-bucket test of a canary excess over control, Holm-corrected over buckets.

    `pvalue` is the smallest Holm-adjusted p-value (the family-wise evidence that some
    bucket spiked); `spikes` the indices of buckets significant at `alpha`; `ratios` the
    per-bucket rate ratios; `dispersion` the robust φ used inside buckets.
    """

    pvalue: float
    pvalues: np.ndarray
    adjusted: np.ndarray
    ratios: np.ndarray
    spikes: np.ndarray
    worst: int | None
    dispersion: float
    alpha: float
    buckets_tested: int

    @property
    def spiked(self) -> bool:
        return len(self.spikes) > 0


CHI2_1_MEDIAN = float(stats.chi2.median(1))  # 0.455


def robust_dispersion(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> float:
    """φ from the median squared Pearson residual over the buckets, divided by the median
    of χ²₁, at least 1 (1 with fewer than 5 buckets to take a median of): a few spiking
    buckets move a median little, so a burst cannot hide itself by inflating φ."""
    keep = variance > 0
    if keep.sum() < 5:
        return 1.0
    resid = (observed[keep] - expected[keep]) ** 2 / variance[keep]
    return max(1.0, float(np.median(resid)) / CHI2_1_MEDIAN)


def robust_rate(events: np.ndarray, exposure: np.ndarray) -> float:
    """The exposure-weighted median of the buckets' rates: the rate most buckets run at,
    which a burst in a few of them barely moves (the window-wide mean follows the burst,
    and every quiet bucket then looks like a deviation from it)."""
    keep = exposure > 0
    if not keep.any():
        return math.nan
    rates, weights = events[keep] / exposure[keep], exposure[keep]
    order = np.argsort(rates, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(rates[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def spike_dispersion(
    events_canary: np.ndarray,
    exposure_canary: np.ndarray,
    events_control: np.ndarray,
    exposure_control: np.ndarray,
) -> float:
    """The robust φ of the canary's share of each bucket's events, around the share a
    robust ratio predicts: the median of the buckets' ratios (half an event added), not
    the window-wide one, which a burst pulls up, nor the bound's (a canary better than
    the bound is not noise)."""
    y_t, e_t, m_t, f_t = (np.asarray(a, dtype=float) for a in (
        events_canary, exposure_canary, events_control, exposure_control))  # fmt: skip
    n_t = y_t + m_t
    testable = (n_t > 0) & (e_t > 0) & (f_t > 0)
    if float(y_t[testable].sum()) <= 0 or float(m_t[testable].sum()) <= 0:
        return 1.0
    e, f = e_t[testable], f_t[testable]
    ratio = float(np.median((y_t[testable] + 0.5) / e / ((m_t[testable] + 0.5) / f)))
    p = ratio * e / (ratio * e + f)
    n = n_t[testable]
    return robust_dispersion(y_t[testable], n * p, n * p * (1 - p))


def spike_test(
    events_canary: ArrayLike,
    exposure_canary: ArrayLike,
    events_control: ArrayLike,
    exposure_control: ArrayLike,
    *,
    bound: float = 1.0,
    alpha: float = 0.05,
    dispersion: float | None = None,
) -> SpikeResult:
    """Is there any time bucket where the canary's rate exceeds `bound` × control's?

    Each bucket is an exact one-sided conditional binomial test (canary share of the
    bucket's events against the share its exposure predicts), on effective counts
    divided by φ; p-values are Holm-adjusted over the buckets that had events, so a
    one-hour burst is not averaged away by quiet hours and forty quiet buckets do not
    give forty chances of a false alarm. φ defaults to a spike-robust estimate
    (`spike_dispersion`: the median squared Pearson residual over the buckets divided by
    the median of χ²₁, floored at 1), so a few spiking buckets do not hide themselves by
    inflating it.
    """
    from wsanalysis.stats.multiplicity import holm

    y_t, e_t, m_t, f_t = _buckets4(events_canary, exposure_canary, events_control, exposure_control)
    n_t = y_t + m_t
    with np.errstate(divide="ignore", invalid="ignore"):
        share = bound * e_t / (bound * e_t + f_t)
    testable = (n_t > 0) & (e_t > 0) & (f_t > 0)
    if dispersion is None:
        dispersion = spike_dispersion(y_t, e_t, m_t, f_t)
    pvalues = np.full(len(y_t), np.nan)
    y, n, p = y_t[testable] / dispersion, n_t[testable] / dispersion, share[testable]
    with np.errstate(invalid="ignore"):  # P(Y >= y), Y ~ Binomial(n, p), fractional counts
        tail = special.betainc(np.maximum(y, 1e-300), n - y + 1.0, p)
    pvalues[testable] = np.where(y <= 0, 1.0, np.where(y > n, 0.0, tail))
    adjusted = holm(pvalues)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (y_t / e_t) / (m_t / f_t)
    spikes = np.nonzero(np.where(np.isnan(adjusted), False, adjusted <= alpha))[0]
    finite = ~np.isnan(adjusted)
    worst = int(np.nanargmin(adjusted)) if finite.any() else None
    return SpikeResult(
        pvalue=float(np.nanmin(adjusted)) if finite.any() else math.nan,
        pvalues=pvalues,
        adjusted=adjusted,
        ratios=ratios,
        spikes=spikes,
        worst=worst,
        dispersion=dispersion,
        alpha=alpha,
        buckets_tested=int(finite.sum()),
    )


def rate_excess_pvalue(
    events_canary: float,
    exposure_canary: float,
    events_control: float,
    exposure_control: float,
    excess: float,
) -> float:
    """One-sided p-value of "the canary's rate is at least control's plus `excess`"
    (events per unit exposure): small shows the canary's excess is below it.

    Exact and conservative: the claim holds at level a when the canary's upper Garwood
    limit at a / 2 minus control's lower limit at a / 2 is below `excess` (each
    variant's one-sided error a / 2). Valid with no event at all: then the canary's
    exposure alone bounds its rate. The p-value is the smallest such a (bisection).
    """
    if exposure_canary <= 0 or exposure_control <= 0:
        return math.nan

    def shown(a: float) -> bool:
        high = float(stats.gamma.ppf(1 - a / 2, events_canary + 1)) / exposure_canary
        low = (
            float(stats.gamma.ppf(a / 2, events_control)) / exposure_control
            if events_control > 0
            else 0.0
        )
        return high - low < excess

    if not shown(1.0 - 1e-12):
        return 1.0
    low, high = -15.0, 0.0  # log10 of a
    if shown(10.0**low):
        return 10.0**low
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (low, mid) if shown(10.0**mid) else (mid, high)
    return 10.0**high
