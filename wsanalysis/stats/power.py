"""Power at a given effect: planning information, never a decision.

"Had the canary been this much worse, how often would this much data have shown it" is
worth showing to someone sizing the next canary. It decides nothing: computed from the
observed volume and variance it is unstable, it can be forced, and it bounds no error a
user can state (decision rule v2 passes a gate on its upper confidence limit instead).
"""

from __future__ import annotations

import math

from scipy import stats


def power_at(
    effect: float,
    limit: float,
    se: float,
    alpha: float,
    *,
    log_scale: bool,
    worse: str,
    df: float = math.inf,
) -> float:
    """Chance a one-sided level-`alpha` test against `limit` sees a true `effect`.

    `se` is on the test's scale (log for ratios). With `df` finite (a variance estimated
    from few batches) the test is a t test and so is its power.
    """
    if not (se > 0) or not math.isfinite(se):
        return math.nan
    if log_scale:
        if effect <= 0 or limit <= 0:
            return math.nan
        shift = (math.log(effect) - math.log(limit)) / se
    else:
        shift = (effect - limit) / se
    if worse == "decrease":
        shift = -shift
    law = stats.norm if math.isinf(df) else stats.t(df)
    return float(law.cdf(shift - law.ppf(1 - alpha)))


def pooled_power(
    effect: float,
    limit: float,
    exposure: float,
    control_exposure: float,
    control_rate: float,
    alpha: float,
    *,
    against_control: bool,
) -> float:
    """Power of the exact test on pooled counts (conditional binomial against control,
    Poisson against a bound) to see a rate at `effect` (× control, or absolute)."""
    if against_control:
        expected = control_rate * (effect * exposure + control_exposure)
        n = int(round(expected))
        if n <= 0:
            return 0.0
        p0 = limit * exposure / (limit * exposure + control_exposure)
        p1 = effect * exposure / (effect * exposure + control_exposure)
        critical = stats.binom.isf(alpha, n, p0) + 1
        return float(stats.binom.sf(critical - 1, n, p1))
    critical = stats.poisson.isf(alpha, limit * exposure) + 1
    return float(stats.poisson.sf(critical - 1, effect * exposure))
