"""Connection durations with right-censoring: Kaplan–Meier, duration quantiles, log-rank.

A connection still open when the window ends is censored: we know it lasted at least
that long. Averaging only the completed connections throws those away and biases every
duration statistic downward (long connections are exactly the ones still open), so
nothing here does that.

Conventions match lifelines (tests compare on the same data): the survival function is a
right-continuous step function; the `q`-survival time is the first time S(t) <= q;
pointwise intervals are exponential Greenwood (log(-log) transform); a quantile's
interval is read off the band where it crosses the level (Brookmeyer–Crowley style
inversion on the log(-log) scale, as lifelines' `median_survival_times(kmf.confidence_interval_)`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from wsanalysis.stats.results import Comparison, ConfidenceInterval, two_sided_pvalue

MIN_EVENTS = 20


@dataclass(frozen=True)
class DurationQuantile:
    """The duration by which a fraction `p` of connections had ended, with its interval.

    `estimate` is +inf when fewer than `p` of the connections ended within the data.
    """

    p: float
    estimate: float
    ci: ConfidenceInterval

    def confidence_interval(self) -> ConfidenceInterval:
        return self.ci


@dataclass(frozen=True)
class KaplanMeierResult:
    """Kaplan–Meier estimate over the distinct observed times.

    `survival[i]` is S(timeline[i]) (the value from that time on); `at_risk`, `events`,
    `censored` are per distinct time; `greenwood[i]` is the cumulative Greenwood sum
    Σ d / (n (n - d)) up to and including timeline[i].
    """

    timeline: np.ndarray
    survival: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    greenwood: np.ndarray
    n: int
    n_events: int
    level: float = 0.95
    min_events: int = MIN_EVENTS

    @property
    def sufficient(self) -> bool:
        return self.n_events >= self.min_events

    def _index(self, t: np.ndarray | float) -> np.ndarray:
        return np.searchsorted(self.timeline, np.asarray(t, dtype=float), side="right") - 1

    def survival_at(self, t: np.ndarray | float) -> np.ndarray:
        """S(t) for any times (1 before the first observed time)."""
        i = self._index(t)
        return np.where(i >= 0, self.survival[np.maximum(i, 0)], 1.0)

    def confidence_band(self, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise (lower, upper) for S at every timeline point, log(-log) transform."""
        z = stats.norm.ppf(1 - (1 - (level or self.level)) / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log(self.survival)
            spread = z * np.sqrt(self.greenwood) / v
            lower = np.exp(-np.exp(np.log(-v) - spread))
            upper = np.exp(-np.exp(np.log(-v) + spread))
        lower = np.where(np.isnan(lower), 1.0, lower)
        upper = np.where(np.isnan(upper), 1.0, upper)
        return lower, upper

    def _first_at_or_below(self, curve: np.ndarray, q: float) -> float:
        below = np.nonzero(curve <= q)[0]
        return float(self.timeline[below[0]]) if len(below) else math.inf

    def survival_time(self, q: float, level: float | None = None) -> DurationQuantile:
        """First time S(t) <= q (lifelines' `qth_survival_time`), with its interval."""
        lower, upper = self.confidence_band(level)
        est = self._first_at_or_below(self.survival, q)
        ci = ConfidenceInterval(
            self._first_at_or_below(lower, q),
            self._first_at_or_below(upper, q),
            level or self.level,
        )
        return DurationQuantile(1.0 - q, est, ci)

    def duration_quantile(self, p: float, level: float | None = None) -> DurationQuantile:
        """Duration by which a fraction `p` of connections ended (p=0.95 → S(t) <= 0.05)."""
        return self.survival_time(1.0 - p, level)

    def quantile_at_least(self, bound: float, p: float) -> float:
        """One-sided p-value of "the `p` duration quantile is at most `bound`".

        Q_p <= bound exactly when S(bound) <= 1 - p; the test is on the log(-log) scale
        the intervals use. A small p-value shows the quantile lies above the bound (the
        reading of a gate such as "p95 connection duration >= 2 h").
        """
        s0 = 1.0 - p
        i = int(self._index(bound))
        s = 1.0 if i < 0 else float(self.survival[i])
        if s <= 0.0:
            return 1.0
        if s >= 1.0:
            return 0.0 if self.n > 0 else math.nan
        var = float(self.greenwood[i]) / math.log(s) ** 2
        if var <= 0:
            return 0.0 if s > s0 else 1.0
        h = -math.log(-math.log(s))
        h0 = -math.log(-math.log(s0))
        return float(stats.norm.sf((h - h0) / math.sqrt(var)))


def kaplan_meier(
    durations: Sequence[float] | np.ndarray,
    event_observed: Sequence[bool] | np.ndarray | None = None,
    *,
    level: float = 0.95,
    min_events: int = MIN_EVENTS,
    weights: Sequence[int] | np.ndarray | None = None,
    entry: Sequence[float] | np.ndarray | None = None,
) -> KaplanMeierResult:
    """Fit Kaplan–Meier. `event_observed[i]` is False for a connection still open at the
    end of the window (censored at `durations[i]`); None means every one ended.
    `weights[i]` (whole counts) says how many connections row i stands for: what an
    engine returns when it groups durations (`pushdown.rum`); the fit equals the one on
    the rows repeated. `entry[i]` is the age at which connection i came under watch
    (left truncation, lifelines' `entry`): one already open when the window began is
    seen only because it lived that long, so it joins the risk sets from that age on,
    never before (counting it from 0 biases lifetimes up)."""
    t = np.asarray(durations, dtype=float)
    e = (
        np.ones(len(t), dtype=bool)
        if event_observed is None
        else np.asarray(event_observed, dtype=bool)
    )
    w = np.ones(len(t), dtype=np.int64) if weights is None else np.asarray(weights)
    if t.shape != e.shape or t.shape != w.shape:
        raise ValueError("durations, event_observed and weights must have the same length")
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError("durations must be finite and non-negative")
    if w.dtype.kind not in "iu":
        if np.any(w != np.round(w)):
            raise ValueError("weights must be whole counts of connections")
        w = w.astype(np.int64)
    if np.any(w < 0):
        raise ValueError("weights must be non-negative counts")
    times, inverse = np.unique(t, return_inverse=True)
    events = np.bincount(inverse, weights=e * w, minlength=len(times)).astype(np.int64)
    removed = np.bincount(inverse, weights=w, minlength=len(times)).astype(np.int64)
    total = int(w.sum())
    entered = np.full(len(times), total, dtype=np.int64)
    if entry is not None:
        a = np.asarray(entry, dtype=float)
        if a.shape != t.shape or np.any(~np.isfinite(a)) or np.any((a < 0) | (a > t)):
            raise ValueError("entry must be one age per duration, between 0 and it")
        order = np.argsort(a, kind="stable")
        cumulative = np.concatenate([[0], np.cumsum(w[order])])
        entered = cumulative[np.searchsorted(a[order], times, side="left")]  # entry < t
        # a connection seen at exactly its last age (entry = duration) is at risk then
        last = a == t
        entered = entered + np.bincount(
            inverse[last], weights=w[last], minlength=len(times)
        ).astype(np.int64)
    at_risk = entered - np.concatenate([[0], np.cumsum(removed)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = 1.0 - events / at_risk
        term = np.where(
            at_risk > events, events / (at_risk * (at_risk - events).astype(float)), 0.0
        )
    survival = np.cumprod(factor)
    return KaplanMeierResult(
        timeline=times,
        survival=survival,
        at_risk=at_risk,
        events=events,
        censored=removed - events,
        greenwood=np.cumsum(term),
        n=total,
        n_events=int(events.sum()),
        level=level,
        min_events=min_events,
    )


@dataclass(frozen=True)
class LogRankResult:
    """Two-sample log-rank test (chi-square, 1 df), as lifelines' `logrank_test`."""

    statistic: float
    pvalue: float
    observed_canary: float
    expected_canary: float
    variance: float
    n_canary: int
    n_control: int

    @property
    def hazard_ratio(self) -> float:
        """Canary hazard relative to control, the one-step (Peto) estimate exp((O-E)/V)."""
        if self.variance <= 0:
            return math.nan
        return math.exp((self.observed_canary - self.expected_canary) / self.variance)


def logrank(
    durations_canary: np.ndarray | Sequence[float],
    durations_control: np.ndarray | Sequence[float],
    events_canary: np.ndarray | Sequence[bool] | None = None,
    events_control: np.ndarray | Sequence[bool] | None = None,
) -> LogRankResult:
    """Log-rank test of equal survival curves (hypergeometric variance, ties handled)."""
    ta = np.asarray(durations_canary, dtype=float)
    tb = np.asarray(durations_control, dtype=float)
    ea = np.ones(len(ta), bool) if events_canary is None else np.asarray(events_canary, bool)
    eb = np.ones(len(tb), bool) if events_control is None else np.asarray(events_control, bool)
    times, inverse = np.unique(np.concatenate([ta, tb]), return_inverse=True)
    ia, ib = inverse[: len(ta)], inverse[len(ta) :]
    m = len(times)
    d_a = np.bincount(ia, weights=ea, minlength=m)
    d_b = np.bincount(ib, weights=eb, minlength=m)
    out_a = np.bincount(ia, minlength=m)
    out_b = np.bincount(ib, minlength=m)
    n_a = len(ta) - np.concatenate([[0], np.cumsum(out_a)[:-1]])
    n_b = len(tb) - np.concatenate([[0], np.cumsum(out_b)[:-1]])
    n = (n_a + n_b).astype(float)
    d = d_a + d_b
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(n > 0, d * n_a / n, 0.0)
        var = np.where(n > 1, d * (n_a / n) * (1 - n_a / n) * (n - d) / (n - 1), 0.0)
    o, ex, v = float(d_a.sum()), float(expected.sum()), float(var.sum())
    stat = (o - ex) ** 2 / v if v > 0 else math.nan
    p = float(stats.chi2.sf(stat, 1)) if v > 0 else math.nan
    return LogRankResult(stat, p, o, ex, v, len(ta), len(tb))


def compare_duration_quantiles(
    canary: KaplanMeierResult,
    control: KaplanMeierResult,
    p: float,
    level: float = 0.95,
) -> Comparison:
    """Difference of the `p` duration quantile, canary - control.

    Each quantile's standard error is read from its own log(-log) interval (width / 2z),
    and the difference uses a normal interval: fast and close to a bootstrap when both
    curves cross the level well inside the data. When either quantile or its interval is
    not finite (the curve never reaches the level) the result is marked insufficient.
    """
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    qa = canary.duration_quantile(p, level)
    qb = control.duration_quantile(p, level)
    finite = all(math.isfinite(v) for v in (qa.estimate, qb.estimate, qa.ci.high, qb.ci.high))
    diff = qa.estimate - qb.estimate if finite else math.nan
    se = (
        math.hypot((qa.ci.high - qa.ci.low) / (2 * z), (qb.ci.high - qb.ci.low) / (2 * z))
        if finite
        else math.nan
    )

    def interval(lv: float) -> tuple[float, float]:
        zz = float(stats.norm.ppf(1 - (1 - lv) / 2))
        return diff - zz * se, diff + zz * se

    low, high = interval(level) if finite else (math.nan, math.nan)
    pval = two_sided_pvalue(diff / se) if finite and se > 0 else math.nan
    reason = "" if finite else f"fewer than {p:.0%} of connections ended within the window"
    return Comparison(
        effect="difference",
        statistic=diff,
        pvalue=pval,
        canary=qa.estimate,
        control=qb.estimate,
        standard_error=se,
        ci=ConfidenceInterval(low, high, level),
        n_canary=canary.n,
        n_control=control.n,
        sufficient=finite and canary.sufficient and control.sufficient,
        method="kaplan-meier quantile difference (log-log interval SE)",
        reason=reason,
        _interval=interval if finite else None,
    )


__all__ = [
    "DurationQuantile",
    "KaplanMeierResult",
    "LogRankResult",
    "compare_duration_quantiles",
    "kaplan_meier",
    "logrank",
]
