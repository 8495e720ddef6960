"""The multi-scale scan: its false-alarm rate on null counts of several shapes is within
the rate it states, and elevations of every length are found as one span.

The stated rate is tiny (PER_SERIES false elevations per series per day), so the null
runs ask for a larger one (`per_series=PER_DAY`, same construction) that 200 simulated
days can see; the construction does not change with the rate, only the level does.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from wsanalysis.incident import scan

DAY = 1440
PER_DAY = 5.0
DAYS = 200


def _diurnal() -> np.ndarray:
    t = np.arange(DAY)
    return 1 + 0.4 * np.cos(2 * np.pi * (t / DAY - 0.3))


def _ou(rng, sigma: float, minutes: float) -> np.ndarray:
    phi = np.exp(-1 / minutes)
    noise = rng.normal(0, sigma * np.sqrt(1 - phi**2), DAY)
    x = np.empty(DAY)
    x[0] = rng.normal(0, sigma)
    for i in range(1, DAY):
        x[i] = phi * x[i - 1] + noise[i]
    return np.exp(x - sigma**2 / 2)


def _clustered(rng, clusters: np.ndarray, mean_size: float) -> np.ndarray:
    """A compound Poisson count per minute: Poisson clusters of geometric size."""
    counts = rng.poisson(clusters)
    out = np.zeros(len(counts))
    hit = counts > 0
    out[hit] = [rng.geometric(1 / mean_size, k).sum() for k in counts[hit]]
    return out


NULLS = {
    # errors per open connection on a daily curve (exposure known)
    "poisson on a daily curve": lambda rng, x: rng.poisson(3 * x),
    # gamma-Poisson minutes: bursty load the exposure does not show
    "negative binomial": lambda rng, x: rng.poisson(rng.gamma(2, 1.5 * x / 1)),
    # a few clients throwing many errors each
    "clustered errors": lambda rng, x: _clustered(rng, 0.2 * x, 5),
    # rare closes, each a client's burst of retries: most minutes see none
    "sparse clusters": lambda rng, x: _clustered(rng, 0.03 * x, 4),
    # load swings minutes long on top of the daily curve
    "autocorrelated swings": lambda rng, x: rng.poisson(20 * x * _ou(rng, 0.2, 10)),
}


@pytest.mark.parametrize("name", list(NULLS))
def test_false_elevations_per_day_are_within_the_stated_rate(name):
    rng = np.random.default_rng(27)
    x = _diurnal()
    found = [scan.scan(NULLS[name](rng, x), x, per_series=PER_DAY) for _ in range(DAYS)]
    false = sum(len(f) for f in found)
    strong = sum(w.strong for f in found for w in f)
    # one-sided: the count must not be significantly above the stated rate (Poisson, 1%)
    assert false <= stats.poisson.ppf(0.99, PER_DAY * DAYS), (name, false / DAYS)
    if name != "autocorrelated swings":  # a known limit: see below
        assert strong <= stats.poisson.ppf(0.99, PER_DAY / scan.STRICT * DAYS), (name, strong)


def test_log_normal_swings_exceed_the_strict_rate_by_a_few_times_only():
    # Minutes-long swings of the rate itself (not of the load, which the exposure takes
    # out), log-normal, at 20 events a minute: the gamma the test mixes over has a lighter
    # tail, so the strict level is exceeded. Measured, so a change that makes it worse
    # shows: at most 5 times the strict rate.
    rng = np.random.default_rng(27)
    x = _diurnal()
    found = [scan.scan(NULLS["autocorrelated swings"](rng, x), x, per_series=PER_DAY)
             for _ in range(DAYS)]  # fmt: skip
    strong = sum(w.strong for f in found for w in f)
    assert strong <= stats.poisson.ppf(0.99, 5 * PER_DAY / scan.STRICT * DAYS)


def _inject(rng, base: np.ndarray, start: int, minutes: int, factor: float, sizes: float = 1.0):
    rate = base.copy()
    rate[start : start + minutes] *= factor
    if sizes > 1:
        return _clustered(rng, rate / sizes, sizes)
    return rng.poisson(rate).astype(float)


@pytest.mark.parametrize(
    ("label", "base", "minutes", "factor", "sizes"),
    [
        ("auth x30 for an hour, rare clustered closes", 0.07, 60, 30.0, 3.0),
        ("errors x2 for two hours", 2.0, 120, 2.0, 1.0),
        ("errors x5 for ten minutes", 1.0, 10, 5.0, 1.0),
        ("restart burst of one minute", 0.01, 1, 20000.0, 1.0),
    ],
)
def test_an_elevation_of_any_length_is_one_span_over_it(label, base, minutes, factor, sizes):
    rng = np.random.default_rng(28)
    start, length = 300, 720
    runs = 20
    spans = []
    for _ in range(runs):
        y = _inject(rng, np.full(length, base), start, minutes, factor, sizes)
        hits = [w for w in scan.scan(y) if w.start < start + minutes and w.end > start]
        spans.append(hits)
    found = [h[0] for h in spans if len(h) == 1]
    assert len(found) >= runs - 1, label  # found, and as one span
    slack = max(5, minutes // 3)  # where the data put its edges, within a third of it
    close = [w for w in found if abs(w.start - start) <= slack
             and abs(w.end - (start + minutes)) <= slack]  # fmt: skip
    assert len(close) >= 0.9 * runs, label
    assert all(w.strong for w in found), label


def test_a_second_incident_is_not_hidden_by_a_first_much_larger_one():
    # a restart's thousands of refused handshakes would widen every test of the day
    rng = np.random.default_rng(29)
    y = rng.poisson(np.full(1440, 0.05)).astype(float)
    y[600] += 5000
    y[1200:1203] += 90
    found = [(w.start, w.end) for w in scan.scan(y)]
    assert any(a <= 600 < b for a, b in found)
    assert any(a <= 1201 < b for a, b in found)


def test_the_level_is_the_series_share_of_the_daily_target_over_its_windows():
    for minutes in (720, DAY, 2 * DAY):
        per_day = scan.level(minutes) * scan.tests_per_day(minutes)
        assert per_day == pytest.approx(scan.PER_SERIES)
    assert max(scan.scales_for(720)) == 120 and min(scan.scales_for(720)) == 1
