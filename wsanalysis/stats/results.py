"""Result objects shared by the statistics modules.

Every comparison of canary against control returns a `Comparison`: the estimate per
variant, the effect (a ratio or a difference) with its confidence interval, a two-sided
p-value for "no difference", the counts it used and a `sufficient` flag, so a judge can
consume rates, quantiles and durations the same way (scipy.stats style: `statistic`,
`pvalue`, `confidence_interval(level)`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from scipy import stats

Effect = Literal["ratio", "difference"]
Worse = Literal["increase", "decrease"]


@dataclass(frozen=True)
class ConfidenceInterval:
    """A two-sided interval at `level` (scipy names its bounds `low` and `high`)."""

    low: float
    high: float
    level: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Canary against control for one metric.

    `statistic` is the effect: canary/control for `effect == "ratio"`, canary - control
    for `effect == "difference"`. `standard_error` is on the scale the test works on
    (log scale for a ratio), so `power()` and `noninferiority()` work for every kind.
    `sufficient` is False when the data are below the method's stated minimum; a judge
    must then call the gate inconclusive, never pass.
    """

    effect: Effect
    statistic: float
    pvalue: float
    canary: float
    control: float
    standard_error: float
    ci: ConfidenceInterval
    n_canary: int
    n_control: int
    sufficient: bool
    method: str
    df: float = math.inf
    reason: str = ""
    _interval: Callable[[float], tuple[float, float]] | None = field(
        default=None, repr=False, compare=False
    )

    def confidence_interval(self, confidence_level: float | None = None) -> ConfidenceInterval:
        """The interval for `statistic`; another level is recomputed by the method."""
        if confidence_level is None or confidence_level == self.ci.level:
            return self.ci
        if self._interval is None:
            raise ValueError(f"{self.method} keeps only its {self.ci.level:.0%} interval")
        low, high = self._interval(confidence_level)
        return ConfidenceInterval(low, high, confidence_level)

    # -- helpers a judge needs, on the test scale ------------------------------------
    def _scale(self, value: float) -> float:
        if self.effect == "ratio":
            return math.log(value) if value > 0 else -math.inf
        return value

    def _quantile(self, p: float) -> float:
        if math.isinf(self.df):
            return float(stats.norm.ppf(p))
        return float(stats.t.ppf(p, self.df))

    def _cdf(self, z: float) -> float:
        if math.isinf(self.df):
            return float(stats.norm.cdf(z))
        return float(stats.t.cdf(z, self.df))

    def noninferiority(self, bound: float, worse: Worse = "increase") -> float:
        """One-sided p-value of "canary is at least as bad as `bound`".

        `bound` is on the scale of `statistic` (e.g. 1.1 for a ratio margin of +10%,
        0.1 for a difference of +100 ms expressed in seconds). A small p-value shows the
        canary is better than the bound (non-inferior).
        """
        if not (self.standard_error > 0) or not math.isfinite(self.statistic):
            return math.nan
        z = (self._scale(self.statistic) - self._scale(bound)) / self.standard_error
        return self._cdf(z) if worse == "increase" else 1.0 - self._cdf(z)

    def power(self, effect: float, alpha: float = 0.05, worse: Worse = "increase") -> float:
        """Power of a one-sided level-`alpha` test to see a true effect of `effect`.

        Uses the observed standard error: "had the canary been this much worse, how often
        would this much data have shown it". `effect` is on the scale of `statistic`
        (ratio 1.5, or difference 0.1).
        """
        if not (self.standard_error > 0):
            return math.nan
        null = self._scale(1.0 if self.effect == "ratio" else 0.0)
        shift = (self._scale(effect) - null) / self.standard_error
        if worse == "decrease":
            shift = -shift
        return self._cdf(shift - self._quantile(1.0 - alpha))

    # -- rich display in notebooks (issue 18; rendering lives in wsanalysis.display) ----
    def __repr__(self) -> str:
        from wsanalysis.display import comparison_text

        return comparison_text(self)

    def _repr_html_(self) -> str:
        from wsanalysis.display import comparison_html

        return comparison_html(self)

    def __init_subclass__(cls, **kwargs) -> None:
        # keeps the readable repr: @dataclass does not replace a __repr__ already set
        super().__init_subclass__(**kwargs)
        cls.__repr__ = Comparison.__repr__


def two_sided_pvalue(z: float, df: float = math.inf) -> float:
    """Two-sided p-value of a z (or t) statistic."""
    if not math.isfinite(z):
        return 0.0 if math.isinf(z) else math.nan
    if math.isinf(df):
        return float(2.0 * stats.norm.sf(abs(z)))
    return float(2.0 * stats.t.sf(abs(z), df))
