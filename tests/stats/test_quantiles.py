"""Quantiles: session-clustered bootstrap checked against brute force and scipy's
bootstrap; PromQL histogram_quantile semantics; interval coverage on simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from wsanalysis.stats import quantiles as qs


def _clustered(
    rng: np.random.Generator,
    sessions: int,
    per_session: float,
    shift: float = 0.0,
    icc: float = 0.5,
    sigma: float = 1.0,
):
    """Latencies (s) whose log has a per-session random effect: slow sessions stay slow."""
    sizes = rng.poisson(per_session, sessions) + 1
    ids = np.repeat(np.arange(sessions), sizes)
    effect = rng.normal(0, math.sqrt(icc), sessions)[ids]
    values = np.exp(-0.5 + sigma * (effect + rng.normal(0, math.sqrt(1 - icc), len(ids)))) + shift
    return values, ids


def test_weighted_quantile_is_inverted_cdf() -> None:
    rng = np.random.default_rng(0)
    v = rng.exponential(size=1001)
    for q in (0.05, 0.5, 0.95, 0.99):
        assert qs.weighted_quantile(v, np.ones_like(v), q) == np.quantile(
            v, q, method="inverted_cdf"
        )
    # integer weights equal repetition
    w = rng.integers(0, 4, size=len(v))
    assert qs.weighted_quantile(v, w, 0.9) == np.quantile(
        np.repeat(v, w), 0.9, method="inverted_cdf"
    )


def test_windowed_bootstrap_has_the_brute_force_distribution() -> None:
    """Same law as the plain cluster bootstrap (per-session Poisson weights, full
    weighted quantile over every sample)."""
    rng = np.random.default_rng(1)
    values, ids = _clustered(rng, 300, 6)
    prepared = qs._prepare(values, ids)
    ours = qs._bootstrap_quantile(prepared, 0.95, 3000, np.random.default_rng(2))
    brute_rng = np.random.default_rng(3)
    brute = np.array(
        [qs.weighted_quantile(values, brute_rng.poisson(1.0, 300)[ids], 0.95) for _ in range(3000)]
    )
    assert stats.ks_2samp(ours, brute).pvalue > 0.01
    assert np.std(ours) == pytest.approx(np.std(brute), rel=0.1)


def test_point_estimates_and_iid_interval_match_scipy_bootstrap() -> None:
    rng = np.random.default_rng(4)
    a = rng.lognormal(0.0, 0.5, 4000)
    b = rng.lognormal(0.0, 0.5, 5000)
    r = qs.quantile_difference(a, np.arange(len(a)), b, np.arange(len(b)), q=0.95, n_resamples=2000)
    assert r.canary == np.quantile(a, 0.95, method="inverted_cdf")
    assert r.statistic == r.canary - r.control

    def diff(x, y):
        return np.quantile(x, 0.95, method="inverted_cdf") - np.quantile(
            y, 0.95, method="inverted_cdf"
        )

    ref = stats.bootstrap(
        (a, b), diff, n_resamples=2000, method="percentile", vectorized=False, random_state=5
    )
    ref_width = ref.confidence_interval.high - ref.confidence_interval.low
    assert (r.ci.high - r.ci.low) == pytest.approx(ref_width, rel=0.15)
    assert r.sufficient


def test_clustering_widens_the_interval_and_keeps_coverage() -> None:
    rng = np.random.default_rng(6)
    runs, clustered_cover, naive_cover = 60, 0, 0
    for _ in range(runs):
        va, ia = _clustered(rng, 150, 20)
        vb, ib = _clustered(rng, 150, 20)
        c = qs.quantile_difference(va, ia, vb, ib, n_resamples=400, seed=rng)
        n = qs.quantile_difference(
            va, np.arange(len(va)), vb, np.arange(len(vb)), n_resamples=400, seed=rng
        )
        clustered_cover += c.ci.contains(0.0)
        naive_cover += n.ci.contains(0.0)
        assert c.ci.high - c.ci.low > n.ci.high - n.ci.low
    assert clustered_cover / runs >= 0.88
    assert naive_cover / runs < 0.85


def test_detects_a_150ms_shift_of_p95() -> None:
    rng = np.random.default_rng(7)
    va, ia = _clustered(rng, 2000, 10, shift=0.15, sigma=0.4)
    vb, ib = _clustered(rng, 2000, 10, sigma=0.4)
    r = qs.quantile_difference(va, ia, vb, ib, n_resamples=500)
    assert r.ci.low > 0 and r.pvalue < 0.05
    assert r.ci.contains(0.15)
    assert r.noninferiority(0.1) > 0.5  # +150 ms is past a +100 ms margin


def test_minimum_data_flag() -> None:
    r = qs.quantile_difference([1.0, 2.0, 3.0], [1, 1, 2], [1.0, 2.0], [1, 2], n_resamples=50)
    assert not r.sufficient and r.reason


# ------------------------------------------------------------------ histograms

LE = [0.1, 0.25, 0.5, 1.0, 2.5, math.inf]


def _prom(q: float, le: list[float], cum: list[float]) -> float:
    """PromQL bucketQuantile (Prometheus 2.x), transcribed as the reference."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    pairs = sorted(zip(le, cum, strict=True))
    if not math.isinf(pairs[-1][0]) or len(pairs) < 2:
        return math.nan
    obs = pairs[-1][1]
    if obs == 0:
        return math.nan
    rank = q * obs
    b = next(i for i, (_, c) in enumerate(pairs[:-1] + [(math.inf, math.inf)]) if c >= rank)
    if b == len(pairs) - 1:
        return pairs[-2][0]
    if b == 0 and pairs[0][0] <= 0:
        return pairs[0][0]
    start, end, count = 0.0, pairs[b][0], pairs[b][1]
    if b > 0:
        start = pairs[b - 1][0]
        count -= pairs[b - 1][1]
        rank -= pairs[b - 1][1]
    return start + (end - start) * (rank / count)


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_histogram_quantile_is_promql(q: float) -> None:
    cum = [10.0, 40.0, 70.0, 90.0, 97.0, 100.0]
    assert qs.histogram_quantile(q, LE, cum) == pytest.approx(_prom(q, LE, cum))


def test_histogram_quantile_edge_cases() -> None:
    cum = [10.0, 40.0, 70.0, 90.0, 97.0, 100.0]
    assert qs.histogram_quantile(0.999, LE, cum) == 2.5  # rank in +Inf → highest finite bound
    assert qs.histogram_quantile(-0.1, LE, cum) == -math.inf
    assert qs.histogram_quantile(1.1, LE, cum) == math.inf
    assert math.isnan(qs.histogram_quantile(0.5, LE[:-1], cum[:-1]))  # no +Inf bucket
    assert math.isnan(qs.histogram_quantile(0.5, LE, [0.0] * 6))
    assert qs.histogram_quantile(0.05, LE, cum) == pytest.approx(0.05)  # first bucket from 0
    assert qs.histogram_quantile(0.05, [-1.0, 1.0, math.inf], [10.0, 20.0, 20.0]) == -1.0
    # unsorted input and non-monotonic counts are repaired as PromQL does
    shuffled = [5, 0, 3, 1, 4, 2]
    got = qs.histogram_quantile(0.5, [LE[i] for i in shuffled], [cum[i] for i in shuffled])
    assert got == pytest.approx(_prom(0.5, LE, cum))
    assert qs.histogram_quantile(0.5, LE, [10, 40, 35, 90, 97, 100]) == pytest.approx(
        _prom(0.5, LE, [10, 40, 40, 90, 97, 100])
    )
    # vectorised over rows
    rows = np.array([cum, [0, 0, 50, 50, 50, 100]], dtype=float)
    np.testing.assert_allclose(qs.histogram_quantile(0.9, LE, rows), [_prom(0.9, LE, cum), 2.5])


def _bucketize(samples: np.ndarray, le: list[float]) -> np.ndarray:
    return np.array([(samples <= b).sum() for b in le], dtype=float)


def test_histogram_order_statistic_interval_covers() -> None:
    rng = np.random.default_rng(8)
    le = [0.05 * 1.5**i for i in range(14)] + [math.inf]
    truth_cdf = stats.lognorm(0.6, scale=0.4).cdf(np.array(le[:-1]))
    truth = qs.histogram_quantile(0.95, le, np.append(truth_cdf, 1.0) * 1e9)
    covered = 0
    for _ in range(200):
        r = qs.histogram_quantile_ci(
            0.95, le, _bucketize(rng.lognormal(np.log(0.4), 0.6, 2000), le)
        )
        covered += r.ci.contains(truth)
    assert 0.9 <= covered / 200 <= 0.99


def test_histogram_difference_aa_and_ab() -> None:
    rng = np.random.default_rng(9)
    le = [0.05 * 1.3**i for i in range(20)] + [math.inf]
    false_alarms = 0
    for _ in range(60):
        a = _bucketize(rng.lognormal(np.log(0.4), 0.5, 3000), le)
        b = _bucketize(rng.lognormal(np.log(0.4), 0.5, 3000), le)
        false_alarms += (
            qs.histogram_quantile_difference(le, a, b, n_resamples=400, seed=rng).pvalue < 0.05
        )
    assert false_alarms <= 8
    a = _bucketize(rng.lognormal(np.log(0.4), 0.5, 3000) + 0.3, le)
    b = _bucketize(rng.lognormal(np.log(0.4), 0.5, 3000), le)
    r = qs.histogram_quantile_difference(le, a, b, n_resamples=400)
    assert r.ci.low > 0
    assert r.canary == qs.histogram_quantile(0.95, le, a)


def test_histogram_block_bootstrap_over_intervals_is_wider_for_bursty_data() -> None:
    """Per-minute bucket increases with slow and fast minutes in runs: the interval
    bootstrap over time blocks sees the extra variance a multinomial cannot."""
    rng = np.random.default_rng(10)
    le = [0.05 * 1.3**i for i in range(20)] + [math.inf]

    def minutes() -> np.ndarray:
        state = np.repeat(rng.random(12) < 0.3, 5)  # 5-minute slow spells
        return np.array(
            [_bucketize(rng.lognormal(np.log(0.8 if s else 0.4), 0.5, 100), le) for s in state]
        )

    a, b = minutes(), minutes()
    blocks = qs.histogram_quantile_difference(le, a, b, n_resamples=500)
    flat = qs.histogram_quantile_difference(le, a.sum(axis=0), b.sum(axis=0), n_resamples=500)
    assert blocks.statistic == pytest.approx(flat.statistic)
    assert blocks.standard_error > 1.5 * flat.standard_error
    assert "moving-block" in blocks.method


def test_crossing_equals_full_cumulative_sum() -> None:
    rng = np.random.default_rng(11)
    for width in (1, 63, 64, 65, 1000):
        w = rng.poisson(1.0, size=(50, width)).astype(float)
        offset = rng.uniform(0, 5, 50)
        target = offset + rng.uniform(-1, w.sum(axis=1) + 2)
        expected = ((np.cumsum(w, axis=1) + offset[:, None]) < target[:, None]).sum(axis=1)
        np.testing.assert_array_equal(qs._crossing(w, offset, target), expected)


def test_woodruff_interval_agrees_with_the_clustered_bootstrap() -> None:
    # The fast path for millions of samples, checked against the exact clustered
    # bootstrap on the same data: same estimate, interval ends within 5% of its width.
    rng = np.random.default_rng(11)
    va, ia = _clustered(rng, 20_000, 10, shift=0.05)
    vb, ib = _clustered(rng, 60_000, 10)
    boot = qs.quantile_difference(va, ia, vb, ib, method="bootstrap", n_resamples=4000)
    fast = qs.quantile_difference(va, ia, vb, ib, method="woodruff")
    assert fast.statistic == boot.statistic
    width = boot.ci.high - boot.ci.low
    assert fast.ci.low == pytest.approx(boot.ci.low, abs=0.05 * width)
    assert fast.ci.high == pytest.approx(boot.ci.high, abs=0.05 * width)
    assert fast.replicates is None and "Woodruff" in fast.method
    # and it is the clustered width: an i.i.d. reading of the same samples is narrower
    iid = qs.quantile_difference(
        va, np.arange(len(va)), vb, np.arange(len(vb)) + len(va), method="woodruff"
    )
    assert iid.ci.high - iid.ci.low < 0.8 * width


def _woodruff_by_definition(values, sessions, q, z):
    """The clustered Woodruff interval straight from its definition, on a full sort."""
    ordered = np.sort(values)
    n = len(values)
    estimate = ordered[qs._rank(q, n)]
    codes = np.unique(sessions, return_inverse=True)[1]
    below = np.bincount(codes[values <= estimate])
    per = np.bincount(codes)
    below = np.pad(below, (0, len(per) - len(below)))
    share_se = math.sqrt(np.sum((below - q * per) ** 2) / n**2 * len(per) / (len(per) - 1))
    ranks = [qs._rank(max(q - z * share_se, 0.0), n), qs._rank(min(q + z * share_se, 1.0), n)]
    return estimate, (ordered[ranks[1]] - ordered[ranks[0]]) / (2 * z), ranks


@pytest.mark.parametrize(
    ("sessions", "per_session", "icc", "decimals", "beyond_window"),
    [(50_000, 4, 0.5, None, False), (500, 10, 0.5, 2, False), (20, 20_000, 0.95, 3, True)],
)
def test_woodruff_window_selects_the_same_order_statistics_as_a_full_sort(
    sessions, per_session, icc, decimals, beyond_window
) -> None:
    # The interval's ends come from a window of ranks around the estimate; with a
    # design effect too large for the window (few huge, very unlike sessions) they come
    # from the whole sample. Either way: exactly the definition's order statistics,
    # ties at the estimate (latencies in whole milliseconds) included.
    rng = np.random.default_rng(14)
    values, ids = _clustered(rng, sessions, per_session, icc=icc)
    if decimals is not None:
        values = np.round(values, decimals)
    z, q = 1.96, 0.95
    estimate, se, ranks = _woodruff_by_definition(values, ids, q, z)
    reach = int(8 * z * math.sqrt(q * (1 - q) * len(values))) + 1000
    point = qs._rank(q, len(values))
    assert (max(point - ranks[0], ranks[1] - point) > reach) == beyond_window
    found = qs.woodruff(qs._prepare(values, ids), q, z)
    assert (found.estimate, found.standard_error) == (estimate, se)
    assert (found.n, found.clusters) == (len(values), len(np.unique(ids)))


class _Pooled:
    """`RankedValues` as an engine answers: clusters sharing (n_s, above_s) pooled into
    one row with its multiplicity, order statistics from a window only."""

    def __init__(self, values, ids):
        self.values, self.ids = np.asarray(values), np.asarray(ids)

    def count(self):
        return len(self.values)

    def ranked(self, first, last):
        return np.sort(self.values)[first : last + 1]

    def cluster_counts(self, estimate):
        codes = np.unique(self.ids, return_inverse=True)[1]
        sizes = np.bincount(codes)
        above = np.bincount(codes[self.values > estimate], minlength=len(sizes))
        pairs, multiplicity = np.unique(np.stack([sizes, above]), axis=1, return_counts=True)
        return pairs[0], pairs[1], multiplicity


@pytest.mark.parametrize("icc", [0.0, 0.5])
def test_woodruff_from_pooled_cluster_counts_equals_the_sample_path(icc) -> None:
    # The sufficient statistics an engine returns (N, a window of order statistics,
    # cluster counts pooled by (n_s, above_s)) give the interval the samples give.
    rng = np.random.default_rng(15)
    va, ia = _clustered(rng, 3_000, 8, icc=icc, shift=0.05)
    vb, ib = _clustered(rng, 9_000, 8, icc=icc)
    rows = qs.quantile_difference(va, ia, vb, ib, method="woodruff")
    pooled = qs.quantile_difference_ranked(_Pooled(va, ia), _Pooled(vb, ib))
    assert pooled.statistic == rows.statistic
    assert pooled.standard_error == pytest.approx(rows.standard_error, rel=1e-12)
    assert (pooled.ci.low, pooled.ci.high) == pytest.approx((rows.ci.low, rows.ci.high), rel=1e-12)
    assert (pooled.sessions_canary, pooled.sessions_control) == (3_000, 9_000)
    assert pooled.sufficient and pooled.method == rows.method


def test_clustered_share_se_is_the_sandwich_by_definition() -> None:
    # Σ_s (b_s - q n_s)² / N² · C / (C - 1), pooled rows weighted by their multiplicity
    sizes, above, q = np.array([3, 5, 2]), np.array([1, 0, 2]), 0.9
    n = 3 * 2 + 5 * 1 + 2 * 4
    by_hand = (2 * (2 - 0.9 * 3) ** 2 + (5 - 4.5) ** 2 + 4 * (0 - 1.8) ** 2) / n**2 * 7 / 6
    found = qs.clustered_share_se(q, n, sizes, above, np.array([2, 1, 4]))
    assert found == pytest.approx(math.sqrt(by_hand), rel=1e-12)


def test_woodruff_interval_coverage_on_clustered_aa_runs() -> None:
    rng = np.random.default_rng(12)
    runs = 300
    covered = 0
    for _ in range(runs):
        va, ia = _clustered(rng, 400, 20)
        vb, ib = _clustered(rng, 400, 20)
        covered += qs.quantile_difference(va, ia, vb, ib, method="woodruff").ci.contains(0.0)
    assert 0.92 <= covered / runs <= 0.98


def test_auto_method_switches_to_woodruff_above_the_bootstrap_limit(monkeypatch) -> None:
    rng = np.random.default_rng(13)
    va, ia = _clustered(rng, 300, 5)
    vb, ib = _clustered(rng, 300, 5)
    assert "bootstrap" in qs.quantile_difference(va, ia, vb, ib, n_resamples=100).method
    monkeypatch.setattr(qs, "BOOTSTRAP_MAX_SAMPLES", len(va) + len(vb) - 1)
    assert "Woodruff" in qs.quantile_difference(va, ia, vb, ib).method
    with pytest.raises(ValueError, match="unknown method"):
        qs.quantile_difference(va, ia, vb, ib, method="jackknife")
