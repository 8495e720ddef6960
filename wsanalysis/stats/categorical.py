"""Close-code mix: did the canary change *how* connections end?

Two questions, answered together: is the whole mix of close codes different (one test,
chi-square or G-test of homogeneity on the 2 × K table, scipy's
`chi2_contingency`), and which codes moved (per-code rate ratio per connection opened,
exact conditional binomial, Holm-corrected across codes so ten codes do not give ten
chances of a false alarm).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from wsanalysis.stats.multiplicity import holm
from wsanalysis.stats.rates import RateComparison, compare_rates


@dataclass(frozen=True)
class CodeComparison:
    """One close code: its rate ratio (canary/control per unit exposure) and Holm p-value."""

    code: str
    comparison: RateComparison
    pvalue_holm: float


@dataclass(frozen=True)
class MixResult:
    """Whole-mix test plus per-code comparisons."""

    statistic: float
    pvalue: float
    df: int
    test: str
    codes: list[CodeComparison]
    counts_canary: dict[str, float]
    counts_control: dict[str, float]

    def moved(self, alpha: float = 0.05) -> list[CodeComparison]:
        """Codes whose rate differs at family-wise level `alpha`."""
        return [c for c in self.codes if c.pvalue_holm <= alpha]


def close_code_mix(
    counts_canary: Mapping[str, float | Sequence[float]],
    counts_control: Mapping[str, float | Sequence[float]],
    exposure_canary: float | Sequence[float],
    exposure_control: float | Sequence[float],
    *,
    test: str = "chi-square",
    method: str = "robust",
    level: float = 0.95,
) -> MixResult:
    """Compare close-code mixes. Counts per code are totals or per-time-bucket arrays
    (then each code's rate ratio accounts for overdispersion as `compare_rates` does).

    `test` is "chi-square" (Pearson) or "g-test" (log-likelihood ratio). Codes seen in
    only one variant are included with zero in the other; codes never seen are dropped.
    """
    codes = sorted(set(counts_canary) | set(counts_control), key=str)
    zeros_a = np.zeros_like(np.atleast_1d(np.asarray(exposure_canary, dtype=float)))
    zeros_b = np.zeros_like(np.atleast_1d(np.asarray(exposure_control, dtype=float)))
    per_a = {
        c: np.atleast_1d(np.asarray(counts_canary.get(c, zeros_a), dtype=float)) for c in codes
    }
    per_b = {
        c: np.atleast_1d(np.asarray(counts_control.get(c, zeros_b), dtype=float)) for c in codes
    }
    tot_a = {c: float(per_a[c].sum()) for c in codes}
    tot_b = {c: float(per_b[c].sum()) for c in codes}
    codes = [c for c in codes if tot_a[c] + tot_b[c] > 0]
    table = np.array([[tot_a[c] for c in codes], [tot_b[c] for c in codes]])
    if len(codes) >= 2 and table.sum(axis=1).min() > 0:
        lam = "log-likelihood" if test == "g-test" else None
        res = stats.chi2_contingency(table, correction=False, lambda_=lam)
        statistic, pvalue, df = float(res.statistic), float(res.pvalue), int(res.dof)
    else:
        statistic, pvalue, df = float("nan"), float("nan"), 0
    comparisons = [
        compare_rates(
            per_a[c], exposure_canary, per_b[c], exposure_control, method=method, level=level
        )
        for c in codes
    ]
    adjusted = holm([r.pvalue for r in comparisons])
    return MixResult(
        statistic=statistic,
        pvalue=pvalue,
        df=df,
        test=test,
        codes=[
            CodeComparison(c, r, float(p))
            for c, r, p in zip(codes, comparisons, adjusted, strict=True)
        ],
        counts_canary={c: tot_a[c] for c in codes},
        counts_control={c: tot_b[c] for c in codes},
    )
