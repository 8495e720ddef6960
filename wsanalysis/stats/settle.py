"""How much more data would settle a gate: the projection behind `settle_in_s`.

A gate is unsettled while its interval straddles a line: the lower limit is not yet
beyond the bound (no fail) and the upper limit not yet inside the tolerance (no pass).
At the observed traffic and variance the estimate stays where it is and the standard
error shrinks as 1/sqrt(k) with k times the exposure (a fixed-horizon interval), or as a
normal-mixture boundary does (an anytime-valid sequence, which narrows more slowly).
The first k at which either line is cleared is the answer; the elapsed time times
(k - 1) is how much longer to wait. It is a projection at the point estimate, not a
promise: a canary sitting right on a line never settles (then None).
"""

from __future__ import annotations

import math

from scipy import stats

MAX_FACTOR = 1e4  # beyond 10,000 times the data the answer is "not at this traffic"


def _half_width(k: float, se: float, z: float, anytime: bool, alpha: float) -> float:
    """The interval's half-width with k times the data (k = 1: now)."""
    if not anytime:
        return z * se / math.sqrt(k)
    # normal mixture tuned at the current variance: boundary on the sum over the variance
    return se * math.sqrt((k + 1.0) * (math.log(k + 1.0) + 2.0 * math.log(1.0 / alpha))) / k


def half_width_ratio(k: float, *, anytime: bool, alpha: float) -> float:
    """The interval's half-width with k times the data, relative to now (for charts)."""
    return _half_width(k, 1.0, 1.0, anytime, alpha) / _half_width(1.0, 1.0, 1.0, anytime, alpha)


def settle_factor(
    z_fail: float,
    z_pass: float,
    *,
    alpha_fail: float,
    alpha_pass: float,
    anytime: bool = False,
    df: float = math.inf,
) -> float | None:
    """Multiple of the current exposure at which the gate settles (>= 1), or None.

    `z_fail` and `z_pass` are how many standard errors the estimate now stands beyond
    the bound and inside the tolerance (from the tests' own p-values where they have
    them); a side at or below 0 never settles at this estimate. `alpha_*` are the
    one-sided levels after correction.
    """
    law = stats.norm if math.isinf(df) else stats.t(df)
    factors = []
    for distance, alpha in ((z_fail, alpha_fail), (z_pass, alpha_pass)):
        if not math.isfinite(distance) or distance <= 0:
            continue
        z = float(law.ppf(1.0 - alpha))

        def cleared(k: float, distance: float = distance, z: float = z, alpha: float = alpha):
            return _half_width(k, 1.0, z, anytime, alpha) <= distance

        if cleared(1.0):
            factors.append(1.0)
        elif cleared(MAX_FACTOR):
            low, high = 1.0, MAX_FACTOR
            for _ in range(60):
                mid = math.sqrt(low * high)
                low, high = (low, mid) if cleared(mid) else (mid, high)
            factors.append(high)
    return min(factors) if factors else None


def z_beyond(estimate: float, line: float, se: float, *, worse: str, log_scale: bool) -> float:
    """How many standard errors `estimate` stands on the bad side of `line` (negative:
    on the good side), on the test's scale."""
    if not all(math.isfinite(x) for x in (estimate, line, se)) or se <= 0:
        return math.nan
    if log_scale:
        if estimate <= 0 or line <= 0:
            return math.nan
        estimate, line = math.log(estimate), math.log(line)
    return (1.0 if worse == "increase" else -1.0) * (estimate - line) / se
