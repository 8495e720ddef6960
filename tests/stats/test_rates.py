"""Rates: exact against scipy in the Poisson case, honest under overdispersion and
autocorrelation (small A/A and A/B simulations)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from wsanalysis.stats import rates


@pytest.mark.parametrize(
    ("y", "e", "m", "f"), [(30, 1000.0, 200, 9000.0), (3, 50.0, 40, 800.0), (0, 100.0, 25, 900.0)]
)
def test_poisson_case_is_scipy_binomtest(y: int, e: float, m: int, f: float) -> None:
    r = rates.compare_rates(y, e, m, f, method="poisson")
    p0 = e / (e + f)
    greater = stats.binomtest(y, y + m, p0, alternative="greater").pvalue
    less = stats.binomtest(y, y + m, p0, alternative="less").pvalue
    assert r.pvalue == pytest.approx(min(1.0, 2 * min(greater, less)), rel=1e-9)
    ci = stats.binomtest(y, y + m, p0).proportion_ci(0.95, method="exact")
    to_ratio = lambda p: p / (1 - p) * f / e  # noqa: E731
    assert r.ci.low == pytest.approx(to_ratio(ci.low), rel=1e-9, abs=1e-12)
    assert r.ci.high == pytest.approx(to_ratio(ci.high), rel=1e-9)
    assert r.canary == y / e and r.control == m / f
    assert r.dispersion == 1.0


def test_agrees_with_scipy_poisson_means_test() -> None:
    """A different exact test (the E-test) on the same counts reaches the same verdicts."""
    for y, e, m, f in [
        (60, 1000.0, 450, 9000.0),
        (50, 1000.0, 450, 9000.0),
        (90, 1000.0, 450, 9000.0),
    ]:
        ours = rates.compare_rates(y, e, m, f, method="poisson").pvalue
        ref = stats.poisson_means_test(y, e, m, f).pvalue
        assert abs(ours - ref) < 0.03
        assert (ours < 0.05) == (ref < 0.05)


def test_rate_against_bound_is_garwood() -> None:
    b = rates.rate_against_bound(12, 400.0, 0.05, method="poisson")
    assert stats.poisson.cdf(12, b.ci.high * 400.0) == pytest.approx(0.025, rel=1e-8)
    assert stats.poisson.sf(11, b.ci.low * 400.0) == pytest.approx(0.025, rel=1e-8)
    assert b.pvalue_above == pytest.approx(stats.poisson.cdf(12, 0.05 * 400.0), rel=1e-10)


def test_noninferiority_ratio_matches_binomtest() -> None:
    r = rates.compare_rates(100, 10000.0, 1000, 90000.0, method="poisson")
    p0 = 1.2 * 10000.0 / (1.2 * 10000.0 + 90000.0)
    ref = stats.binomtest(100, 1100, p0, alternative="less").pvalue
    assert r.noninferiority(1.2) == pytest.approx(ref, rel=1e-9)
    assert r.noninferiority(2.0) < 1e-6  # clearly better than twice control
    worse = rates.compare_rates(200, 10000.0, 1000, 90000.0, method="poisson")
    assert worse.noninferiority(1.2) > 0.5


def test_confidence_interval_at_other_levels() -> None:
    r = rates.compare_rates([5, 7, 9, 4], [100.0] * 4, [50, 60, 70, 45], [900.0] * 4)
    wide = r.confidence_interval(0.99)
    assert wide.low < r.ci.low < r.statistic < r.ci.high < wide.high


def _simulate(rng: np.random.Generator, ratio: float, buckets: int = 60, base: float = 0.02):
    """Diurnal load, shared and per-variant AR(1) log-rate noise, gamma overdispersion."""
    t = np.arange(buckets)
    load = 4000.0 * (1 + 0.5 * np.sin(2 * np.pi * t / 1440.0 + rng.uniform(0, 6.3)))

    def ar1(phi: float, sigma: float) -> np.ndarray:
        x = np.empty(buckets)
        x[0] = rng.normal(0, sigma / np.sqrt(1 - phi**2))
        for i in range(1, buckets):
            x[i] = phi * x[i - 1] + rng.normal(0, sigma)
        return x

    common = ar1(0.9, 0.15)
    out = []
    for share, r in ((0.1, base * ratio), (0.9, base)):
        exposure = rng.poisson(load * share).astype(float)
        mean = exposure * r * np.exp(common + ar1(0.6, 0.25))
        out += [rng.poisson(mean * rng.gamma(4.0, 0.25, buckets)), exposure]
    return out


def test_aa_false_positive_rate_near_nominal_and_poisson_is_not() -> None:
    rng = np.random.default_rng(42)
    runs = 300
    robust = poisson = 0
    for _ in range(runs):
        y, e, m, f = _simulate(rng, 1.0)
        robust += rates.compare_rates(y, e, m, f).pvalue < 0.05
        poisson += rates.compare_rates(y, e, m, f, method="poisson").pvalue < 0.05
    assert robust / runs <= 0.09
    assert poisson / runs > 0.12  # the naive test is fooled by overdispersion


def test_ab_power_for_doubled_error_rate() -> None:
    rng = np.random.default_rng(43)
    runs = 100
    hits = sum(rates.compare_rates(*_simulate(rng, 2.0)).ci.low > 1.0 for _ in range(runs))
    assert hits / runs >= 0.8


def test_dispersion_near_one_for_poisson_counts() -> None:
    rng = np.random.default_rng(44)
    e = np.full(200, 500.0)
    f = np.full(200, 4500.0)
    d = [
        rates.compare_rates(rng.poisson(e * 0.02), e, rng.poisson(f * 0.02), f).dispersion
        for _ in range(50)
    ]
    assert np.median(d) < 1.3


def test_batch_variance_recovers_ar1_long_run_variance() -> None:
    rng = np.random.default_rng(45)
    phi, n = 0.6, 40000
    x = np.empty(n)
    x[0] = 0.0
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.normal()
    x -= x.mean()
    long_run = n / (1 - phi) ** 2  # variance of the sum for unit innovations
    var, df = rates.batch_variance(x)
    assert df == pytest.approx(n / round(n / 30) - 1)  # 40000 buckets: K capped at 30
    assert var == pytest.approx(long_run, rel=0.35)


def _disjoint_batch_variance(g: np.ndarray, k: int) -> float:
    sums = np.array([part.sum() for part in np.array_split(g, k)])
    sums -= sums.mean()
    return k / (k - 1) * float(sums @ sums)


def _ar1_series(rng: np.random.Generator, phi: float, n: int) -> np.ndarray:
    x = np.empty(n)
    x[0] = rng.normal() / np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.normal()
    return x - x.mean()


def _effective_df(estimates: list[float]) -> float:
    """2 / CV², the degrees of freedom of a scaled chi-square with that spread."""
    e = np.asarray(estimates)
    return 2 * e.mean() ** 2 / e.var()


def test_overlapping_batches_keep_the_bias_and_add_degrees_of_freedom() -> None:
    # An hour of 1-minute buckets, batch length 60 / 8: on white noise the overlapping
    # estimator has about 1.5 (K - 1) degrees of freedom (disjoint batches: K - 1), more
    # than the K - 1 it claims; on AR(1) buckets it has the same mean as disjoint batches.
    rng = np.random.default_rng(50)
    n, k = 60, 8
    white = [_ar1_series(rng, 0.0, n) for _ in range(3000)]
    overlapping = [rates.batch_variance(x, k)[0] for x in white]
    disjoint = [_disjoint_batch_variance(x, k) for x in white]
    claimed = rates.batch_variance(white[0], k)[1]
    assert claimed == n / round(n / k) - 1  # K - 1 of the batch length actually used
    assert _effective_df(overlapping) == pytest.approx(1.5 * (k - 1), rel=0.15)
    assert _effective_df(disjoint) == pytest.approx(k - 1, rel=0.15)
    assert np.mean(overlapping) == pytest.approx(n, rel=0.05)
    correlated = [_ar1_series(rng, 0.5, n) for _ in range(3000)]
    assert np.mean([rates.batch_variance(x, k)[0] for x in correlated]) == pytest.approx(
        np.mean([_disjoint_batch_variance(x, k) for x in correlated]), rel=0.05
    )


def test_rate_difference_absolute_margin() -> None:
    e = np.full(60, 1000.0)
    f = np.full(60, 9000.0)
    rng = np.random.default_rng(46)
    d = rates.rate_difference(rng.poisson(e * 0.010), e, rng.poisson(f * 0.010), f)
    assert d.ci.contains(0.0)
    assert d.noninferiority(0.005) < 0.05  # within half a percentage point
    assert d.power(0.005) > 0.5


def test_minimum_data_and_bad_input() -> None:
    r = rates.compare_rates(1, 100.0, 3, 900.0)
    assert not r.sufficient and "minimum" in r.reason
    with pytest.raises(ValueError):
        rates.compare_rates([1, 2], [10.0, 10.0], [1], [10.0])
    with pytest.raises(ValueError):
        rates.compare_rates(1, 0.0, 1, 10.0)


def _spike_buckets(
    rng: np.random.Generator, burst: float, buckets: int = 48, start: int = 20, length: int = 4
):
    """15-min buckets over 12 h; 4401 closes at ~0.5% of connections, a burst in [start, start+length)."""
    e = rng.poisson(400, buckets).astype(float)
    f = rng.poisson(3600, buckets).astype(float)
    mult = np.ones(buckets)
    mult[start : start + length] = burst
    noise = rng.gamma(5.0, 0.2, (2, buckets))
    return rng.poisson(e * 0.005 * mult * noise[0]), e, rng.poisson(f * 0.005 * noise[1]), f


def test_spike_in_one_hour_is_found_and_not_averaged_away() -> None:
    rng = np.random.default_rng(47)
    y, e, m, f = _spike_buckets(rng, burst=6.0)
    spike = rates.spike_test(y, e, m, f)
    assert spike.spiked and set(spike.spikes) <= set(range(20, 24))
    assert 20 <= spike.worst < 24
    whole = rates.compare_rates(y, e, m, f)
    assert whole.statistic < 1.6  # the 12-hour average hides most of it


def test_spike_false_alarm_rate_with_overdispersion() -> None:
    rng = np.random.default_rng(48)
    runs = 200
    alarms = sum(rates.spike_test(*_spike_buckets(rng, burst=1.0)).spiked for _ in range(runs))
    naive = sum(
        rates.spike_test(*_spike_buckets(rng, burst=1.0), dispersion=1.0).spiked
        for _ in range(runs)
    )
    assert alarms / runs <= 0.10  # about 6% over 600 runs; family-wise over 48 buckets
    assert naive >= alarms


def test_spike_pvalues_are_exact_binomial_without_dispersion() -> None:
    y, e, m, f = [3, 9], [100.0, 100.0], [20, 21], [900.0, 900.0]
    r = rates.spike_test(y, e, m, f, dispersion=1.0)
    assert r.pvalues[1] == pytest.approx(
        stats.binomtest(9, 30, 0.1, alternative="greater").pvalue, rel=1e-9
    )
    assert r.adjusted[1] == pytest.approx(min(1.0, 2 * r.pvalues[1]))


def test_garwood_interval_is_scipy_exact_poisson():
    from wsanalysis.stats.rates import garwood_interval

    low, high = garwood_interval(7, 1000.0, 0.95)
    assert low == pytest.approx(stats.chi2.ppf(0.025, 14) / 2 / 1000)
    assert high == pytest.approx(stats.chi2.ppf(0.975, 16) / 2 / 1000)
    assert garwood_interval(0, 1000.0, 0.95) == (0.0, pytest.approx(-math.log(0.025) / 1000))


def test_rate_excess_pvalue_rules_out_an_excess_from_exposure_alone():
    from wsanalysis.stats.rates import rate_excess_pvalue

    # no event anywhere: 6,000 canary connections rule out +1 per 100, 24 do not
    assert rate_excess_pvalue(0, 6000, 0, 54000, 0.01) < 1e-6
    assert rate_excess_pvalue(0, 24, 0, 216, 0.01) > 0.5
    # at exactly the tolerance the claim is shown at most alpha of the time
    rng = np.random.default_rng(1)
    shown = sum(
        rate_excess_pvalue(rng.poisson(0.012 * 2000), 2000, rng.poisson(0.002 * 18000), 18000, 0.01)
        <= 0.025
        for _ in range(400)
    )
    assert shown <= 400 * 0.025 + 6


def _synthetic_contrast(scenario, seed: int) -> tuple[float, float, float]:
    """(log rate ratio, its batch-means variance, claimed df) of one synthetic canary's
    error counts, batches as the judge takes them."""
    from wsanalysis.canary.evidence import gate_batches
    from wsanalysis.canary.synthetic import gate_counts

    counts = gate_counts(scenario, seed)
    c, k = counts.variant("canary"), counts.variant("control")
    y, e = c["events"].to_numpy(), c["exposure"].to_numpy()
    m, f = k["events"].to_numpy(), k["exposure"].to_numpy()
    r = rates.compare_rates(y, e, m, f, batches=gate_batches(len(y)))
    return math.log(r.statistic), r.standard_error**2 / r.dispersion * _raw_phi(y, e, m, f), r.df


def _raw_phi(y, e, m, f) -> float:
    """The contrast's batch-means dispersion before the floor and the prior."""
    from wsanalysis.canary.evidence import gate_batches

    ys, ms = y.sum(), m.sum()
    g = (y - ys / e.sum() * e) / ys - (m - ms / f.sum() * f) / ms
    var, _ = rates.batch_variance(g, gate_batches(len(y)))
    return var / (1 / ys + 1 / ms)


@pytest.mark.slow
@pytest.mark.parametrize(("hours", "traffic"), [(1, 100_000), (3, 500_000)])
def test_effective_degrees_of_freedom_are_at_least_the_claimed(hours: int, traffic: int):
    """Over 1,500 synthetic canaries (overdispersed, autocorrelated counts: the judge's
    own synthetic), the batch-means variance behaves like a scaled chi-square with at
    least the df the t interval claims (K - 1), bias included: 2 mean² / var of
    estimate / true variance. The overlapping batches' white-noise claim, 1.5 (K - 1),
    is not met there (8.7 at 1 h × 100k/h against 10.5)."""
    from wsanalysis.canary.synthetic import CanaryCase

    scenario = CanaryCase(hours=hours, connections_per_hour=traffic)
    runs = [_synthetic_contrast(scenario, seed) for seed in range(1500)]
    logs = np.array([r[0] for r in runs])
    ratio = np.array([r[1] for r in runs]) / logs.var()
    claimed = runs[0][2]
    effective = 2 * ratio.mean() ** 2 / ratio.var()
    assert effective >= claimed, (effective, claimed)
    assert ratio.mean() >= 0.85  # the batch-means bias under minute-scale autocorrelation
