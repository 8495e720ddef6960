"""Sequential mode: decision rule v2 on anytime-valid evidence, looked at every few minutes.

A pipeline asks every `look` through a canary of `horizon`. Each gate's two claims (harm
beyond the bound, safety inside the tolerance) get p-values that stay valid however
often they are read. What is final differs by claim, because a canary's data are not
stationary (a restart at 4 h, a regression after a healthy first hour):
- harm once shown stays shown: the harm p-value is the running minimum (a fail is final);
- a pass holds while the evidence does: the safety p-value is each look's own (1 / the
  e-value at that look, not its running maximum), so a gate that passed on a healthy
  first hour loses its pass when later data stop supporting it. Still anytime-valid: a
  pass at any look needs the e-value past 1 / alpha at that look;
- GO (every gate passing at one look) is final for the pipeline, which promotes there;
  judge-server keeps it. A replay of a whole window answers for its last look and
  records the first look that would have been GO (`go_at_look`).
Per kind:
- rates against control: mixture likelihood-ratio e-processes (`stats.sequential`), one
  against the bound, one against the tolerance; the interval shown is the confidence
  sequence they invert to (lower end over every look, upper end at this look);
- rates against an absolute bound: the same for one Poisson rate;
- quantiles from RUM samples: per variant, one-sided beta-binomial mixtures for each
  side at its own alpha (Howard & Ramdas), tuned at the gate's level for the planned
  size, combined into bounds of the difference;
- spike buckets: each bucket's exact test once, when the bucket is complete, alpha split
  over the buckets the horizon holds (they can only fail); the window-wide pass claim is
  an e-process;
- survival quantiles against a bound: connections old enough to answer "did it live past
  the line?" are Bernoulli answers, tested by a one-sided beta-binomial mixture;
- quantiles from server histograms, rate differences, and durations without open times
  (push-down): their fixed-window test with alpha split over the planned looks
  (Bonferroni: valid up to the horizon).
The verdict lists which gates are anytime-valid and which are corrected across looks.
Each evidence keeps its p-values after every look (`path_harm`, `path_safe`) so the
judge can tell when a verdict was first reached.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
from scipy import stats

from wsanalysis.canary.details import (
    LooksCorrection,
    QuantileSequenceDetails,
    SpikeDetails,
    SpikeSequenceDetails,
    SprtDetails,
    SurvivalSequenceDetails,
)
from wsanalysis.canary.evidence import (
    CANARY,
    CONTROL,
    bucket_dispersion,
    bucket_pvalues,
    flip,
    gate_batches,
    one_sided_alpha,
)
from wsanalysis.canary.gate_spec import Gate
from wsanalysis.canary.plan import SequentialPlan
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames import measures
from wsanalysis.stats.rates import compare_rates, rate_against_bound, rate_excess_pvalue
from wsanalysis.stats.sequential import (
    QuantileLooks,
    bernoulli_log_mixture,
    best_rho,
    current_pvalues,
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
PHI_UPPER = 0.80  # the one-sided level of the upper confidence bound on φ that tempers


def dispersion_upper_bound(phi: float, df: float) -> float:
    """φ̂ · df / χ²(1 - PHI_UPPER; df): an upper confidence bound on φ from a batch-means
    estimate with `df` degrees of freedom (φ̂ itself when df is infinite)."""
    if not math.isfinite(df) or df <= 0:
        return phi
    return phi * df / float(stats.chi2.ppf(1.0 - PHI_UPPER, df))


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
    A look's φ is the larger of the running maximum of the hourly estimates and an upper
    confidence bound on the latest one, φ̂ · df / χ²₀.₂₀(df): an early φ̂ rests on a few
    batches and is often low (canaries that passed at ×1.5 had a first-hour median of
    1.05 against 1.89 over all runs), and the mixture tempered by an underestimate
    over-rejects. The bound is the latest estimate's, not a running maximum of bounds:
    a first hour of 5-minute buckets has 2 degrees of freedom, and its bound (4.5 φ̂)
    would otherwise temper every later look too.
    """
    canary, control = counts.variant(CANARY), counts.variant(CONTROL)
    starts = canary["bucket"].to_numpy()
    y, e = canary["events"].to_numpy(), canary["exposure"].to_numpy()
    m, f = control["events"].to_numpy(), control["exposure"].to_numpy()
    hour = np.timedelta64(int(BURN_IN.total_seconds()), "s")
    cache: dict[int, tuple[float, float]] = {}

    def estimate(k: int) -> tuple[float, float]:
        """(φ̂, its upper confidence bound) on the first k buckets."""
        if k not in cache:
            cache[k] = (1.0, 1.0)
            if k >= 3 and e[:k].sum() > 0:
                if gate.compare.against == "bound":
                    found = rate_against_bound(
                        y[:k], e[:k], gate.compare.bound, batches=gate_batches(k)
                    )
                elif f[:k].sum() > 0:
                    found = compare_rates(y[:k], e[:k], m[:k], f[:k], batches=gate_batches(k))
                else:
                    found = None
                if found is not None:
                    upper = dispersion_upper_bound(found.dispersion, found.df)
                    cache[k] = (max(1.0, found.dispersion), max(1.0, upper))
        return cache[k]

    if not len(starts):
        return np.ones(len(look_ends)), len(look_ends)
    first = starts[0]
    ends = [np.datetime64(t, "ms") for t in look_ends]
    burn = sum(1 for t in ends if t - first <= hour)
    point, upper = estimate(int(np.searchsorted(starts, first + hour, side="left")))
    first_hour = upper
    out, largest = [], point
    for end in ends[burn:]:
        whole_hours = (end - first - np.timedelta64(1, "ms")) // hour
        point, upper = estimate(int(np.searchsorted(starts, first + whole_hours * hour)))
        largest = max(largest, point)
        out.append(max(largest, upper))
    return np.asarray([first_hour] * burn + out), burn


def _after_burn_in(result, burn: int):
    return replace(result, e_values=np.where(
        np.arange(len(result.e_values)) < burn, 1.0, result.e_values
    ))  # fmt: skip


def _watched(result, burn: int) -> np.ndarray:
    """Harm: anytime p-values watched from the end of the burn-in on (1 before it),
    running minimum: harm once shown stays shown. Ville's inequality holds from any
    fixed start."""
    return running_pvalues(_after_burn_in(result, burn))


def _held(result, burn: int) -> np.ndarray:
    """Safety: each look's own p-value (1 during the burn-in). A pass holds while the
    evidence does: a canary healthy for an hour that then regresses loses its pass as
    the e-value falls, instead of keeping a pass frozen at the first hour. Still
    anytime-valid: a pass at any look needs the e-value past 1/alpha at that look."""
    return current_pvalues(_after_burn_in(result, burn))


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
        sequence=LooksCorrection(),
    )


def rate_pass_path(gate: Gate, counts: measures.Counts, plan: SequentialPlan) -> np.ndarray:
    """A rate gate's pass claim (inside the tolerance) as `rate_evidence` reads it, each
    look's p-value, without the interval's bisection (three quarters of the work, and it
    decides nothing): what calibration runs over thousands of canaries need."""
    parts = _per_look(counts, plan)
    canary, control = parts[CANARY], parts[CONTROL]
    phi, burn = running_dispersion(gate, counts, _look_ends(canary, plan))
    y, e = canary["events"].to_numpy(), canary["exposure"].to_numpy()
    alpha, worse = one_sided_alpha(gate), flip(gate.worse)
    if gate.compare.against == "bound":
        safe = sequential_poisson_test(
            y, e, bound=gate.tolerance, worse=worse, alpha=alpha, dispersion=phi
        )
    else:
        m, f = control["events"].to_numpy(), control["exposure"].to_numpy()
        safe = sequential_rate_test(
            y, e, m, f, bound=gate.tolerance, worse=worse, alpha=alpha, dispersion=phi
        )
    return _held(safe, burn)


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
    path_harm, path_safe = _watched(harm, burn), _held(safe, burn)
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


def _completed_at(counts: measures.Counts, plan: SequentialPlan, n_looks: int) -> np.ndarray:
    """For each of the canary's buckets, the look at whose end it is complete (n_looks for
    one still open when the data end)."""
    canary = counts.variant(CANARY)
    ends_ms = (canary["bucket"] - counts.window.start).dt.total_milliseconds().to_numpy()
    ends_ms = ends_ms + counts.bucket.total_seconds() * 1000
    look_ms = plan.look.total_seconds() * 1000
    looks = np.ceil(ends_ms / look_ms - 1e-9).astype(np.int64) - 1
    return np.clip(looks, 0, n_looks)


def spike_evidence(
    gate: Gate,
    counts: measures.Counts,
    plan: SequentialPlan,
    fixed: GateEvidence,
    fine: measures.Counts | None = None,
) -> GateEvidence:
    """Buckets can fail; the window-wide claim that the canary is inside the tolerance
    can pass.

    Each bucket is tested once, at the look that completes it, with the robust dispersion
    of the buckets complete by then (frozen: later data never move it), at alpha split
    over the buckets the horizon holds (Bonferroni: a bucket re-tested at every look of
    its hour, or Holm over the buckets seen times the planned looks, spent alpha up to
    576 times over and missed a labelled bad hour). The window-wide claim is an
    e-process on the increments per look of `fine` (the counts per minute; the buckets
    themselves when not given), read at each look (`current_pvalues`)."""
    if fixed.missing:
        return fixed
    n_looks = max(1, math.ceil(counts.window.duration / plan.look))
    done = _completed_at(counts, plan, n_looks)
    planned = max(math.ceil(plan.horizon / counts.bucket), len(done))
    per_look = np.ones(n_looks)
    for look in np.unique(done[done < n_looks]):
        complete = int(np.sum(done <= look))  # buckets are in time order
        pvalues, _ = bucket_pvalues(gate, counts, bucket_dispersion(gate, counts, complete))
        now = (done == look) & ~np.isnan(pvalues)
        if now.any():
            per_look[look] = min(1.0, float(np.min(pvalues[now])) * planned)
    path_harm = np.minimum.accumulate(per_look)
    alpha = one_sided_alpha(gate)
    wide = fine if fine is not None else counts
    parts = _per_look(wide, plan)
    canary, control = parts[CANARY], parts[CONTROL]
    y, e = canary["events"].to_numpy(), canary["exposure"].to_numpy()
    m, f = control["events"].to_numpy(), control["exposure"].to_numpy()
    phi, burn = running_dispersion(gate, wide, _look_ends(canary, plan))
    if gate.compare.against == "bound":
        safe = sequential_poisson_test(
            y, e, bound=gate.tolerance, worse=flip(gate.worse), alpha=alpha, dispersion=phi
        )
        low, high = fixed.ci_low, fixed.ci_high
    else:
        safe = sequential_rate_test(
            y, e, m, f, bound=gate.tolerance, worse=flip(gate.worse), alpha=alpha,
            dispersion=phi,
        )  # fmt: skip
        low, high = rate_sequence_bounds(y, e, m, f, alpha=alpha, dispersion=phi)
    path_safe = _held(safe, burn)
    if isinstance(fixed.details, SpikeDetails) and fixed.details.p_excess is not None:
        # the excess claim at each look on the data so far, alpha split over the looks
        excess = _excess_path(gate, (y, e, m, f), plan.planned_looks)
        path_safe = np.minimum(1.0, 2.0 * np.minimum(path_safe, excess))
    return replace(
        fixed,
        ci_low=low,
        ci_high=high,
        p_harm=float(path_harm[-1]),
        p_safe=float(path_safe[-1]) if len(path_safe) else 1.0,
        method=f"{fixed.method}; sequential: each bucket tested once when complete, alpha "
        f"split over the {planned} buckets of the horizon; window-wide: mixture SPRT over "
        f"{len(y)} looks (anytime-valid)",
        anytime=True,
        path_harm=tuple(path_harm),
        path_safe=tuple(path_safe),
        sequence=SpikeSequenceDetails(planned),
    )


def _excess_path(gate: Gate, per_look: tuple[np.ndarray, ...], looks: int) -> np.ndarray:
    """The spike gate's excess claim (`rate_excess_pvalue`) on the data up to every look,
    times the planned looks (a fixed-window test read at each of them)."""
    y, e, m, f = (np.cumsum(a) for a in per_look)
    out = np.ones(len(y))
    last = None
    for k in range(len(y)):
        key = (y[k], e[k], m[k], f[k])
        if key != last:  # a look that added nothing keeps the previous figure
            p = rate_excess_pvalue(*key, gate.tolerance_excess)
            value = 1.0 if math.isnan(p) else min(1.0, p * looks)
            last = key
        out[k] = value
    return out


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


def design_effect_per_look(
    values: np.ndarray,
    clusters: np.ndarray,
    looks: np.ndarray,
    n_looks: int,
    q: float,
    every: int,
) -> np.ndarray:
    """Each look's design effect from the samples up to it, frozen as φ is: computed at
    every `every`-th look (an hour) on the data so far, running maximum, and each look
    uses the figure of the last such look before it (the first hour: its own data).
    Recomputing from all data and applying it to past looks moved past log p-values by
    up to 0.46, so a borderline decision could be undone."""
    order = np.argsort(looks, kind="stable")
    v, c, lk = values[order], clusters[order], looks[order]
    ends = np.searchsorted(lk, np.arange(n_looks), side="right")  # samples up to look k
    out = np.ones(n_looks)
    best = 1.0
    for k in range(n_looks):
        if k < every or (k + 1) % every == 0:
            current = _design_effect(v[: ends[k]], c[: ends[k]], q)
            best = current if k < every else max(best, current)
            if k == every - 1:
                best = current
        out[k] = best
    return out


def survival_evidence(
    gate: Gate,
    durations: measures.Durations | None,
    window: measures.Window,
    plan: SequentialPlan,
    fixed: GateEvidence,
) -> GateEvidence:
    """A duration quantile against an absolute bound, anytime-valid.

    "The q-quantile of connection lifetimes is above b" is "more than 1 - q of
    connections live past b". A connection's answer to that is known once it is b old,
    whatever happened to it, so at every look the connections opened at least b before
    it are a sample of independent Bernoulli(S(b)) answers in the order they opened
    (those that closed sooner are not: short lives would come in first), and the
    one-sided beta-binomial mixture (`bernoulli_log_mixture`) tests S(b) against 1 - q
    at every look at once. The pass claim reads S(tolerance), the harm claim S(bound).
    Data without open times (the push-down path) or weighted rows keep the fixed
    Kaplan–Meier test with alpha split over the planned looks.
    """
    frame = durations.frame if durations is not None else None
    if (
        fixed.missing
        or frame is None
        or "opened" not in frame.columns
        or "weight" in frame.columns
        or gate.compare.against != "bound"
    ):
        return bonferroni_over_looks(fixed, plan) if not fixed.missing else fixed
    canary = frame.filter(pl.col("variant") == CANARY)
    opened = (canary["opened"] - window.start).dt.total_milliseconds().to_numpy() / 1000.0
    lived = canary["duration"].to_numpy()
    # only connections the window saw open: one already open at its start is there
    # because it lived long (length bias), and its answer came before the canary did
    opened, lived = opened[opened >= 0], lived[opened >= 0]
    n_looks = max(1, math.ceil(window.duration / plan.look))
    ends = plan.look.total_seconds() * np.arange(1, n_looks + 1)
    alpha = one_sided_alpha(gate)
    p0 = 1.0 - gate.quantile
    per_hour = np.sum(opened < BURN_IN.total_seconds()) / min(
        1.0, window.duration / BURN_IN
    )  # connections opened in the first hour (or at its pace)
    rho = best_rho(max(100.0, per_hour * PLANNED_HOURS) * p0 * (1 - p0), alpha)

    def log_e(line: float, side: str) -> np.ndarray:
        entered = np.sort(opened + line)  # when each answer is known
        n = np.searchsorted(entered, ends, side="right").astype(float)
        lives_past = np.sort(opened[lived > line] + line)
        k = np.searchsorted(lives_past, ends, side="right").astype(float)
        return np.where(n > 0, bernoulli_log_mixture(k, n, p0, rho, side), 0.0)

    # the q-quantile above a line: S(line) above 1 - q; below it: S(line) below 1 - q
    longer = gate.worse == "decrease"
    harm = log_e(gate.compare.bound, "below" if longer else "above")
    safe = log_e(gate.tolerance, "above" if longer else "below")
    path_harm = np.minimum.accumulate(np.minimum(1.0, np.exp(-np.maximum.accumulate(harm))))
    path_safe = np.minimum(1.0, np.exp(-safe))
    matured = int(np.sum(opened + gate.tolerance <= ends[-1]))
    return replace(
        fixed,
        p_harm=float(path_harm[-1]),
        p_safe=float(path_safe[-1]),
        method=f"{fixed.method} (interval); decisions: connections past each line's age "
        f"as Bernoulli answers, beta-binomial mixture over {n_looks} looks every "
        f"{_minutes(plan)} min (anytime-valid; {matured} connections old enough to tell)",
        anytime=True,
        path_harm=tuple(path_harm),
        path_safe=tuple(path_safe),
        sequence=SurvivalSequenceDetails(matured, n_looks),
    )


PLANNED_HOURS = 3.0  # the size a quantile sequence is tuned for: 3 h at the first hour's pace


def planned_samples(
    sequence: QuantileLooks, window: measures.Window, plan: SequentialPlan
) -> float:
    """The samples `PLANNED_HOURS` bring at the pace of the first hour (or of the data so
    far, while shorter). It reads only how many samples arrived, never their values,
    so a mixture tuned on it stays a fixed mixture for the values (valid at every look)."""
    per_hour = max(1, round(BURN_IN / plan.look))
    looks = min(per_hour, sequence.n_looks)
    hours = min(looks * plan.look, window.duration) / BURN_IN
    first = float(sequence.n[looks - 1]) if sequence.n_looks else 0.0
    return max(100.0, first / max(hours, 1e-9) * PLANNED_HOURS)


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
        effects.append(
            design_effect_per_look(
                values,
                part["cluster"].to_numpy(),
                look.astype(np.int64),
                n_looks,
                gate.quantile,
                max(1, round(BURN_IN / plan.look)),
            )  # fmt: skip
        )
    canary, control = sequences
    deff = (effects[0], effects[1])
    alpha = one_sided_alpha(gate)
    # each variant's side of a claim spends half the gate's level; the mixtures are tuned
    # there (never at the level a p-value search tries), for the planned size
    rhos = tuple(
        best_rho(planned_samples(v, window, plan) * gate.quantile * (1 - gate.quantile), alpha / 2)
        for v in sequences
    )
    increase = gate.worse == "increase"
    path_harm = quantile_difference_pvalues(
        canary, control, gate.quantile, fixed.limit, "above" if increase else "below", deff,
        rhos,
    )  # fmt: skip
    path_safe = quantile_difference_pvalues(
        canary, control, gate.quantile, gate.tolerance, "below" if increase else "above",
        deff, rhos, running=False,
    )  # fmt: skip
    # the interval as the decisions read it: the harm side intersected over the looks,
    # the safety side this look's own
    q = gate.quantile
    running = (canary.bounds(q, alpha / 2, deff[0], rhos[0], running=True),
               control.bounds(q, alpha / 2, deff[1], rhos[1], running=True))  # fmt: skip
    now = (canary.bounds(q, alpha / 2, deff[0], rhos[0], running=False),
           control.bounds(q, alpha / 2, deff[1], rhos[1], running=False))  # fmt: skip
    low_from, high_from = (running, now) if increase else (now, running)
    return replace(
        fixed,
        ci_low=float(low_from[0][0][-1] - low_from[1][1][-1]),
        ci_high=float(high_from[0][1][-1] - high_from[1][0][-1]),
        p_harm=float(path_harm[-1]),
        p_safe=float(path_safe[-1]),
        method=f"quantile confidence sequences (Howard & Ramdas) over {n_looks} looks every "
        f"{_minutes(plan)} min, session design effect {deff[0][-1]:.2f} / {deff[1][-1]:.2f} "
        "(each look's frozen; anytime-valid)",
        anytime=True,
        path_harm=tuple(path_harm),
        path_safe=tuple(path_safe),
        sequence=QuantileSequenceDetails([float(deff[0][-1]), float(deff[1][-1])], n_looks),
    )
