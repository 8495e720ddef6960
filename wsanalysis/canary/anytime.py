"""Sequential mode: decision rule v2 on anytime-valid evidence, looked at every few minutes.

A pipeline asks every `look` through a canary of `horizon`. Each gate's two claims (harm
beyond the bound, safety inside the tolerance) get p-values that stay valid however
often they are read, and that only fall as looks accumulate, so a decision once taken
is final:
- rates against control: mixture likelihood-ratio e-processes (`stats.sequential`), one
  against the bound, one against the tolerance; the interval shown is the confidence
  sequence they invert to;
- rates against an absolute bound: the same for one Poisson rate;
- quantiles from RUM samples: Howard & Ramdas quantile confidence sequences per variant,
  combined into bounds of the difference;
- spike buckets: the exact per-bucket tests, Holm over the buckets seen, Bonferroni over
  the planned looks (they can only fail); the window-wide pass claim is an e-process;
- quantiles from server histograms and rate differences: their fixed-window test with
  alpha split over the planned looks (Bonferroni: valid up to the horizon);
- survival gates (the staging profile) stay fixed-horizon: their evidence says so.
Each evidence keeps its p-values after every look (`path_harm`, `path_safe`) so the
judge can tell when a verdict was first reached.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl

from wsanalysis.canary.details import QuantileSequenceDetails, SpikeDetails, SprtDetails
from wsanalysis.canary.evidence import (
    CANARY,
    CONTROL,
    bucket_pvalues,
    flip,
    gate_batches,
    one_sided_alpha,
)
from wsanalysis.canary.gate_spec import Gate
from wsanalysis.canary.plan import SequentialPlan
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames import measures
from wsanalysis.stats.multiplicity import holm
from wsanalysis.stats.rates import compare_rates, rate_against_bound
from wsanalysis.stats.sequential import (
    QuantileLooks,
    quantile_difference_pvalues,
    rate_sequence_bounds,
    running_pvalues,
    sequential_poisson_test,
    sequential_rate_test,
)


def _minutes(plan: SequentialPlan) -> int:
    return int(plan.look.total_seconds() // 60)


def _look_ends(per_look: pl.DataFrame, plan: SequentialPlan) -> list:
    """The end of every look (the time up to which its data reach)."""
    return [(t + plan.look).replace(tzinfo=None) for t in per_look["look"].to_list()]


def _per_look(counts: measures.Counts, plan: SequentialPlan) -> dict[str, pl.DataFrame]:
    """Events and exposure per look and variant (increments, in look order)."""
    frame = counts.frame.with_columns(
        measures.bucket_of("bucket", counts.window, plan.look).alias("look")
    )
    per_look = (
        frame.group_by("look", "variant")
        .agg(pl.col("events").sum(), pl.col("exposure").sum())
        .sort("look")
    )
    return {v: per_look.filter(pl.col("variant") == v) for v in (CANARY, CONTROL)}


BURN_IN = timedelta(hours=1)  # no rate decision before φ rests on an hour of buckets


def running_dispersion(
    gate: Gate, counts: measures.Counts, look_ends: list
) -> tuple[np.ndarray, int]:
    """φ for each look, and how many looks fall in the burn-in (the first hour).

    Overdispersion grows with volume (multiplicative noise), and an e-process tempered by a
    φ estimated from a few minutes of buckets over-rejects: in the benchmark at 500k
    connections/h, 30% of canaries exactly at the tolerance passed over 48 h. So the first
    hour's looks share the φ of the whole first hour (or of the data so far, while the
    window is shorter) and decide nothing; after it, a look uses the largest φ estimated at
    any whole hour before it. Every look's φ is then fixed once the look is an hour old,
    so a verdict judged again on more data keeps every earlier decision.
    """
    canary, control = counts.variant(CANARY), counts.variant(CONTROL)
    starts = canary["bucket"].to_numpy()
    y, e = canary["events"].to_numpy(), canary["exposure"].to_numpy()
    m, f = control["events"].to_numpy(), control["exposure"].to_numpy()
    hour = np.timedelta64(int(BURN_IN.total_seconds()), "s")
    cache: dict[int, float] = {}

    def phi(k: int) -> float:
        if k not in cache:
            cache[k] = 1.0
            if k >= 3 and e[:k].sum() > 0:
                if gate.compare.against == "bound":
                    cache[k] = rate_against_bound(
                        y[:k], e[:k], gate.compare.bound, batches=gate_batches(k)
                    ).dispersion
                elif f[:k].sum() > 0:
                    cache[k] = compare_rates(
                        y[:k], e[:k], m[:k], f[:k], batches=gate_batches(k)
                    ).dispersion
        return max(1.0, cache[k])

    if not len(starts):
        return np.ones(len(look_ends)), len(look_ends)
    first = starts[0]
    ends = [np.datetime64(t, "ms") for t in look_ends]
    burn = sum(1 for t in ends if t - first <= hour)
    first_hour = phi(int(np.searchsorted(starts, first + hour, side="left")))
    out, largest = [], first_hour
    for end in ends[burn:]:
        whole_hours = (end - first - np.timedelta64(1, "ms")) // hour
        largest = max(largest, phi(int(np.searchsorted(starts, first + whole_hours * hour))))
        out.append(largest)
    return np.asarray([first_hour] * burn + out), burn


def _watched(result, burn: int) -> np.ndarray:
    """Anytime p-values watched from the end of the burn-in on (1 before it): Ville's
    inequality holds from any fixed start."""
    path = running_pvalues(replace(result, e_values=np.where(
        np.arange(len(result.e_values)) < burn, 1.0, result.e_values
    )))  # fmt: skip
    return path


def bonferroni_over_looks(found: GateEvidence, plan: SequentialPlan) -> GateEvidence:
    """Alpha split over the planned looks, for gates without an anytime-valid test."""
    if found.missing:
        return found
    looks = plan.planned_looks

    def split(p: float) -> float:
        return p if math.isnan(p) else min(1.0, p * looks)

    return replace(
        found,
        p_harm=split(found.p_harm),
        p_safe=split(found.p_safe),
        method=f"{found.method}; alpha split over {looks} planned looks",
        anytime=True,
    )


def fixed_horizon(found: GateEvidence) -> GateEvidence:
    """Survival gates: judged on the window as it is, not anytime-valid (said so)."""
    if found.missing:
        return found
    return replace(found, method=f"{found.method}; fixed-horizon (not anytime-valid)")


def rate_evidence(
    gate: Gate, counts: measures.Counts, plan: SequentialPlan, fixed: GateEvidence
) -> GateEvidence:
    """A rate ratio to control, or one rate against a bound, watched at every look."""
    if fixed.missing:
        return fixed
    parts = _per_look(counts, plan)
    canary, control = parts[CANARY], parts[CONTROL]
    alpha = one_sided_alpha(gate)
    phi, burn = running_dispersion(gate, counts, _look_ends(canary, plan))
    y, e = canary["events"].to_numpy(), canary["exposure"].to_numpy()
    if gate.compare.against == "bound":
        harm = sequential_poisson_test(
            y, e, bound=gate.compare.bound, worse=gate.worse, alpha=alpha, dispersion=phi
        )
        safe = sequential_poisson_test(
            y, e, bound=gate.tolerance, worse=flip(gate.worse), alpha=alpha, dispersion=phi
        )
        low, high = fixed.ci_low, fixed.ci_high
        what = "mixture Poisson SPRT"
    else:
        m, f = control["events"].to_numpy(), control["exposure"].to_numpy()
        tests = (y, e, m, f)
        harm = sequential_rate_test(
            *tests, bound=fixed.limit, worse=gate.worse, alpha=alpha, dispersion=phi
        )
        safe = sequential_rate_test(
            *tests, bound=gate.tolerance, worse=flip(gate.worse), alpha=alpha, dispersion=phi
        )
        low, high = rate_sequence_bounds(*tests, alpha=alpha, dispersion=phi)
        what = "mixture SPRT"
    path_harm, path_safe = _watched(harm, burn), _watched(safe, burn)
    looks = canary["look"].to_list()
    return replace(
        fixed,
        ci_low=low,
        ci_high=high,
        p_harm=float(path_harm[-1]) if len(path_harm) else 1.0,
        p_safe=float(path_safe[-1]) if len(path_safe) else 1.0,
        method=f"{what} over {len(looks)} looks every {_minutes(plan)} min "
        f"(anytime-valid; dispersion {phi[-1]:.2f} from the looks so far)",
        anytime=True,
        path_harm=tuple(path_harm),
        path_safe=tuple(path_safe),
        sequence=SprtDetails(
            e_value_harm=harm.statistic,
            e_value_safe=safe.statistic,
            first_rejecting_look=_first(path_harm, alpha, looks),
            looks=len(looks),
        ),
    )


def spike_evidence(
    gate: Gate, counts: measures.Counts, plan: SequentialPlan, fixed: GateEvidence
) -> GateEvidence:
    """Buckets can fail (Holm over the buckets seen, Bonferroni over planned looks); the
    window-wide claim that the canary is inside the tolerance is an e-process."""
    if fixed.missing:
        return fixed
    pvalues, _ = bucket_pvalues(gate, counts)
    buckets = counts.variant(CANARY)["bucket"]
    parts = _per_look(counts, plan)
    looks = parts[CANARY]["look"]
    # a bucket counts from the look its start falls in
    seen = np.searchsorted(buckets.to_numpy(), looks.to_numpy(), side="right")
    seen = np.maximum(seen, 1)
    path_harm = np.array(
        [
            min(1.0, float(np.nanmin(holm(pvalues[:k]), initial=1.0)) * plan.planned_looks)
            if np.any(~np.isnan(pvalues[:k]))
            else 1.0
            for k in seen
        ]
    )
    path_harm = np.minimum.accumulate(path_harm) if len(path_harm) else np.ones(1)
    alpha = one_sided_alpha(gate)
    y, e = parts[CANARY]["events"].to_numpy(), parts[CANARY]["exposure"].to_numpy()
    phi, burn = running_dispersion(gate, counts, _look_ends(parts[CANARY], plan))
    if gate.compare.against == "bound":
        safe = sequential_poisson_test(
            y, e, bound=gate.tolerance, worse=flip(gate.worse), alpha=alpha, dispersion=phi
        )
        low, high = fixed.ci_low, fixed.ci_high
    else:
        m, f = parts[CONTROL]["events"].to_numpy(), parts[CONTROL]["exposure"].to_numpy()
        safe = sequential_rate_test(
            y, e, m, f, bound=gate.tolerance, worse=flip(gate.worse), alpha=alpha,
            dispersion=phi,
        )  # fmt: skip
        low, high = rate_sequence_bounds(y, e, m, f, alpha=alpha, dispersion=phi)
    path_safe = _watched(safe, burn)
    p_excess = fixed.details.p_excess if isinstance(fixed.details, SpikeDetails) else None
    if p_excess is not None:  # the excess claim at this look, alpha split over the looks
        excess = min(1.0, p_excess * plan.planned_looks)
        path_safe = np.minimum(1.0, 2.0 * np.minimum(path_safe, excess))
    return replace(
        fixed,
        ci_low=low,
        ci_high=high,
        p_harm=float(path_harm[-1]),
        p_safe=float(path_safe[-1]) if len(path_safe) else 1.0,
        method=f"{fixed.method}; buckets: alpha split over {plan.planned_looks} planned "
        f"looks; window-wide: mixture SPRT over {len(y)} looks (anytime-valid)",
        anytime=True,
        path_harm=tuple(path_harm),
        path_safe=tuple(path_safe),
    )


def _first(path: np.ndarray, alpha: float, looks: list) -> str | None:
    hits = np.nonzero(np.asarray(path) <= alpha)[0]
    return looks[int(hits[0])].isoformat() if len(hits) else None


def _design_effect(values: np.ndarray, clusters: np.ndarray, q: float) -> float:
    """Variance of the share at or below the q-quantile with samples clustered by
    session, over its binomial variance (at least 1)."""
    n = len(values)
    if n < 2:
        return 1.0
    estimate = float(np.quantile(values, q, method="inverted_cdf"))
    codes = np.unique(clusters, return_inverse=True)[1]
    per = np.bincount(codes).astype(float)
    below = np.bincount(codes, weights=(values <= estimate).astype(float))
    clustered = float(np.sum((below - q * per) ** 2))
    return max(1.0, clustered / (n * q * (1 - q)))


def quantile_evidence(
    gate: Gate,
    samples: measures.Samples | None,
    window: measures.Window,
    plan: SequentialPlan,
    fixed: GateEvidence,
) -> GateEvidence:
    """The difference of a quantile, canary - control, bounded at every look."""
    if fixed.missing or fixed.source != "rum" or samples is None or samples.ranked:
        return bonferroni_over_looks(fixed, plan)
    n_looks = max(1, math.ceil(window.duration / plan.look))
    sequences, effects = [], []
    for variant in (CANARY, CONTROL):
        part = samples.variants[variant]
        offset = (part["ts"] - window.start).dt.total_milliseconds().to_numpy()
        look = np.clip(offset // (plan.look.total_seconds() * 1000), 0, n_looks - 1)
        values = part["value"].to_numpy()
        sequences.append(QuantileLooks(values, look.astype(np.int64), n_looks))
        effects.append(_design_effect(values, part["cluster"].to_numpy(), gate.quantile))
    canary, control = sequences
    deff = (effects[0], effects[1])
    alpha = one_sided_alpha(gate)
    increase = gate.worse == "increase"
    path_harm = quantile_difference_pvalues(
        canary, control, gate.quantile, fixed.limit, "above" if increase else "below", deff
    )
    path_safe = quantile_difference_pvalues(
        canary, control, gate.quantile, gate.tolerance, "below" if increase else "above", deff
    )
    c_low, c_high = canary.bounds(gate.quantile, alpha / 2, deff[0])
    k_low, k_high = control.bounds(gate.quantile, alpha / 2, deff[1])
    return replace(
        fixed,
        ci_low=float(c_low[-1] - k_high[-1]),
        ci_high=float(c_high[-1] - k_low[-1]),
        p_harm=float(path_harm[-1]),
        p_safe=float(path_safe[-1]),
        method=f"quantile confidence sequences (Howard & Ramdas) over {n_looks} looks every "
        f"{_minutes(plan)} min, session design effect {deff[0]:.2f} / {deff[1]:.2f} "
        "(anytime-valid)",
        anytime=True,
        path_harm=tuple(path_harm),
        path_safe=tuple(path_safe),
        sequence=QuantileSequenceDetails(list(deff), n_looks),
    )
