"""Kaplan–Meier, duration quantiles and log-rank against lifelines on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import qth_survival_times

from wsanalysis.stats import survival

pytestmark = pytest.mark.filterwarnings("ignore:Approximating using")


def _censored(rng: np.random.Generator, n: int, scale: float, window: float, rounding: float = 1.0):
    """Connections opened uniformly over a window; still open at its end → censored."""
    life = rng.weibull(0.8, n) * scale
    opened = rng.uniform(0, window, n)
    observed = np.minimum(life, window - opened)
    durations = np.round(observed / rounding) * rounding  # ties, as real timestamps have
    return durations, life <= window - opened


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kaplan_meier_matches_lifelines(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t, e = _censored(rng, 800, 3600.0, 6 * 3600.0, rounding=60.0)
    ours = survival.kaplan_meier(t, e)
    kmf = KaplanMeierFitter().fit(t, e)
    grid = np.unique(t)
    np.testing.assert_allclose(
        ours.survival_at(grid), kmf.survival_function_at_times(grid).to_numpy(), rtol=1e-12
    )
    lower, upper = ours.confidence_band()
    ci = kmf.confidence_interval_.loc[grid]
    np.testing.assert_allclose(lower, ci.iloc[:, 0].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(upper, ci.iloc[:, 1].to_numpy(), rtol=1e-9)
    assert ours.n_events == int(e.sum())


@pytest.mark.parametrize("seed", [0, 1])
def test_left_truncated_kaplan_meier_matches_lifelines_and_removes_the_length_bias(
    seed: int,
) -> None:
    """Connections opened before the window are seen only if they lived into it: entered
    at the age they had then (lifelines' `entry`), the fit matches lifelines, and its
    median is the true one where counting them from 0 overstates it."""
    rng = np.random.default_rng(seed)
    n, window, scale = 6000, 6 * 3600.0, 1800.0
    opened = rng.uniform(-3 * 3600.0, window, n)
    life = rng.exponential(scale, n)
    seen = opened + life >= 0  # alive when the window began, or opened in it
    opened, life = opened[seen], life[seen]
    observed = opened + life <= window
    durations = np.where(observed, life, window - opened)
    entry = np.maximum(-opened, 0.0)
    ours = survival.kaplan_meier(durations, observed, entry=entry)
    kmf = KaplanMeierFitter().fit(durations, observed, entry=entry)
    grid = np.unique(durations)[::50]
    np.testing.assert_allclose(
        ours.survival_at(grid), kmf.survival_function_at_times(grid).to_numpy(), rtol=1e-9
    )
    truth = scale * np.log(2)
    assert abs(ours.duration_quantile(0.5).estimate / truth - 1) < 0.04
    naive = survival.kaplan_meier(durations, observed).duration_quantile(0.5).estimate
    assert naive / truth > 1.02  # the length bias the entry ages remove (3-4% here)
    assert abs(ours.duration_quantile(0.5).estimate - truth) < abs(naive - truth)
    with pytest.raises(ValueError, match="entry"):
        survival.kaplan_meier(durations, observed, entry=durations + 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_kaplan_meier_matches_lifelines_and_the_repeated_rows(seed: int) -> None:
    # What an engine returns: one row per (duration, observed) with its count.
    rng = np.random.default_rng(seed)
    t, e = _censored(rng, 2000, 1800.0, 6 * 3600.0, rounding=60.0)
    keys, counts = np.unique(np.stack([t, e]), axis=1, return_counts=True)
    dt, de = keys[0], keys[1].astype(bool)
    ours = survival.kaplan_meier(dt, de, weights=counts)
    rows = survival.kaplan_meier(t, e)
    assert len(dt) < len(t) / 4  # the grouping is what makes it small
    for name in ("timeline", "survival", "at_risk", "events", "censored", "greenwood"):
        np.testing.assert_allclose(getattr(ours, name), getattr(rows, name), rtol=1e-12)
    assert (ours.n, ours.n_events) == (rows.n, rows.n_events) == (len(t), int(e.sum()))
    kmf = KaplanMeierFitter().fit(dt, de, weights=counts)
    grid = np.unique(t)
    np.testing.assert_allclose(
        ours.survival_at(grid), kmf.survival_function_at_times(grid).to_numpy(), rtol=1e-12
    )
    lower, upper = ours.confidence_band()
    ci = kmf.confidence_interval_.loc[grid]
    np.testing.assert_allclose(lower, ci.iloc[:, 0].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(upper, ci.iloc[:, 1].to_numpy(), rtol=1e-9)
    with pytest.raises(ValueError, match="whole counts"):
        survival.kaplan_meier(dt, de, weights=counts * 0.5)


@pytest.mark.parametrize("p", [0.5, 0.9, 0.95])
def test_duration_quantiles_and_intervals_match_lifelines(p: float) -> None:
    rng = np.random.default_rng(7)
    t, e = _censored(rng, 3000, 1800.0, 24 * 3600.0, rounding=1.0)
    ours = survival.kaplan_meier(t, e).duration_quantile(p)
    kmf = KaplanMeierFitter().fit(t, e)
    assert ours.estimate == kmf.percentile(1 - p)
    ci = qth_survival_times(1 - p, kmf.confidence_interval_)
    assert ours.ci.low == ci.iloc[0, 0]
    assert ours.ci.high == ci.iloc[0, 1]
    assert ours.ci.low <= ours.estimate <= ours.ci.high


def test_quantile_not_reached_is_infinite() -> None:
    t = np.array([1.0, 2.0, 3.0, 10.0, 10.0, 10.0])
    e = np.array([1, 1, 0, 0, 0, 0], bool)
    q = survival.kaplan_meier(t, e, min_events=1).duration_quantile(0.95)
    assert q.estimate == np.inf
    kmf = KaplanMeierFitter().fit(t, e)
    assert kmf.percentile(0.05) == np.inf


@pytest.mark.parametrize("shift", [1.0, 1.3])
def test_logrank_matches_lifelines(shift: float) -> None:
    rng = np.random.default_rng(11)
    ta, ea = _censored(rng, 600, 1800.0 * shift, 4 * 3600.0, rounding=30.0)
    tb, eb = _censored(rng, 900, 1800.0, 4 * 3600.0, rounding=30.0)
    ours = survival.logrank(ta, tb, ea, eb)
    ref = logrank_test(ta, tb, event_observed_A=ea, event_observed_B=eb)
    assert ours.statistic == pytest.approx(ref.test_statistic, rel=1e-9)
    assert ours.pvalue == pytest.approx(ref.p_value, rel=1e-7)


def test_naive_mean_of_completed_is_biased_and_km_is_not() -> None:
    """Exponential lifetimes with mean 1 h under a 2 h window: KM median ≈ ln 2 h."""
    rng = np.random.default_rng(3)
    n = 20000
    life = rng.exponential(3600.0, n)
    opened = rng.uniform(0, 7200.0, n)
    t = np.minimum(life, 7200.0 - opened)
    e = life <= 7200.0 - opened
    km = survival.kaplan_meier(t, e).duration_quantile(0.5)
    truth = 3600.0 * np.log(2)
    assert km.ci.low <= truth <= km.ci.high
    naive_median = float(np.median(t[e]))
    assert naive_median < 0.8 * truth


def test_quantile_at_least_is_consistent_with_the_interval() -> None:
    rng = np.random.default_rng(5)
    t, e = _censored(rng, 4000, 7200.0, 24 * 3600.0)
    km = survival.kaplan_meier(t, e)
    q = km.duration_quantile(0.5)
    assert km.quantile_at_least(q.ci.low * 0.8, 0.5) < 0.025
    assert km.quantile_at_least(q.ci.high * 1.2, 0.5) > 0.975
    assert 0.2 < km.quantile_at_least(q.estimate, 0.5) < 0.8


def test_aa_quantile_difference_coverage() -> None:
    """A/A: the 95% interval for the p50 difference covers 0 about 95% of the time."""
    rng = np.random.default_rng(21)
    covered = 0
    runs = 200
    for _ in range(runs):
        ta, ea = _censored(rng, 400, 1800.0, 6 * 3600.0)
        tb, eb = _censored(rng, 400, 1800.0, 6 * 3600.0)
        c = survival.compare_duration_quantiles(
            survival.kaplan_meier(ta, ea), survival.kaplan_meier(tb, eb), 0.5
        )
        covered += c.ci.contains(0.0)
    assert 0.90 <= covered / runs <= 0.995


def test_ab_logrank_power() -> None:
    rng = np.random.default_rng(22)
    hits = 0
    for _ in range(100):
        ta, ea = _censored(rng, 500, 1800.0 * 0.7, 6 * 3600.0)
        tb, eb = _censored(rng, 500, 1800.0, 6 * 3600.0)
        hits += survival.logrank(ta, tb, ea, eb).pvalue < 0.05
    assert hits >= 80


def test_aa_logrank_false_positive_rate() -> None:
    rng = np.random.default_rng(23)
    hits = sum(survival.logrank(*_pair(rng)).pvalue < 0.05 for _ in range(300))
    assert hits / 300 <= 0.08


def _pair(rng: np.random.Generator):
    ta, ea = _censored(rng, 200, 1800.0, 6 * 3600.0)
    tb, eb = _censored(rng, 200, 1800.0, 6 * 3600.0)
    return ta, tb, ea, eb


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError):
        survival.kaplan_meier([1.0, -1.0])
    with pytest.raises(ValueError):
        survival.kaplan_meier([1.0, 2.0], [True])
