"""The shared Comparison object: intervals at other levels, non-inferiority, power."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from wsanalysis.stats.results import Comparison, ConfidenceInterval


def _diff(statistic: float, se: float) -> Comparison:
    def interval(level: float) -> tuple[float, float]:
        z = stats.norm.ppf(1 - (1 - level) / 2)
        return statistic - z * se, statistic + z * se

    return Comparison(
        effect="difference",
        statistic=statistic,
        pvalue=2 * stats.norm.sf(abs(statistic) / se),
        canary=1.0 + statistic,
        control=1.0,
        standard_error=se,
        ci=ConfidenceInterval(*interval(0.95), 0.95),
        n_canary=100,
        n_control=900,
        sufficient=True,
        method="test",
        _interval=interval,
    )


def test_noninferiority_is_one_sided_normal() -> None:
    c = _diff(0.02, 0.03)
    assert c.noninferiority(0.1) == pytest.approx(stats.norm.cdf((0.02 - 0.1) / 0.03))
    assert c.noninferiority(0.1, worse="decrease") == pytest.approx(
        stats.norm.sf((0.02 - 0.1) / 0.03)
    )


def test_power_at_the_detectable_effect() -> None:
    c = _diff(0.0, 0.05)
    z = stats.norm.ppf(0.95)
    # an effect of (z_0.95 + z_0.8) × se is caught with 80% power
    effect = (z + stats.norm.ppf(0.8)) * 0.05
    assert c.power(effect) == pytest.approx(0.8)
    assert c.power(-effect, worse="decrease") == pytest.approx(0.8)
    assert c.power(0.0) == pytest.approx(0.05)


def test_ratio_power_works_on_the_log_scale() -> None:
    se = 0.1
    c = Comparison(
        effect="ratio", statistic=1.0, pvalue=1.0, canary=0.01, control=0.01, standard_error=se,
        ci=ConfidenceInterval(math.exp(-0.196), math.exp(0.196), 0.95), n_canary=1, n_control=1,
        sufficient=True, method="test",
    )  # fmt: skip
    effect = math.exp((stats.norm.ppf(0.95) + stats.norm.ppf(0.9)) * se)
    assert c.power(effect) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        c.confidence_interval(0.9)  # no recipe for other levels
    assert c.confidence_interval() is c.ci


def test_interval_at_other_levels() -> None:
    c = _diff(0.02, 0.03)
    ci = c.confidence_interval(0.99)
    assert ci.level == 0.99 and ci.low < c.ci.low and ci.high > c.ci.high
