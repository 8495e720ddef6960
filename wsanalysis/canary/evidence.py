"""Evidence per gate: the statistic that fits the gate, its interval, and two p-values.

Each function takes what `measures` extracted for one gate and returns a
`GateEvidence`; the decision across gates is the judge's. Conventions: `limit` is the
bound (where harm starts) and `tolerance` the harm that must never pass, both on the
effect's scale (ratio, difference, or the canary's own figure). `p_harm` is the
one-sided p-value of "no worse than the bound" (small: harm shown); `p_safe` the
one-sided p-value of "at least as bad as the tolerance" (small: shown not to be).
Both are tested at the gate's one-sided level (1 - confidence) / 2, so a 95% interval
beyond the bound fails and a 95% upper limit inside the tolerance passes (decision
rule v2). Power at the tolerance is kept as planning information; nothing decides on it.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy import stats

from wsanalysis.canary.details import (
    BoundDetails,
    Details,
    RateDetails,
    SpikeDetails,
    SurvivalDetails,
)
from wsanalysis.canary.gate_spec import Gate
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames import measures
from wsanalysis.stats.multiplicity import holm
from wsanalysis.stats.power import pooled_power, power_at
from wsanalysis.stats.quantiles import (
    QuantileComparison,
    histogram_quantile_difference,
    quantile_difference,
    quantile_difference_ranked,
)
from wsanalysis.stats.rates import (
    RateComparison,
    compare_rates,
    garwood_interval,
    rate_against_bound,
    rate_difference,
    rate_excess_pvalue,
    spike_test,
)
from wsanalysis.stats.results import Comparison
from wsanalysis.stats.survival import compare_duration_quantiles, kaplan_meier

CANARY, CONTROL = "canary", "control"


def flip(worse: str) -> str:
    return "decrease" if worse == "increase" else "increase"


def one_sided_alpha(gate: Gate) -> float:
    return (1.0 - gate.confidence) / 2.0


def _overall_rate(frame: pl.DataFrame) -> float | None:
    exposure = float(frame["exposure"].sum())
    return float(frame["events"].sum()) / exposure if exposure > 0 else None


def gate_batches(buckets: int) -> int:
    """Batch count for a gate's rate variance: the classic √B rule, within [3, 30].

    `stats.rates` defaults to B^0.4 (longer batches, safest under strong autocorrelation).
    The judge takes batches of √B buckets, 7-8 minutes on 1 h of 1-minute buckets
    (overlapping: about t10, where eight disjoint batches give t7), because a short
    window is what a canary has. What that costs is checked where it matters, at the
    margin and at the tolerance, in `benchmarks/bench_judge_accuracy.py`
    (benchmarks/RESULTS-judge.md) and in tests/canary/test_calibration.py.
    """
    return int(min(30, max(3, round(math.sqrt(buckets)))))


# -- rates ------------------------------------------------------------------------------


def _bound_rate_evidence(gate: Gate, counts: measures.Counts, window_wide: bool = False):
    """One variant's rate against an absolute bound, and against the tolerance."""
    canary, control = counts.variant(CANARY), counts.variant(CONTROL)
    y, e = canary["events"].to_numpy(), canary["exposure"].to_numpy()
    if float(e.sum()) <= 0:
        return None
    args = dict(level=gate.confidence, min_events=gate.min_events, batches=gate_batches(len(y)))
    harm = rate_against_bound(y, e, gate.compare.bound, **args)
    safe = rate_against_bound(y, e, gate.tolerance, **args)
    ci = harm.confidence_interval()
    increase = gate.worse == "increase"
    p_harm = 1.0 - harm.pvalue_above if increase else harm.pvalue_above
    p_safe = safe.pvalue_above if increase else 1.0 - safe.pvalue_above
    se = math.sqrt(harm.dispersion / max(harm.events, 0.5))
    alpha = one_sided_alpha(gate)
    return dict(
        canary=harm.rate,
        control=_overall_rate(control),
        effect=harm.rate,
        ci_low=ci.low,
        ci_high=ci.high,
        limit=gate.compare.bound,
        tolerance=gate.tolerance,
        p_harm=p_harm,
        p_safe=p_safe,
        se=se,
        log_scale=True,
        exposure=harm.exposure,
        power=power_at(
            gate.tolerance, gate.compare.bound, se, alpha, log_scale=True, worse=gate.worse
        ),
        sufficient=harm.sufficient or window_wide,
        dispersion=harm.dispersion,
    )


def rate_evidence(gate: Gate, counts: measures.Counts) -> GateEvidence:
    canary, control = counts.variant(CANARY), counts.variant(CONTROL)
    if gate.compare.against == "bound":
        found = _bound_rate_evidence(gate, counts)
        if found is None:
            return GateEvidence.no_data(gate.bound_line, "no canary exposure")
        dispersion = found.pop("dispersion")
        return GateEvidence(
            **found,
            method=f"rate against bound (dispersion {dispersion:.2f})",
            source=counts.source,
            n_canary=int(canary["events"].sum()),
            n_control=int(control["events"].sum()),
            worse=gate.worse,
            details=BoundDetails(dispersion),
        )
    args = (canary["events"], canary["exposure"], control["events"], control["exposure"])
    compare = compare_rates if gate.relative else rate_difference  # a ratio, or a difference
    result = compare(
        *args, level=gate.confidence, min_events=gate.min_events, batches=gate_batches(len(canary))
    )
    return comparison_evidence(
        gate,
        result,
        float(canary["exposure"].sum()),
        counts.source,
        method=f"{result.method} (dispersion {result.dispersion:.2f}, {result.buckets} buckets)",
        details=RateDetails(result.dispersion, result.buckets),
    )


# -- spikes: per bucket (fail only), and window-wide (pass) ------------------------------


def bucket_pvalues(gate: Gate, counts: measures.Counts) -> tuple[np.ndarray, np.ndarray]:
    """Per-bucket one-sided p-values of a canary excess beyond the bound, and the
    per-bucket effect (ratio to control in the same bucket, or the canary's rate).

    Against control, a bucket's canary events given the bucket's total are binomial with
    share L·e/(L·e + f) when the canary's rate is L × control's (exact conditional
    test, φ = 1: load swings and bursts that hit both variants cancel in the
    conditioning, and an excess of the canary alone is the spike this gate exists to
    catch, not noise to discount); against a bound, canary events are Poisson with mean
    bound × exposure. NaN where a bucket cannot be tested.
    """
    canary, control = counts.variant(CANARY), counts.variant(CONTROL)
    y, e = canary["events"].to_numpy(), canary["exposure"].to_numpy()
    m, f = control["events"].to_numpy(), control["exposure"].to_numpy()
    if gate.compare.against == "control":
        result = spike_test(y, e, m, f, bound=gate.bound_line, dispersion=1.0)
        return result.pvalues, result.ratios
    pvalues = np.full(len(y), math.nan)
    active = e > 0
    pvalues[active] = stats.poisson.sf(y[active] - 1, gate.compare.bound * e[active])
    return pvalues, np.divide(y, e, out=np.full(len(y), math.nan), where=e > 0)


def spike_evidence(gate: Gate, counts: measures.Counts) -> GateEvidence:
    """The worst bucket can fail the gate (Holm over buckets); a pass needs no
    significant bucket and the window-wide upper limit inside the tolerance.

    Sufficiency comes from exposure: with no canary event the window-wide upper limit
    is still as wide as the canary's exposure makes it (3.7 / exposure at 95%), so 24
    connections pass nothing.
    """
    canary, control = counts.variant(CANARY), counts.variant(CONTROL)
    y, e = canary["events"].to_numpy(), canary["exposure"].to_numpy()
    m, f = control["events"].to_numpy(), control["exposure"].to_numpy()
    against_control = gate.compare.against == "control"
    limit = gate.bound_line
    pvalues, effect = bucket_pvalues(gate, counts)
    adjusted = holm(pvalues)
    tested = ~np.isnan(adjusted)
    n_tested = int(tested.sum())
    if float(e.sum()) <= 0 or (against_control and float(f.sum()) <= 0):
        return GateEvidence.no_data(limit, "no bucket had exposure in both variants")
    alpha = one_sided_alpha(gate)
    worst = int(np.nanargmin(np.where(tested, adjusted, np.nan))) if n_tested else 0
    p_harm = float(adjusted[worst]) if n_tested else 1.0
    wide = _window_wide(gate, counts)
    control_rate = _overall_rate(control) or 0.0
    power = pooled_power(
        gate.tolerance, limit, float(e.sum()), float(f.sum()), control_rate, alpha,
        against_control=against_control,
    )  # fmt: skip
    kind = f"exact {'' if against_control else 'Poisson '}per-{_human(gate)} test"
    return GateEvidence(
        canary=_overall_rate(canary),
        control=_overall_rate(control),
        effect=wide["effect"],
        ci_low=wide["ci_low"],
        ci_high=wide["ci_high"],
        limit=limit,
        p_harm=p_harm,
        power=power,
        sufficient=wide["sufficient"],
        method=f"{kind}, Holm over {n_tested} buckets; window-wide {wide['method']}",
        source=counts.source,
        n_canary=int(y.sum()),
        n_control=int(m.sum()),
        worse=gate.worse,
        details=SpikeDetails(
            worst_bucket=canary["bucket"][worst].isoformat(),
            worst_bucket_ratio=float(effect[worst]) if not math.isnan(effect[worst]) else None,
            worst_bucket_events=float(y[worst]),
            worst_bucket_exposure=float(e[worst]),
            worst_bucket_control_events=float(m[worst]),
            worst_bucket_control_exposure=float(f[worst]),
            buckets_failing=int(np.sum(adjusted[tested] <= alpha)),
            buckets=n_tested,
            dispersion=wide["dispersion"],
            p_excess=wide.get("p_excess"),
            excess_high=wide.get("excess_high"),
        ),
        p_safe=wide["p_safe"],
        tolerance=gate.tolerance,
        se=wide["se"],
        df=wide["df"],
        log_scale=True,
        exposure=float(e.sum()),
    )


def _window_wide(gate: Gate, counts: measures.Counts) -> dict:
    """The whole window's rate (ratio to control, or absolute) against the tolerance."""
    if gate.compare.against == "bound":
        found = _bound_rate_evidence(gate, counts, window_wide=True)
        assert found is not None
        return {
            "effect": found["effect"], "ci_low": found["ci_low"], "ci_high": found["ci_high"],
            "p_safe": found["p_safe"], "se": found["se"], "df": math.inf,
            "dispersion": found["dispersion"], "sufficient": True,
            "method": f"rate (dispersion {found['dispersion']:.2f})",
        }  # fmt: skip
    canary, control = counts.variant(CANARY), counts.variant(CONTROL)
    result = compare_rates(
        canary["events"], canary["exposure"], control["events"], control["exposure"],
        level=gate.confidence, min_events=0, batches=gate_batches(len(canary)),
    )  # fmt: skip
    p_excess = excess_high = None
    ci = result.confidence_interval()
    p_safe = result.noninferiority(gate.tolerance, worse=gate.worse)
    p_safe = 1.0 if math.isnan(p_safe) else p_safe
    method = f"rate ratio (dispersion {result.dispersion:.2f})"
    if gate.tolerance_excess is not None and gate.worse == "increase":
        # harm is an elevation both ×tolerance and +tolerance_excess per unit exposure:
        # showing either is not reached shows the harm is not there (Bonferroni: 2 ×)
        y, e = float(canary["events"].sum()), float(canary["exposure"].sum())
        m, f = float(control["events"].sum()), float(control["exposure"].sum())
        p_excess = rate_excess_pvalue(y, e, m, f, gate.tolerance_excess)
        p_excess = 1.0 if math.isnan(p_excess) else p_excess
        p_safe = min(1.0, 2.0 * min(p_safe, p_excess))
        method += f", or an excess below {gate.tolerance_excess:g} per unit (exact)"
        a = one_sided_alpha(gate)  # each side at a / 2, as the test
        excess_high = garwood_interval(y, e, 1 - a)[1] - garwood_interval(m, f, 1 - a)[0]
    return {
        "effect": result.statistic,
        "ci_low": ci.low,
        "ci_high": ci.high,
        "p_safe": p_safe,
        "se": _ratio_se(result),
        "df": result.df,
        "dispersion": result.dispersion,
        "sufficient": True,
        "method": method,
        "p_excess": p_excess,
        "excess_high": excess_high,
    }


def _ratio_se(result) -> float:
    """log-ratio standard error, with half an event where a variant has none (for the
    settle projection only: the tests themselves are exact)."""
    y, m = max(result.events_canary, 0.5), max(result.events_control, 0.5)
    return math.sqrt(result.dispersion * (1.0 / y + 1.0 / m))


def _human(gate: Gate) -> str:
    seconds = int(gate.bucket.total_seconds()) if gate.bucket else 0
    return f"{seconds // 3600} h bucket" if seconds % 3600 == 0 else f"{seconds // 60} min bucket"


# -- quantiles and durations ------------------------------------------------------------


def _bootstrap_pvalue(replicates: np.ndarray, line: float, side: str) -> float:
    """Share of bootstrap replicates on the far side of `line` (the percentile
    interval's own test), counted with one more so it is never 0."""
    beyond = replicates >= line if side == "above" else replicates <= line
    return float((np.sum(beyond) + 1) / (len(replicates) + 1))


def comparison_evidence(
    gate: Gate,
    result: Comparison,
    exposure: float,
    source: str,
    method: str | None = None,
    details: Details | None = None,
) -> GateEvidence:
    """Evidence from a canary-vs-control `Comparison` (a ratio or a difference)."""
    ci = result.confidence_interval()
    limit, tolerance = gate.bound_line, gate.tolerance
    replicates = result.replicates if isinstance(result, QuantileComparison) else None
    if replicates is not None and len(replicates) > 1:
        # the percentile interval's own tests, so the decision and the interval agree
        harm_side, safe_side = (
            ("below", "above") if gate.worse == "increase" else ("above", "below")
        )
        p_harm = _bootstrap_pvalue(replicates, limit, harm_side)
        p_safe = _bootstrap_pvalue(replicates, tolerance, safe_side)
    else:
        p_harm = result.noninferiority(limit, worse=flip(gate.worse))
        p_safe = result.noninferiority(tolerance, worse=gate.worse)
    ratio = result.effect == "ratio"
    counted = isinstance(result, RateComparison)  # a rate ratio: its standard error from counts
    se = _ratio_se(result) if ratio and counted else result.standard_error
    return GateEvidence(
        canary=result.canary,
        control=result.control,
        effect=result.statistic,
        ci_low=ci.low,
        ci_high=ci.high,
        limit=limit,
        p_harm=p_harm,
        sufficient=result.sufficient,
        method=method or result.method,
        source=source,
        n_canary=int(result.n_canary),
        n_control=int(result.n_control),
        reason=result.reason,
        details=details,
        worse=gate.worse,
        p_safe=p_safe,
        power=power_at(
            tolerance,
            limit,
            se,
            one_sided_alpha(gate),
            log_scale=ratio,
            worse=gate.worse,
            df=result.df,
        ),  # fmt: skip
        tolerance=tolerance,
        se=se,
        df=result.df,
        log_scale=ratio,
        exposure=exposure,
    )


def quantile_evidence(
    gate: Gate,
    samples: measures.Samples | None,
    histogram: measures.HistogramCounts | None,
    seed: int = 0,
) -> GateEvidence:
    """A quantile of raw RUM samples (session-clustered), else of a server histogram."""
    limit = gate.bound_line
    ranked = samples.ranked if samples is not None else None
    if ranked is not None and CANARY in ranked and CONTROL in ranked:  # left in an engine
        result = quantile_difference_ranked(
            ranked[CANARY], ranked[CONTROL], q=gate.quantile, level=gate.confidence
        )
        return comparison_evidence(gate, result, float(result.n_canary), "rum")
    if samples is not None:
        canary, control = samples.variants.get(CANARY), samples.variants.get(CONTROL)
        if canary is not None and control is not None and canary.height and control.height:
            result = quantile_difference(
                canary["value"].to_numpy(), canary["cluster"].to_numpy(),
                control["value"].to_numpy(), control["cluster"].to_numpy(),
                q=gate.quantile, level=gate.confidence, seed=seed,
            )  # fmt: skip
            return comparison_evidence(gate, result, float(canary.height), "rum")
    if histogram is not None:
        frame = histogram.frame
        canary = frame.filter(pl.col("variant") == CANARY).sort("le")
        control = frame.filter(pl.col("variant") == CONTROL).sort("le")
        if canary.height and canary["le"].to_list() == control["le"].to_list():
            result = histogram_quantile_difference(
                canary["le"].to_numpy(), canary["count"].to_numpy(), control["count"].to_numpy(),
                q=gate.quantile, level=gate.confidence, seed=seed, min_samples=gate.min_events,
            )  # fmt: skip
            return comparison_evidence(gate, result, float(result.n_canary), "histogram")
    return GateEvidence.no_data(limit, "no samples (RUM) or histogram for a variant")


def survival_evidence(gate: Gate, durations: measures.Durations | None) -> GateEvidence:
    """A duration quantile by Kaplan–Meier, censored connections kept."""
    limit = gate.bound_line
    if durations is None:
        return GateEvidence.no_data(limit, "no connection durations (RUM ws.close beacons)")
    fits = {}
    for variant in (CANARY, CONTROL):
        part = durations.frame.filter(pl.col("variant") == variant)
        if part.height:
            weights = part["weight"].to_numpy() if "weight" in part.columns else None
            fits[variant] = kaplan_meier(
                part["duration"].to_numpy(), part["observed"].to_numpy(),
                level=gate.confidence, min_events=gate.min_events, weights=weights,
            )  # fmt: skip
    if gate.compare.against == "control":
        if len(fits) < 2:
            return GateEvidence.no_data(limit, "durations missing for a variant")
        result = compare_duration_quantiles(
            fits[CANARY], fits[CONTROL], gate.quantile, gate.confidence
        )
        return comparison_evidence(gate, result, float(fits[CANARY].n), durations.source)
    if CANARY not in fits:
        return GateEvidence.no_data(limit, "no canary connection durations")
    fit = fits[CANARY]
    quantile = fit.duration_quantile(gate.quantile)
    # quantile_at_least(x): small when the quantile is shown above x
    above_bound = fit.quantile_at_least(limit, gate.quantile)
    above_tolerance = fit.quantile_at_least(gate.tolerance, gate.quantile)
    decrease = gate.worse == "decrease"
    control = fits[CONTROL].duration_quantile(gate.quantile).estimate if CONTROL in fits else None
    z = float(stats.norm.ppf(1 - one_sided_alpha(gate)))
    width = quantile.ci.high - quantile.ci.low
    se = width / (2 * z) if math.isfinite(width) else math.nan
    return GateEvidence(
        canary=quantile.estimate,
        control=control,
        effect=quantile.estimate,
        ci_low=quantile.ci.low,
        ci_high=quantile.ci.high,
        limit=limit,
        p_harm=1.0 - above_bound if decrease else above_bound,
        power=math.nan,
        sufficient=fit.sufficient,
        method="Kaplan–Meier, log(-log) Greenwood interval, censored connections kept",
        source=durations.source,
        n_canary=fit.n,
        n_control=fits[CONTROL].n if CONTROL in fits else 0,
        worse=gate.worse,
        details=SurvivalDetails(fit.n_events, fit.n - fit.n_events),
        p_safe=above_tolerance if decrease else 1.0 - above_tolerance,
        tolerance=gate.tolerance,
        se=se,
        exposure=float(fit.n),
    )
