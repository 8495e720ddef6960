"""Statistics, one module per metric kind; pure functions on numpy arrays, no I/O.

Comparisons of canary against control return `Comparison` objects (scipy.stats style:
`statistic`, `pvalue`, `confidence_interval(level)`, counts used, `sufficient`).
"""

from wsanalysis.stats.categorical import MixResult, close_code_mix
from wsanalysis.stats.multiplicity import bonferroni, holm, holm_reject
from wsanalysis.stats.quantiles import (
    histogram_quantile,
    histogram_quantile_ci,
    histogram_quantile_difference,
    quantile_difference,
)
from wsanalysis.stats.rates import compare_rates, rate_against_bound, rate_difference
from wsanalysis.stats.results import Comparison, ConfidenceInterval
from wsanalysis.stats.sequential import SequentialResult, sequential_rate_test
from wsanalysis.stats.srm import SRM_ALPHA, SRMResult, sample_ratio_mismatch
from wsanalysis.stats.survival import (
    KaplanMeierResult,
    compare_duration_quantiles,
    kaplan_meier,
    logrank,
)

__all__ = [
    "SRM_ALPHA",
    "Comparison",
    "ConfidenceInterval",
    "KaplanMeierResult",
    "MixResult",
    "SRMResult",
    "SequentialResult",
    "bonferroni",
    "close_code_mix",
    "compare_duration_quantiles",
    "compare_rates",
    "histogram_quantile",
    "histogram_quantile_ci",
    "histogram_quantile_difference",
    "holm",
    "holm_reject",
    "kaplan_meier",
    "logrank",
    "quantile_difference",
    "rate_against_bound",
    "rate_difference",
    "sample_ratio_mismatch",
    "sequential_rate_test",
]
