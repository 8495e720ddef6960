"""Family-wise error control across gates, codes or time buckets.

Holm's step-down procedure controls the chance of any false alarm at `alpha` under any
dependence between the tests and is uniformly more powerful than Bonferroni, so it is
the default wherever several tests decide one verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bonferroni(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Bonferroni-adjusted p-values: min(1, m p). NaN stays NaN and is not counted."""
    p = np.asarray(pvalues, dtype=float)
    m = int(np.sum(~np.isnan(p)))
    return np.minimum(1.0, p * m)


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (step-down; reject where adjusted <= alpha).

    NaN p-values (tests that could not run) stay NaN and do not count toward m.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    scaled = (m - np.arange(m)) * q[order]
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    back = np.empty(m)
    back[order] = adjusted
    out[ok] = back
    return out


def holm_reject(pvalues: Sequence[float] | np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Which hypotheses Holm rejects at family-wise level `alpha`."""
    adjusted = holm(pvalues)
    return np.where(np.isnan(adjusted), False, adjusted <= alpha)
