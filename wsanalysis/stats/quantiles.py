"""Quantiles (p95 latency and the like), canary against control.

Two sources:

* Raw samples (RUM `ttfb_ms`), clustered by session: one slow session gives many slow
  samples, so samples are not independent and an i.i.d. bootstrap gives intervals that
  are too narrow. `quantile_difference` resamples *sessions* with Poisson(1) weights
  (the Poisson bootstrap: independent weights, vectorised, no index gathering) and takes
  weighted quantiles. Only samples near the quantile can move it, so each replicate
  touches a narrow window of sorted values around it plus per-session counts below the
  window; the window is sized from the exact bootstrap variance of the count below the
  estimate and widened if any replicate falls outside, so the answer is the exact
  weighted quantile, not an approximation. Time is linear in the samples (about 1 s for
  1 M samples per variant with 2000 resamples on 2 cores; benchmarks/RESULTS-stats.md).
  Above `BOOTSTRAP_MAX_SAMPLES` the default switches to Woodruff's interval with a
  session-clustered variance: the share of samples at or below the estimate has a
  sandwich variance over sessions, and mapping ±z of it through the empirical quantile
  function gives the quantile's standard error (no resampling, one pass). At that size
  the sampling distribution is normal to within the bootstrap's own Monte Carlo noise;
  tests/stats/test_quantiles.py checks the two against each other.
* Prometheus histograms (cumulative bucket counts by `le`): `histogram_quantile` gives
  exactly PromQL's value (linear interpolation within the bucket, first bucket starting
  at 0 when its bound is positive, +Inf bucket returns the highest finite bound);
  intervals come from order statistics (binomial) mapped through the same interpolation,
  or from a bootstrap on bucket counts (multinomial, or over time buckets when counts per
  scrape interval are given, which respects autocorrelation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from scipy import stats

from wsanalysis.stats.results import Comparison, ConfidenceInterval, two_sided_pvalue

MIN_SAMPLES = 200
MIN_SESSIONS = 20
BOOTSTRAP_MAX_SAMPLES = 1_000_000  # both variants together; above: Woodruff (see above)


# ------------------------------------------------------------------ raw samples


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Smallest value whose cumulative weight reaches q × total (inverted CDF; with unit
    weights equal to `np.quantile(values, q, method="inverted_cdf")`)."""
    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[order]
    cw = np.cumsum(np.asarray(weights, dtype=float)[order])
    if len(v) == 0 or cw[-1] <= 0:
        return math.nan
    i = int(np.searchsorted(cw, q * cw[-1] * (1 - 1e-12), side="left"))
    return float(v[min(i, len(v) - 1)])


# Poisson(1) weights from 16 random bits: a 65536-entry table whose value frequencies
# are the Poisson(1) probabilities rounded to 1/65536 (mean exactly 1, variance 0.99997).
# Cheaper than Generator.poisson, which dominated the bootstrap's time (measured in
# benchmarks/RESULTS-internals.md).
_POISSON1_TABLE = np.searchsorted(
    np.round(stats.poisson.cdf(np.arange(12), 1.0) * 65536), np.arange(65536), side="right"
).astype(np.float64)


def _poisson_one(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return _POISSON1_TABLE[rng.integers(0, 65536, size=shape, dtype=np.uint16)]


def _rank(q: float, n: int) -> int:
    """0-based rank of the inverted-CDF q-quantile among n values."""
    return min(max(math.ceil(q * n * (1 - 1e-12)) - 1, 0), n - 1)


@dataclass
class _Prepared:
    """One variant's samples (unsorted: only a window near the quantile is ever sorted)
    with dense session codes."""

    values: np.ndarray
    sessions: np.ndarray  # session code per value
    per_session: np.ndarray  # samples per session
    n_sessions: int

    def order_statistics(self, ranks: list[int]) -> np.ndarray:
        return np.partition(self.values, ranks)[ranks]

    # `RankedValues`, for `woodruff`
    def count(self) -> int:
        return len(self.values)

    def ranked(self, first: int, last: int) -> np.ndarray:
        ordered = np.partition(self.values, sorted({first, last}))
        return np.sort(ordered[first : last + 1])

    def cluster_counts(self, estimate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        above = np.bincount(self.sessions[self.values > estimate], minlength=len(self.per_session))
        held = self.per_session > 0
        return self.per_session[held], above[held].astype(float), np.ones(int(held.sum()))


def _session_codes(s: np.ndarray) -> np.ndarray:
    """Dense-enough integer codes: small non-negative integer ids are used as they are
    (no sort), anything else goes through np.unique."""
    if s.dtype.kind in "iu" and len(s) and s.min() >= 0 and s.max() < 4 * len(s) + 1024:
        return s.astype(np.int64, copy=False)
    return np.unique(s, return_inverse=True)[1].astype(np.int64)


def _prepare(values: np.ndarray | Sequence[float], sessions: np.ndarray | Sequence) -> _Prepared:
    v = np.asarray(values, dtype=float)
    s = np.asarray(sessions)
    if v.shape != s.shape:
        raise ValueError("values and sessions must have the same length")
    keep = ~np.isnan(v)
    if not keep.all():
        v, s = v[keep], s[keep]
    codes = _session_codes(s)
    per = np.bincount(codes).astype(float)
    return _Prepared(v, codes, per, int(np.count_nonzero(per)))


def _crossing(
    weights: np.ndarray, offset: np.ndarray, target: np.ndarray, block: int = 64
) -> np.ndarray:
    """Per row, the number of leading columns whose running sum (plus `offset`) stays
    below `target`, i.e. the index where the cumulative weight first reaches it.

    Two stages: running sums of 64-column block totals find the block, then one
    64-wide running sum inside it; a full cumulative sum would touch every column twice.
    """
    rows, width = weights.shape
    starts = np.arange(0, width, block)
    cum_blocks = np.cumsum(np.add.reduceat(weights, starts, axis=1), axis=1) + offset[:, None]
    b = np.minimum((cum_blocks < target[:, None]).sum(axis=1), len(starts) - 1)
    r = np.arange(rows)
    before = np.where(b > 0, cum_blocks[r, np.maximum(b - 1, 0)], offset)
    cols = starts[b][:, None] + np.arange(block)
    inner = np.where(cols < width, weights[r[:, None], np.minimum(cols, width - 1)], 0.0)
    inside = (np.cumsum(inner, axis=1) + before[:, None] < target[:, None]).sum(axis=1)
    return np.minimum(starts[b] + inside, width)


def _bootstrap_quantile(
    p: _Prepared, q: float, reps: int, rng: np.random.Generator, chunk: int = 64
) -> np.ndarray:
    """Session (cluster) Poisson-bootstrap replicates of the q-quantile, exact.

    A replicate weighs session s by w_s ~ Poisson(1) (table-drawn, see above). Only values in a window of ranks
    around the estimate can be a replicate's quantile; they are the only ones sorted.
    Sessions with a value in the window get their own weight; every other session only
    contributes its sample count and its count below the window, so sessions sharing
    that pair are pooled and drawn as one Poisson(k) (a sum of k independent Poisson(1)):
    same distribution, far fewer draws. Linear time in the number of samples.
    """
    n = len(p.values)
    point = _rank(q, n)
    x_point = p.order_statistics([point])[0]
    n_codes = len(p.per_session)
    below_point = np.bincount(p.sessions[p.values <= x_point], minlength=n_codes)
    # exact bootstrap sd of (weighted count up to the estimate - q × weighted total)
    sd = math.sqrt(float(np.sum((below_point - q * p.per_session) ** 2)))
    half = int(4.5 * sd) + 50  # a replicate outside ±4.5 sd: ~1e-5 each; then widen
    out = np.empty(reps)
    while True:
        lo, hi = max(0, point - half), min(n - 1, point + half)
        v_lo, v_hi = p.order_statistics([lo, hi])
        is_below = p.values < v_lo
        in_win = ~is_below & (p.values <= v_hi)
        below = np.bincount(p.sessions[is_below], minlength=n_codes).astype(float)
        order = np.argsort(p.values[in_win], kind="stable")
        win_values = p.values[in_win][order]
        in_window, win_pos = np.unique(p.sessions[in_win][order], return_inverse=True)
        width = len(win_values)
        outside = p.per_session > 0
        outside[in_window] = False
        span = int(below.max()) + 1 if len(below) else 1
        keys, pooled = np.unique(
            p.per_session[outside].astype(np.int64) * span + below[outside].astype(np.int64),
            return_counts=True,
        )
        pairs = np.stack([keys // span, keys % span], axis=1).astype(float)
        at_start, at_end = lo == 0, hi == n - 1
        ok = True
        for start in range(0, reps, chunk):
            m = min(chunk, reps - start)
            w = _poisson_one(rng, (m, len(in_window)))
            g = rng.poisson(pooled.astype(float), size=(m, len(pooled))).astype(float)
            total = w @ p.per_session[in_window] + g @ pairs[:, 0]
            weight_below = w @ below[in_window] + g @ pairs[:, 1]
            target = q * total * (1 - 1e-12)
            idx = _crossing(w[:, win_pos], weight_below, target)
            inside = ((weight_below < target) | at_start) & ((idx < width) | at_end)
            if not np.all(inside | (total == 0)):
                ok = False
                break
            out[start : start + m] = np.where(
                total > 0, win_values[np.minimum(idx, width - 1)], np.nan
            )
        if ok:
            return out
        half *= 2  # a replicate fell outside the window: widen and redo (rare)


class RankedValues(Protocol):
    """One variant's values as Woodruff's interval reads them, wherever they live.

    In memory (`_Prepared`, numpy) or in an engine (`pushdown.rum`, SQL): the interval
    needs only the count, a window of order statistics around the estimate, and per
    cluster the sample count and the count above the estimate, so an engine answers it
    with (clusters + a window of ranks) rows, however many samples it holds.
    """

    def count(self) -> int:
        """N, the number of values."""
        ...

    def ranked(self, first: int, last: int) -> np.ndarray:
        """The order statistics of 0-based ranks first..last, ascending."""
        ...

    def cluster_counts(self, estimate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n_s, above_s, multiplicity): per cluster with at least one value, its
        values and its values above `estimate`; rows may pool clusters sharing the
        pair, `multiplicity` saying how many (ones when not pooled)."""
        ...


@dataclass(frozen=True)
class WoodruffEstimate:
    """One variant's quantile with its clustered Woodruff standard error."""

    estimate: float
    standard_error: float
    n: int
    clusters: int


def clustered_share_se(
    q: float,
    n: int,
    cluster_sizes: np.ndarray,
    cluster_above: np.ndarray,
    multiplicity: np.ndarray | None = None,
) -> float:
    """Standard error of the share of values at or below the q-quantile's estimate,
    clustered: the sandwich Σ_s (b_s - q n_s)² / N² with b_s = n_s - above_s, scaled by
    C / (C - 1) for C clusters (at least 2)."""
    sizes = np.asarray(cluster_sizes, dtype=float)
    above = np.asarray(cluster_above, dtype=float)
    weights = np.ones(len(sizes)) if multiplicity is None else np.asarray(multiplicity, float)
    clusters = max(int(round(float(weights.sum()))), 2)
    share_var = float(np.sum(weights * (sizes - above - q * sizes) ** 2)) / n**2
    return math.sqrt(share_var * clusters / (clusters - 1))


def woodruff_ranks(q: float, n: int, z: float, share_se: float) -> tuple[int, int]:
    """The 0-based ranks whose order statistics are the ±z ends of Woodruff's interval."""
    return _rank(max(q - z * share_se, 0.0), n), _rank(min(q + z * share_se, 1.0), n)


def woodruff(values: RankedValues, q: float, z: float) -> WoodruffEstimate:
    """The q-quantile and its standard error, clustered (the one Woodruff of the package).

    Bahadur: the quantile moves with the share of samples at or below it, whose variance
    is the cluster sandwich (`clustered_share_se`). ±z standard errors of that share,
    read through the empirical quantile function, span ±z standard errors of the
    quantile (Woodruff 1952; the density is never estimated).

    One window of ranks around the estimate, wide enough for the interval's ends up to a
    design effect of 64, is read with the estimate; the ends are read separately only
    when a larger design effect puts them outside it.
    """
    n = values.count()
    point = _rank(q, n)
    reach = int(8 * z * math.sqrt(q * (1 - q) * n)) + 1000
    first, last = max(point - reach, 0), min(point + reach, n - 1)
    window = values.ranked(first, last)
    estimate = float(window[point - first])
    sizes, above, multiplicity = values.cluster_counts(estimate)
    share_se = clustered_share_se(q, n, sizes, above, multiplicity)
    lo, hi = woodruff_ranks(q, n, z, share_se)
    if first <= lo and hi <= last:
        low, high = window[lo - first], window[hi - first]
    else:  # a design effect beyond the window's: select the ends from everything
        low, high = values.ranked(lo, lo)[0], values.ranked(hi, hi)[0]
    clusters = int(round(float(np.sum(multiplicity))))
    return WoodruffEstimate(estimate, float(high - low) / (2 * z), n, clusters)


@dataclass(frozen=True, kw_only=True)
class QuantileComparison(Comparison):
    """A `Comparison` of quantiles, with the bootstrap replicates of the difference when
    the bootstrap was the method (None for Woodruff)."""

    q: float
    sessions_canary: int
    sessions_control: int
    replicates: np.ndarray | None = field(default=None, repr=False, compare=False)


def quantile_difference(
    values_canary: np.ndarray | Sequence[float],
    sessions_canary: np.ndarray | Sequence,
    values_control: np.ndarray | Sequence[float],
    sessions_control: np.ndarray | Sequence,
    *,
    q: float = 0.95,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int | np.random.Generator | None = 0,
    min_samples: int = MIN_SAMPLES,
    min_sessions: int = MIN_SESSIONS,
    method: Literal["auto", "bootstrap", "woodruff"] = "auto",
) -> QuantileComparison:
    """Difference of the q-quantile, canary - control, with a session-clustered CI.

    `bootstrap`: percentile interval of the replicate differences, and the two-sided
    bootstrap p-value (twice the smaller share of replicates on either side of 0).
    `woodruff`: a normal interval from each variant's clustered Woodruff standard error.
    `auto` takes the bootstrap up to `BOOTSTRAP_MAX_SAMPLES` samples, Woodruff above.
    Pass one session id per sample; with a distinct id per sample this is the ordinary
    i.i.d. bootstrap.
    """
    if not 0 < q < 1:
        raise ValueError("q must be strictly between 0 and 1")
    if method not in ("auto", "bootstrap", "woodruff"):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'bootstrap' or 'woodruff'")
    a = _prepare(values_canary, sessions_canary)
    b = _prepare(values_control, sessions_control)
    if len(a.values) == 0 or len(b.values) == 0:
        raise ValueError("each variant needs at least one sample")
    if method == "auto":
        big = len(a.values) + len(b.values) > BOOTSTRAP_MAX_SAMPLES
        method = "woodruff" if big else "bootstrap"
    if method == "woodruff":
        return quantile_difference_ranked(
            a, b, q=q, level=level, min_samples=min_samples, min_sessions=min_sessions
        )
    rng = np.random.default_rng(seed)
    est_a = float(a.order_statistics([_rank(q, len(a.values))])[0])
    est_b = float(b.order_statistics([_rank(q, len(b.values))])[0])
    reps = _bootstrap_quantile(a, q, n_resamples, rng) - _bootstrap_quantile(b, q, n_resamples, rng)
    reps = reps[~np.isnan(reps)]
    diff = est_a - est_b

    def interval(lv: float) -> tuple[float, float]:
        alpha = 1 - lv
        lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
        return float(lo), float(hi)

    share_le = float(np.mean(reps <= 0))
    share_ge = float(np.mean(reps >= 0))
    pvalue = min(1.0, 2 * min(share_le, share_ge))
    se = float(np.std(reps, ddof=1))
    name = f"session-clustered Poisson bootstrap ({len(reps)} resamples), percentile interval"
    low, high = interval(level)
    enough = (
        min(len(a.values), len(b.values)) >= min_samples
        and min(a.n_sessions, b.n_sessions) >= min_sessions
    )
    reason = (
        ""
        if enough
        else f"fewer than {min_samples} samples or {min_sessions} sessions in a variant"
    )
    return QuantileComparison(
        effect="difference",
        statistic=diff,
        pvalue=pvalue,
        canary=est_a,
        control=est_b,
        standard_error=se,
        ci=ConfidenceInterval(low, high, level),
        n_canary=len(a.values),
        n_control=len(b.values),
        sufficient=enough,
        method=name,
        reason=reason,
        _interval=interval,
        q=q,
        sessions_canary=a.n_sessions,
        sessions_control=b.n_sessions,
        replicates=reps,
    )


def quantile_difference_ranked(
    canary: RankedValues,
    control: RankedValues,
    *,
    q: float = 0.95,
    level: float = 0.95,
    min_samples: int = MIN_SAMPLES,
    min_sessions: int = MIN_SESSIONS,
) -> QuantileComparison:
    """`quantile_difference(method="woodruff")` from each variant's `RankedValues`: what
    an engine answers without handing over its samples (`pushdown.rum`)."""
    if not 0 < q < 1:
        raise ValueError("q must be strictly between 0 and 1")
    if canary.count() == 0 or control.count() == 0:
        raise ValueError("each variant needs at least one sample")
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    a, b = woodruff(canary, q, z), woodruff(control, q, z)
    diff, se = a.estimate - b.estimate, math.hypot(a.standard_error, b.standard_error)

    def interval(lv: float) -> tuple[float, float]:
        half = float(stats.norm.ppf(1 - (1 - lv) / 2)) * se
        return diff - half, diff + half

    low, high = interval(level)
    enough = min(a.n, b.n) >= min_samples and min(a.clusters, b.clusters) >= min_sessions
    return QuantileComparison(
        effect="difference",
        statistic=diff,
        pvalue=two_sided_pvalue(diff / se if se > 0 else (math.inf if diff else 0.0)),
        canary=a.estimate,
        control=b.estimate,
        standard_error=se,
        ci=ConfidenceInterval(low, high, level),
        n_canary=a.n,
        n_control=b.n,
        sufficient=enough,
        method="session-clustered Woodruff interval (normal)",
        reason=""
        if enough
        else f"fewer than {min_samples} samples or {min_sessions} sessions in a variant",
        _interval=interval,
        q=q,
        sessions_canary=a.clusters,
        sessions_control=b.clusters,
        replicates=None,
    )


# ----------------------------------------------------------- Prometheus histograms


def _cumulative(
    le: Sequence[float] | np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sort by `le`, merge equal bounds, force monotonic counts (as PromQL does)."""
    bounds = np.asarray(le, dtype=float)
    c = np.asarray(counts, dtype=float)
    order = np.argsort(bounds, kind="stable")
    bounds, c = bounds[order], c[..., order]
    uniq, start = np.unique(bounds, return_index=True)
    if len(uniq) != len(bounds):
        c = np.add.reduceat(c, start, axis=-1)
        bounds = uniq
    return bounds, np.maximum.accumulate(c, axis=-1)


def histogram_quantile(
    q: float, le: Sequence[float] | np.ndarray, cumulative_counts: np.ndarray | Sequence[float]
) -> np.ndarray | float:
    """PromQL `histogram_quantile(q, ...)` on cumulative bucket counts.

    `cumulative_counts` has the buckets on its last axis (one row per series or per
    bootstrap replicate). Returns NaN when there is no +Inf bucket, fewer than two
    buckets, or no observations; the highest finite bound when the rank falls in +Inf.
    """
    bounds, cum = _cumulative(le, np.asarray(cumulative_counts, dtype=float))
    scalar = cum.ndim == 1
    cum = np.atleast_2d(cum)
    out = np.full(cum.shape[0], math.nan)
    if math.isnan(q):
        return out[0] if scalar else out
    if q < 0:
        out[:] = -math.inf
        return out[0] if scalar else out
    if q > 1:
        out[:] = math.inf
        return out[0] if scalar else out
    if len(bounds) < 2 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return out[0] if scalar else out
    total = cum[:, -1]
    rank = q * total
    # first bucket (excluding +Inf) whose cumulative count reaches the rank
    b = (cum[:, :-1] < rank[:, None]).sum(axis=1)
    rows = np.arange(cum.shape[0])
    in_inf = b == len(bounds) - 1
    bb = np.minimum(b, len(bounds) - 2)
    end = bounds[bb]
    start = np.where(bb > 0, bounds[np.maximum(bb - 1, 0)], 0.0)
    below = np.where(bb > 0, cum[rows, np.maximum(bb - 1, 0)], 0.0)
    count = cum[rows, bb] - below
    with np.errstate(divide="ignore", invalid="ignore"):
        value = start + (end - start) * ((rank - below) / count)
    value = np.where((bb == 0) & (bounds[0] <= 0), bounds[0], value)
    value = np.where(in_inf, bounds[-2], value)
    value = np.where(total > 0, value, math.nan)
    return float(value[0]) if scalar else value


@dataclass(frozen=True)
class HistogramQuantile:
    """A quantile from bucket counts, PromQL's value, with an order-statistic interval."""

    q: float
    estimate: float
    ci: ConfidenceInterval
    observations: float
    sufficient: bool

    def confidence_interval(self) -> ConfidenceInterval:
        return self.ci


def histogram_quantile_ci(
    q: float,
    le: Sequence[float] | np.ndarray,
    cumulative_counts: Sequence[float] | np.ndarray,
    *,
    level: float = 0.95,
    min_samples: int = MIN_SAMPLES,
) -> HistogramQuantile:
    """PromQL's quantile with a distribution-free interval: the ranks of the order
    statistics that bracket the q-quantile with probability `level` (binomial), each
    mapped through the same within-bucket interpolation. Assumes independent
    observations; use `histogram_quantile_difference` with per-interval counts when they
    are autocorrelated."""
    bounds, cum = _cumulative(le, np.asarray(cumulative_counts, dtype=float))
    n = float(cum[-1]) if len(cum) else 0.0
    est = float(histogram_quantile(q, bounds, cum))
    if n <= 0 or not math.isfinite(est):
        return HistogramQuantile(q, est, ConfidenceInterval(math.nan, math.nan, level), n, False)
    a = (1 - level) / 2
    k_lo = float(stats.binom.ppf(a, int(round(n)), q))
    k_hi = float(stats.binom.ppf(1 - a, int(round(n)), q)) + 1
    lo = float(histogram_quantile(min(k_lo / n, 1.0), bounds, cum))
    hi = float(histogram_quantile(min(k_hi / n, 1.0), bounds, cum))
    return HistogramQuantile(q, est, ConfidenceInterval(lo, hi, level), n, n >= min_samples)


def _bucket_replicates(
    le: np.ndarray,
    counts: np.ndarray,
    q: float,
    reps: int,
    rng: np.random.Generator,
    block: int | None,
) -> tuple[np.ndarray, float, float]:
    """Bootstrap replicates of the quantile for one variant; (replicates, estimate, n).

    `counts` is cumulative per bucket, either one row (whole window: multinomial on the
    per-bucket counts) or one row per time interval (increase per scrape interval:
    moving-block bootstrap over intervals).
    """
    bounds, cum = _cumulative(le, counts)
    if cum.ndim == 1:
        total = cum
        per_bucket = np.diff(cum, prepend=0.0)
        n = int(round(cum[-1]))
        if n <= 0:
            return np.full(reps, math.nan), math.nan, 0.0
        draws = rng.multinomial(n, per_bucket / per_bucket.sum(), size=reps)
        return (
            histogram_quantile(q, bounds, np.cumsum(draws, axis=1)),
            float(histogram_quantile(q, bounds, total)),
            float(n),
        )
    t = cum.shape[0]
    total = cum.sum(axis=0)
    size = block or max(1, int(round(t ** (1 / 3))))
    n_blocks = math.ceil(t / size)
    starts = rng.integers(0, t - size + 1, size=(reps, n_blocks))
    idx = (starts[:, :, None] + np.arange(size)).reshape(reps, -1)[:, :t]
    boot = cum[idx].sum(axis=1)
    return (
        histogram_quantile(q, bounds, boot),
        float(histogram_quantile(q, bounds, total)),
        float(total[-1]),
    )


def histogram_quantile_difference(
    le: Sequence[float] | np.ndarray,
    counts_canary: np.ndarray | Sequence[float],
    counts_control: np.ndarray | Sequence[float],
    *,
    q: float = 0.95,
    level: float = 0.95,
    n_resamples: int = 2000,
    block: int | None = None,
    seed: int | np.random.Generator | None = 0,
    min_samples: int = MIN_SAMPLES,
) -> Comparison:
    """Difference of PromQL quantiles, canary - control, bootstrap on bucket counts.

    Counts are cumulative by `le` (last axis). A 1-D row per variant is resampled
    multinomially (independent observations); a 2-D array (time interval × bucket, e.g.
    `increase(..._bucket[1m])` per minute) is resampled in moving blocks of intervals
    (default length T^(1/3)), which keeps autocorrelated bursts together.
    """
    rng = np.random.default_rng(seed)
    bounds = np.asarray(le, dtype=float)
    ra, ea, na = _bucket_replicates(
        bounds, np.asarray(counts_canary, float), q, n_resamples, rng, block
    )
    rb, eb, nb = _bucket_replicates(
        bounds, np.asarray(counts_control, float), q, n_resamples, rng, block
    )
    reps = ra - rb
    reps = reps[np.isfinite(reps)]
    diff = ea - eb
    if len(reps) < 2 or not math.isfinite(diff):
        nan_ci = ConfidenceInterval(math.nan, math.nan, level)
        return Comparison(
            effect="difference", statistic=diff, pvalue=math.nan, canary=ea, control=eb,
            standard_error=math.nan, ci=nan_ci, n_canary=int(na), n_control=int(nb),
            sufficient=False, method="histogram bucket bootstrap", reason="no observations in a variant",
        )  # fmt: skip

    def interval(lv: float) -> tuple[float, float]:
        lo, hi = np.quantile(reps, [(1 - lv) / 2, 1 - (1 - lv) / 2])
        return float(lo), float(hi)

    se = float(np.std(reps, ddof=1))
    low, high = interval(level)
    pvalue = min(1.0, 2 * min(float(np.mean(reps <= 0)), float(np.mean(reps >= 0))))
    if se == 0:
        pvalue = two_sided_pvalue(math.inf if diff else 0.0)
    enough = min(na, nb) >= min_samples
    kind = "moving-block over intervals" if np.ndim(counts_canary) == 2 else "multinomial"
    return Comparison(
        effect="difference",
        statistic=diff,
        pvalue=pvalue,
        canary=ea,
        control=eb,
        standard_error=se,
        ci=ConfidenceInterval(low, high, level),
        n_canary=int(na),
        n_control=int(nb),
        sufficient=enough,
        method=f"histogram_quantile, bucket bootstrap ({kind}, {n_resamples} resamples)",
        reason="" if enough else f"fewer than {min_samples} observations in a variant",
        _interval=interval,
    )
