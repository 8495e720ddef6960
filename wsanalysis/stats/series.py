"""Two variants' per-step values of one series (CPU per pod, GC pause, a business
metric), canary against control: the ratio of their means or their mean difference.

Input: the canary's and control's value at the same steps (a PromQL range query at a
fixed step), only steps where both have one. Consecutive steps are autocorrelated (a
`rate()` over a window longer than the step shares samples; load moves slowly), so the
variance of the estimate is measured as the rate gates measure theirs: each step's
contribution to the estimate, summed over overlapping batches of contiguous steps
(`rates.batch_variance`), and intervals on Student t with that estimate's degrees of
freedom. For the ratio the contribution is the delta method's on the log scale,
(x_t - X̄) / (n X̄) - (y_t - Ȳ) / (n Ȳ); for the difference it is (d_t - D̄) / n.
Load swings that hit both variants in the same step cancel in the contributions.

A batch must be long against the steps' memory: series values are far more
autocorrelated than counts (a `rate()` over a few steps, load that drifts), so the batch
length is at least three integrated autocorrelation times, τ = (1 + ρ) / (1 - ρ) from
the contributions' lag-1 correlation ρ, and at least √n steps; 3 to 30 batches. With
B^0.4 batches (the rate gates' default) an A/A series with ρ ≈ 0.8 fails 5% of the time
at a nominal 2.5%; with these, 2.7% (benchmarks/RESULTS-series-gate.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from wsanalysis.stats.rates import batch_variance
from wsanalysis.stats.results import Comparison, ConfidenceInterval, two_sided_pvalue

#: Fewer steps than this (with both variants) cannot estimate a batch variance.
MIN_STEPS = 12


def _pairs(canary: Sequence[float], control: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(canary, dtype=float), np.asarray(control, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("canary and control need one value per step, the same steps")
    both = np.isfinite(x) & np.isfinite(y)
    return x[both], y[both]


def compare_series(
    canary: Sequence[float],
    control: Sequence[float],
    *,
    effect: str = "ratio",
    level: float = 0.95,
    batches: int | None = None,
    min_steps: int = MIN_STEPS,
) -> Comparison:
    """Ratio of the means (`effect="ratio"`) or mean difference (`"difference"`) of two
    variants' per-step values, with a batch-means interval on t (module docstring)."""
    x, y = _pairs(canary, control)
    n = len(x)
    mean_x, mean_y = (float(x.mean()), float(y.mean())) if n else (math.nan, math.nan)
    ratio = effect == "ratio"
    if ratio and not (mean_x > 0 and mean_y > 0):
        reason = "the series is not positive in both variants (a ratio needs it)"
        return _empty(effect, mean_x, mean_y, n, level, reason)
    if n < max(min_steps, 3):
        reason = f"only {n} steps with both variants (minimum {max(min_steps, 3)})"
        return _empty(effect, mean_x, mean_y, n, level, reason)
    if ratio:
        g = (x - mean_x) / (n * mean_x) - (y - mean_y) / (n * mean_y)
        estimate, center = mean_x / mean_y, math.log(mean_x / mean_y)
    else:
        d = x - y
        g = (d - d.mean()) / n
        estimate = center = mean_x - mean_y
    variance, df = batch_variance(g, batches if batches is not None else series_batches(g))
    se = math.sqrt(variance)
    if df < 1 or not se > 0:
        return _empty(effect, mean_x, mean_y, n, level, "no variation to measure (one batch)")

    def interval(lv: float) -> tuple[float, float]:
        half = float(stats.t.ppf(1 - (1 - lv) / 2, df)) * se
        low, high = center - half, center + half
        return (math.exp(low), math.exp(high)) if ratio else (low, high)

    low, high = interval(level)
    return Comparison(
        effect="ratio" if ratio else "difference",
        statistic=estimate,
        pvalue=two_sided_pvalue(center / se, df),
        canary=mean_x,
        control=mean_y,
        standard_error=se,
        ci=ConfidenceInterval(low, high, level),
        n_canary=n,
        n_control=n,
        sufficient=n >= min_steps,
        method=f"per-step {'ratio of means' if ratio else 'mean difference'}, "
        f"overlapping batch means (t{df:.1f}, {n} steps)",
        df=df,
        _interval=interval,
    )


def series_batches(contributions: np.ndarray) -> int:
    """Batches whose length covers three integrated autocorrelation times (and √n steps)."""
    g = contributions - contributions.mean()
    n, energy = len(g), float(np.dot(g, g))
    rho = float(np.clip(np.dot(g[1:], g[:-1]) / energy, 0.0, 0.95)) if energy > 0 else 0.0
    length = max(math.sqrt(n), 3 * (1 + rho) / (1 - rho))
    return int(np.clip(round(n / length), 3, 30))


def _empty(effect: str, x: float, y: float, n: int, level: float, reason: str) -> Comparison:
    return Comparison(
        effect="ratio" if effect == "ratio" else "difference",
        statistic=math.nan,
        pvalue=math.nan,
        canary=x,
        control=y,
        standard_error=math.nan,
        ci=ConfidenceInterval(math.nan, math.nan, level),
        n_canary=n,
        n_control=n,
        sufficient=False,
        method="per-step series",
        reason=reason,
    )
