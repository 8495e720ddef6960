"""Evidence per gate: the statistic that fits the gate, its interval, p-value of harm, power.

Each function takes what `measures` extracted for one gate and returns a
`GateEvidence`; the decision across gates is the judge's. Conventions: `limit` is the
canary's bound on the effect's scale (ratio, difference, or the canary's own figure);
`p_harm` is the one-sided p-value of "no worse than the limit" at the gate's
one-sided level (1 - confidence) / 2, so a 95% interval beyond the limit is a fail.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
from scipy import stats

from wsanalysis.canary.gates import Gate
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames import measures
from wsanalysis.stats.multiplicity import holm
from wsanalysis.stats.quantiles import histogram_quantile_difference, quantile_difference
from wsanalysis.stats.rates import compare_rates, rate_against_bound, rate_difference, spike_test
from wsanalysis.stats.results import Comparison
from wsanalysis.stats.sequential import sequential_rate_test
from wsanalysis.stats.survival import compare_duration_quantiles, kaplan_meier

CANARY, CONTROL = "canary", "control"


def flip(worse: str) -> str:
    return "decrease" if worse == "increase" else "increase"


def one_sided_alpha(gate: Gate) -> float:
    return (1.0 - gate.confidence) / 2.0


def _power(
    detectable: float,
    limit: float,
    se: float,
    alpha: float,
    log_scale: bool,
    worse: str,
    df: float = math.inf,
) -> float:
    """Chance a one-sided level-`alpha` test against `limit` sees a true `detectable`.

    With `df` finite (a variance estimated from few batches) the test is a t test and
    so is its power; a normal approximation would promise power the test lacks.
    """
    if not (se > 0) or not math.isfinite(se):
        return math.nan
    if log_scale:
        if detectable <= 0 or limit <= 0:
            return math.nan
        shift = (math.log(detectable) - math.log(limit)) / se
    else:
        shift = (detectable - limit) / se
    if worse == "decrease":
        shift = -shift
    law = stats.norm if math.isinf(df) else stats.t(df)
    return float(law.cdf(shift - law.ppf(1 - alpha)))


# -- rates ------------------------------------------------------------------------------


def rate_evidence(gate: Gate, counts: measures.Counts) -> GateEvidence:
    canary, control = counts.variant(CANARY), counts.variant(CONTROL)
    args = (canary["events"], canary["exposure"], control["events"], control["exposure"])
    alpha = one_sided_alpha(gate)
    if gate.compare.against == "bound":
        result = rate_against_bound(
            canary["events"], canary["exposure"], gate.compare.bound, level=gate.confidence,
            min_events=gate.min_events,
        )  # fmt: skip
        ci = result.confidence_interval()
        p_harm = 1.0 - result.pvalue_above if gate.worse == "increase" else result.pvalue_above
        se = (ci.high - ci.low) / (2 * stats.norm.ppf(1 - (1 - gate.confidence) / 2))
        return GateEvidence(
            canary=result.rate,
            control=_overall_rate(control),
            effect=result.rate,
            ci_low=ci.low,
            ci_high=ci.high,
            limit=gate.compare.bound,
            p_harm=p_harm,
            power=_power(gate.detectable, gate.compare.bound, se, alpha, False, gate.worse),
            sufficient=result.sufficient,
            method=f"rate against bound (dispersion {result.dispersion:.2f})",
            source=counts.source,
            n_canary=int(result.events),
            n_control=int(control["events"].sum()),
            worse=gate.worse,
        )
    relative = gate.compare.margin_type == "relative"
    compare = compare_rates if relative else rate_difference  # a ratio, or a difference
    result = compare(
        *args, level=gate.confidence, min_events=gate.min_events, batches=gate_batches(len(canary))
    )
    limit = gate.compare.limit(1.0) if relative else gate.compare.margin
    return comparison_evidence(
        gate,
        result,
        limit,
        counts.source,
        method=f"{result.method} (dispersion {result.dispersion:.2f}, {result.buckets} buckets)",
        details={"dispersion": result.dispersion, "buckets": result.buckets},
    )


def gate_batches(buckets: int) -> int:
    """Batch count for a gate's rate variance: the classic √B rule, within [3, 30].

    `stats.rates` defaults to B^0.4 (longer batches, safest under strong autocorrelation).
    The judge takes batches of √B buckets, 7-8 minutes on 1 h of 1-minute buckets
    (overlapping: about t10, where eight disjoint batches give t7), because power in a
    short window is what a canary lacks. What that costs is checked where it matters,
    at the margin: in `benchmarks/bench_judge_accuracy.py`'s simulation a canary exactly
    10% worse than control fails in under 1% of runs (one-sided 2.5% test, then Holm),
    while an error rate ×2 is caught in over 90% at 100k connections/hour
    (benchmarks/RESULTS-judge.md).
    """
    return int(min(30, max(3, round(math.sqrt(buckets)))))


def _overall_rate(frame: pl.DataFrame) -> float | None:
    exposure = float(frame["exposure"].sum())
    return float(frame["events"].sum()) / exposure if exposure > 0 else None


# -- spikes: per bucket, Holm over buckets ----------------------------------------------


def spike_evidence(gate: Gate, counts: measures.Counts) -> GateEvidence:
    """The worst bucket decides; buckets are corrected for their number (Holm).

    Against control, a bucket's canary events given the bucket's total are binomial with
    share L·e/(L·e + f) when the canary's rate is L × control's (exact conditional
    test); against a bound, canary events are Poisson with mean bound × exposure.
    """
    canary, control = counts.variant(CANARY), counts.variant(CONTROL)
    y = canary["events"].to_numpy()
    e = canary["exposure"].to_numpy()
    m = control["events"].to_numpy()
    f = control["exposure"].to_numpy()
    alpha = one_sided_alpha(gate)
    against_control = gate.compare.against == "control"
    limit = gate.compare.limit(1.0) if against_control else gate.compare.bound
    active = (e > 0) & ((f > 0) if against_control else True)
    if against_control:
        # Exact conditional binomial per bucket with φ = 1: load swings and bursts that hit
        # both variants cancel in the conditioning on the bucket's total, and an excess of
        # the canary alone is the spike this gate exists to catch, not noise to discount
        # (a dispersion estimated from the same buckets grows with the burst and hides it).
        result = spike_test(y, e, m, f, bound=limit, alpha=alpha, dispersion=1.0)
        adjusted, effect = result.adjusted, result.ratios
        method = f"exact per-{_human(gate)} test (φ {result.dispersion:.2f})"
    else:
        pvalues = np.full(len(y), math.nan)
        pvalues[active] = stats.poisson.sf(y[active] - 1, limit * e[active])
        adjusted = holm(pvalues)
        effect = np.divide(y, e, out=np.full(len(y), math.nan), where=e > 0)
        method = f"exact Poisson per-{_human(gate)} test"
    tested = ~np.isnan(adjusted)
    n_tested = int(tested.sum())
    if n_tested == 0:
        if float(e.sum()) > 0:  # exposure but no event anywhere: nothing to test, nothing seen
            adjusted, tested, n_tested = np.ones(len(y)), active, int(active.sum())
        else:
            return GateEvidence.no_data(limit, "no bucket had exposure in both variants")
    worst = int(np.nanargmin(np.where(tested, adjusted, np.nan)))
    p_harm = float(adjusted[worst])
    # A pass needs power against a window-wide elevation of the detectable size; a short
    # burst is caught by the per-bucket tests when it is large enough to be seen at all.
    # With no canary event at all there is no spike to miss: a relative elevation of a
    # control rate of zero cannot be powered, yet "no 4401 on canary" settles the gate.
    control_rate = _overall_rate(control) or 0.0
    power = 1.0 if y.sum() == 0 else _pooled_power(
        gate.detectable, limit, float(e[active].sum()), float(f[active].sum()),
        control_rate, alpha, against_control,
    )  # fmt: skip
    level = gate.confidence
    low, high = _poisson_rate_interval(y[worst], e[worst], level)
    if against_control:
        ctl_rate = m[worst] / f[worst] if f[worst] > 0 else math.nan
        low, high = (low / ctl_rate, high / ctl_rate) if ctl_rate > 0 else (math.nan, math.nan)
    sufficient = float(e.sum()) >= gate.min_events
    return GateEvidence(
        canary=_overall_rate(canary),
        control=_overall_rate(control),
        effect=float(effect[worst]) if not math.isnan(effect[worst]) else math.inf,
        ci_low=low,
        ci_high=high,
        limit=limit,
        p_harm=p_harm,
        power=power,
        sufficient=sufficient,
        method=f"{method}, Holm over {n_tested} buckets",
        source=counts.source,
        n_canary=int(y.sum()),
        n_control=int(m.sum()),
        worse=gate.worse,
        details={
            "worst_bucket": canary["bucket"][worst].isoformat(),
            "worst_bucket_events": float(y[worst]),
            "worst_bucket_exposure": float(e[worst]),
            "worst_bucket_control_events": float(m[worst]),
            "worst_bucket_control_exposure": float(f[worst]),
            "buckets_failing": int(np.sum(adjusted[tested] <= alpha)),
            "buckets": n_tested,
        },
    )


def _human(gate: Gate) -> str:
    seconds = int(gate.bucket.total_seconds()) if gate.bucket else 0
    return f"{seconds // 3600} h bucket" if seconds % 3600 == 0 else f"{seconds // 60} min bucket"


def _poisson_rate_interval(events: float, exposure: float, level: float) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson rate."""
    if exposure <= 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    low = stats.chi2.ppf(a, 2 * events) / 2 if events > 0 else 0.0
    high = stats.chi2.ppf(1 - a, 2 * events + 2) / 2
    return float(low / exposure), float(high / exposure)


def _pooled_power(
    detectable: float,
    limit: float,
    exposure: float,
    control_exposure: float,
    control_rate: float,
    alpha: float,
    against_control: bool,
) -> float:
    """Power of the exact test on the pooled window to see a `detectable` elevation."""
    if against_control:
        expected = control_rate * (detectable * exposure + control_exposure)
        n = int(round(expected))
        if n <= 0:
            return 0.0
        p0 = limit * exposure / (limit * exposure + control_exposure)
        p1 = detectable * exposure / (detectable * exposure + control_exposure)
        critical = stats.binom.isf(alpha, n, p0) + 1
        return float(stats.binom.sf(critical - 1, n, p1))
    critical = stats.poisson.isf(alpha, limit * exposure) + 1
    return float(stats.poisson.sf(critical - 1, detectable * exposure))


# -- quantiles and durations ------------------------------------------------------------


def comparison_evidence(
    gate: Gate,
    result: Comparison,
    limit: float,
    source: str,
    method: str | None = None,
    details: dict | None = None,
) -> GateEvidence:
    """Evidence from a canary-vs-control `Comparison` (a ratio or a difference)."""
    ci = result.confidence_interval()
    power = _power(
        gate.detectable, limit, result.standard_error, one_sided_alpha(gate),
        result.effect == "ratio", gate.worse, result.df,
    )  # fmt: skip
    return GateEvidence(
        canary=result.canary,
        control=result.control,
        effect=result.statistic,
        ci_low=ci.low,
        ci_high=ci.high,
        limit=limit,
        p_harm=result.noninferiority(limit, worse=flip(gate.worse)),
        power=power,
        sufficient=result.sufficient,
        method=method or result.method,
        source=source,
        n_canary=int(result.n_canary),
        n_control=int(result.n_control),
        reason=result.reason,
        worse=gate.worse,
        details=details or {},
    )


def quantile_evidence(
    gate: Gate,
    samples: measures.Samples | None,
    histogram: measures.HistogramCounts | None,
    seed: int = 0,
) -> GateEvidence:
    """A quantile of raw RUM samples (session-clustered), else of a server histogram."""
    limit = gate.compare.margin if gate.compare.against == "control" else gate.compare.bound
    if samples is not None:
        canary, control = samples.variants.get(CANARY), samples.variants.get(CONTROL)
        if canary is not None and control is not None and canary.height and control.height:
            result = quantile_difference(
                canary["value"].to_numpy(), canary["cluster"].to_numpy(),
                control["value"].to_numpy(), control["cluster"].to_numpy(),
                q=gate.quantile, level=gate.confidence, seed=seed,
            )  # fmt: skip
            return comparison_evidence(gate, result, limit, "rum")
    if histogram is not None:
        frame = histogram.frame
        canary = frame.filter(pl.col("variant") == CANARY).sort("le")
        control = frame.filter(pl.col("variant") == CONTROL).sort("le")
        if canary.height and canary["le"].to_list() == control["le"].to_list():
            result = histogram_quantile_difference(
                canary["le"].to_numpy(), canary["count"].to_numpy(), control["count"].to_numpy(),
                q=gate.quantile, level=gate.confidence, seed=seed, min_samples=gate.min_events,
            )  # fmt: skip
            return comparison_evidence(gate, result, limit, "histogram")
    return GateEvidence.no_data(limit, "no samples (RUM) or histogram for a variant")


def survival_evidence(gate: Gate, durations: measures.Durations | None) -> GateEvidence:
    """A duration quantile by Kaplan–Meier, censored connections kept."""
    limit = gate.compare.bound if gate.compare.against == "bound" else gate.compare.margin
    if durations is None:
        return GateEvidence.no_data(limit, "no connection durations (RUM ws.close beacons)")
    fits = {}
    for variant in (CANARY, CONTROL):
        part = durations.frame.filter(pl.col("variant") == variant)
        if part.height:
            fits[variant] = kaplan_meier(
                part["duration"].to_numpy(), part["observed"].to_numpy(),
                level=gate.confidence, min_events=gate.min_events,
            )  # fmt: skip
    if gate.compare.against == "control":
        if len(fits) < 2:
            return GateEvidence.no_data(limit, "durations missing for a variant")
        result = compare_duration_quantiles(
            fits[CANARY], fits[CONTROL], gate.quantile, gate.confidence
        )
        return comparison_evidence(gate, result, limit, durations.source)
    if CANARY not in fits:
        return GateEvidence.no_data(limit, "no canary connection durations")
    fit = fits[CANARY]
    quantile = fit.duration_quantile(gate.quantile)
    above = fit.quantile_at_least(limit, gate.quantile)  # small: the quantile is above the bound
    control = fits[CONTROL].duration_quantile(gate.quantile).estimate if CONTROL in fits else None
    return GateEvidence(
        canary=quantile.estimate,
        control=control,
        effect=quantile.estimate,
        ci_low=quantile.ci.low,
        ci_high=quantile.ci.high,
        limit=limit,
        p_harm=1.0 - above if gate.worse == "decrease" else above,
        power=math.nan,  # a pass needs the interval on the right side of the bound
        sufficient=fit.sufficient,
        method="Kaplan–Meier, log(-log) Greenwood interval, censored connections kept",
        source=durations.source,
        n_canary=fit.n,
        n_control=fits[CONTROL].n if CONTROL in fits else 0,
        worse=gate.worse,
        details={"events": fit.n_events, "censored": fit.n - fit.n_events},
    )


# -- sequential looks -------------------------------------------------------------------


def sequential_rate_evidence(
    gate: Gate, counts: measures.Counts, look: timedelta, fixed: GateEvidence
) -> GateEvidence:
    """A rate ratio watched at every `look` since the start: mixture SPRT e-values.

    The e-value process is anytime-valid, so asking every few minutes through a 48 h
    canary does not inflate false alarms; the p-value of harm is 1 / max e-value. The
    dispersion measured by the fixed-window method tempers the likelihood (φ ≥ 1).
    """
    frame = counts.frame.with_columns(
        measures.bucket_of("bucket", counts.window, look).alias("look")
    )
    per_look = (
        frame.group_by("look", "variant")
        .agg(pl.col("events").sum(), pl.col("exposure").sum())
        .sort("look")
    )
    canary = per_look.filter(pl.col("variant") == CANARY)
    control = per_look.filter(pl.col("variant") == CONTROL)
    dispersion = float(fixed.details.get("dispersion", 1.0))
    result = sequential_rate_test(
        canary["events"].to_numpy(), canary["exposure"].to_numpy(),
        control["events"].to_numpy(), control["exposure"].to_numpy(),
        bound=fixed.limit, worse=gate.worse, alpha=one_sided_alpha(gate),
        dispersion=max(1.0, dispersion),
    )  # fmt: skip
    looks = canary["look"].to_list()
    stopped = looks[result.stopped_at].isoformat() if result.rejected else None
    return replace(
        fixed,
        p_harm=result.pvalue,
        method=f"mixture SPRT over {len(looks)} looks every {int(look.total_seconds() // 60)} min",
        details={
            **fixed.details,
            "e_value": result.statistic,
            "e_value_max": float(result.e_values.max()) if len(result.e_values) else 1.0,
            "first_rejecting_look": stopped,
            "looks": len(looks),
        },
    )
