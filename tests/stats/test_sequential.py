"""Anytime validity: looks every 5 min over 48 h keep false alarms <= alpha, while a
repeated fixed-sample test does not; a doubled error rate is caught fast."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from wsanalysis.stats import sequential

LOOKS = 48 * 12  # every 5 minutes for 48 h


def _looks(rng: np.random.Generator, ratio: float, looks: int = LOOKS, per_look: float = 60.0):
    """Increments per look: exposure with a diurnal swing, Poisson errors, 10% canary."""
    t = np.arange(looks)
    load = per_look * (1 + 0.5 * np.sin(2 * np.pi * t / 288))
    e = rng.poisson(load * 0.1 * 50).astype(float)
    f = rng.poisson(load * 0.9 * 50).astype(float)
    return rng.poisson(e * 0.02 * ratio), e, rng.poisson(f * 0.02), f


def test_type_one_error_stays_below_alpha_over_576_looks() -> None:
    rng = np.random.default_rng(0)
    runs = 300
    false_alarms = naive = 0
    for _ in range(runs):
        y, e, m, f = _looks(rng, 1.0)
        false_alarms += sequential.sequential_rate_test(y, e, m, f, alpha=0.05).rejected
        # the naive pipeline: a fixed-sample one-sided test at every look
        cy, cn = np.cumsum(y), np.cumsum(y + m)
        share = np.cumsum(e) / np.cumsum(e + f)
        p = stats.binom.sf(cy - 1, cn, share)
        naive += bool(np.any(p[11:] < 0.05))
    assert false_alarms / runs <= 0.05
    assert naive / runs > 0.15


def test_doubled_error_rate_is_caught_within_half_an_hour() -> None:
    rng = np.random.default_rng(1)
    stops = []
    for _ in range(100):
        r = sequential.sequential_rate_test(*_looks(rng, 2.0))
        assert r.rejected
        stops.append(r.stopped_at + 1)
    assert np.median(stops) * 5 <= 30


def test_noninferiority_bound_and_direction() -> None:
    rng = np.random.default_rng(2)
    y, e, m, f = _looks(rng, 1.0, looks=200)
    # canary equal to control is not shown worse than 1.2× control ...
    assert not sequential.sequential_rate_test(y, e, m, f, bound=1.2).rejected
    # ... and is shown better than 1.5× control (decrease direction, H0: ratio >= 1.5)
    assert sequential.sequential_rate_test(y, e, m, f, bound=1.5, worse="decrease").rejected


def test_evalues_and_pvalue_are_consistent() -> None:
    rng = np.random.default_rng(3)
    r = sequential.sequential_rate_test(*_looks(rng, 1.5, looks=100))
    assert r.pvalue == pytest.approx(min(1.0, 1.0 / r.e_values.max()))
    assert r.rejected == (r.e_values.max() >= 20.0)
    assert r.events_canary > 0


def test_dispersion_tempering_is_more_conservative() -> None:
    rng = np.random.default_rng(4)
    args = _looks(rng, 1.5, looks=60)
    plain = sequential.sequential_rate_test(*args)
    tempered = sequential.sequential_rate_test(*args, dispersion=3.0)
    assert tempered.e_values.max() < plain.e_values.max()
    with pytest.raises(ValueError):
        sequential.sequential_rate_test([1], [1], [1, 2], [1, 2])


def test_confidence_sequence_covers_the_true_ratio_at_every_look() -> None:
    rng = np.random.default_rng(5)
    grid = np.exp(np.arange(np.log(0.4), np.log(4.0), 0.05))
    runs, misses = 30, 0
    for _ in range(runs):
        y, e, m, f = _looks(rng, 1.5, looks=48)
        cs = sequential.rate_confidence_sequence(y, e, m, f, ratios=grid, grid_points=15)
        misses += bool(np.any((cs.lower > 1.5 * 1.06) | (cs.upper < 1.5 / 1.06)))
        assert np.all(np.diff(cs.lower) >= 0) and np.all(np.diff(cs.upper) <= 0)  # only shrinks
    assert misses / runs <= 0.05
    lo, hi = cs.at(47)
    assert lo < 1.5 < hi and hi / lo < 2.0
