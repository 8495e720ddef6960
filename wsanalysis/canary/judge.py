"""The judge: every gate of a profile evaluated on the data, then the verdict.

Per gate, `measures` turns the frames into the statistic's input and a function of
`wsanalysis.stats` computes the evidence (estimate, interval, one-sided p-value of
harm, power at the gate's detectable effect). Holm across the profile's gates
controls false NO_GOs; `verdict.decide` applies the rule. Nothing here reads files:
the CLI and the notebooks hand it frames.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import polars as pl

from wsanalysis.canary import evidence
from wsanalysis.canary.gates import Gate, Profile
from wsanalysis.canary.sentences import sentence
from wsanalysis.canary.verdict import GateEvidence, GateResult, Verdict, decide, overall
from wsanalysis.frames import measures
from wsanalysis.frames import measures as frame_measures
from wsanalysis.frames.counters import total_increase
from wsanalysis.frames.measures import Window
from wsanalysis.pushdown.partial import inconclusive_on_warnings
from wsanalysis.stats.multiplicity import holm
from wsanalysis.stats.srm import sample_ratio_mismatch

CANARY, CONTROL = evidence.CANARY, evidence.CONTROL
GATE_WORKERS = 4  # gates evaluated at once; more gain nothing on a few cores


@dataclass(frozen=True)
class SequentialPlan:
    """Looks every `look` through a canary of `horizon`: how a pipeline asks repeatedly.

    Rate gates against control use a mixture SPRT (anytime-valid: looking more often
    costs no false alarms). Other gates split their alpha over the planned looks
    (Bonferroni), which stays valid however many of the planned looks are taken.
    Before the horizon the verdict is NO_GO or INCONCLUSIVE ("keep watching"); GO is
    only given once the horizon is reached.
    """

    look: timedelta = timedelta(minutes=5)
    horizon: timedelta = timedelta(hours=48)

    @property
    def planned_looks(self) -> int:
        return max(1, math.ceil(self.horizon / self.look))


@dataclass(frozen=True)
class JudgeInput:
    """The data a verdict is about: frames from any source, and the declared split."""

    samples: pl.DataFrame
    beacons: pl.DataFrame | None
    window: Window | None = None
    canary_share: float | None = None
    metadata: dict = field(default_factory=dict)
    sequential: SequentialPlan | None = None
    # push-down: RUM gate inputs from an engine (wsanalysis.pushdown.rum.EngineMeasures),
    # asked as `frames.measures` is; None reads them from `beacons`
    measures: Any = None

    def resolved_window(self) -> Window | None:
        return self.window or Window.of(self.samples, self.beacons)


# -- the gate and the profile -----------------------------------------------------------


def evaluate_gate(gate: Gate, data: JudgeInput, window: Window) -> GateEvidence:
    """Evidence for one gate, or `no_data` evidence saying what was missing."""
    measures = data.measures or frame_measures  # push-down or the frames
    limit = gate.compare.bound if gate.compare.against == "bound" else gate.compare.limit(1.0)
    if gate.statistic in ("rate", "share", "spike"):
        bucket = gate.bucket or measures.RATE_BUCKET
        counts = measures.counts(
            gate.events, gate.exposure, data.samples, data.beacons, window, bucket, gate.prefer
        )
        if counts is None:
            return GateEvidence.no_data(limit, "events or exposure missing for a variant")
        if gate.statistic == "spike":
            return _per_look(evidence.spike_evidence(gate, counts), data.sequential)
        fixed = evidence.rate_evidence(gate, counts)
        relative = gate.compare.against == "control" and gate.compare.margin_type == "relative"
        if data.sequential is not None and relative and not fixed.missing:
            return evidence.sequential_rate_evidence(gate, counts, data.sequential.look, fixed)
        return _per_look(fixed, data.sequential)
    source = gate.samples
    if gate.statistic == "survival_quantile":
        durations = (
            measures.connection_durations(source.rum, data.beacons, window) if source.rum else None
        )
        return evidence.survival_evidence(gate, durations)
    samples = measures.rum_samples(source.rum, data.beacons) if source.rum else None
    histogram = (
        measures.histogram_counts(source.histogram, data.samples) if source.histogram else None
    )
    if gate.prefer == "prometheus" and histogram is not None:
        samples = None
    return _per_look(evidence.quantile_evidence(gate, samples, histogram), data.sequential)


def _per_look(found: GateEvidence, plan: SequentialPlan | None) -> GateEvidence:
    """Bonferroni over the planned looks, for gates without an anytime-valid test."""
    if plan is None or found.missing or math.isnan(found.p_harm):
        return found
    p = min(1.0, found.p_harm * plan.planned_looks)
    return replace(
        found, p_harm=p, method=f"{found.method}; alpha split over {plan.planned_looks} looks"
    )


def judge(profile: Profile, data: JudgeInput) -> Verdict:
    """Evaluate every gate of `profile` on `data` and decide.

    The gates and the sample-ratio check are independent and spend their time in
    polars and numpy with the GIL released, so they run side by side: one gate's
    single-threaded sort overlaps another's scan.
    """
    window = data.resolved_window()
    if window is None:
        found = [GateEvidence.no_data(math.nan, "the window holds no data")] * len(profile.gates)
        srm_problem = None
    else:
        with ThreadPoolExecutor(GATE_WORKERS) as pool:
            split = pool.submit(_sample_ratio_problem, profile, data)
            found = list(pool.map(lambda gate: evaluate_gate(gate, data, window), profile.gates))
            srm_problem = split.result()
    adjusted = holm([e.p_harm for e in found]).tolist()
    results = []
    for gate, gate_evidence, p in zip(profile.gates, found, adjusted, strict=True):
        result = GateResult(
            name=gate.name,
            title=gate.title,
            critical=gate.critical,
            statistic=gate.statistic,
            unit=gate.unit,
            comparison=gate.compare.against,
            worse=gate.worse,
            evidence=gate_evidence,
            p_adjusted=p,
            decision=decide(gate_evidence, p, evidence.one_sided_alpha(gate), gate.power),
            sentence="",
        )
        results.append(replace(result, sentence=sentence(gate, result)))
    # a server's warnings (partial data) make the gates they touch inconclusive
    results = inconclusive_on_warnings(profile, results, data.metadata)
    verdict, reason = overall(results, srm_problem)
    metadata = {**data.metadata, "window": _window_json(window), "srm": srm_problem}
    if data.sequential is not None:
        plan = data.sequential
        elapsed = window.duration if window is not None else timedelta(0)
        metadata["sequential"] = {
            "look_minutes": plan.look.total_seconds() / 60,
            "horizon_hours": plan.horizon.total_seconds() / 3600,
            "planned_looks": plan.planned_looks,
            "looks_so_far": min(plan.planned_looks, math.ceil(elapsed / plan.look)),
            "elapsed_hours": elapsed.total_seconds() / 3600,
        }
        if verdict != "NO_GO" and elapsed < plan.horizon:
            progress = (
                f"{elapsed.total_seconds() / 3600:.1f} h of the "
                f"{plan.horizon.total_seconds() / 3600:.0f} h canary"
            )
            settled = "No gate has failed" if verdict == "GO" else reason.rstrip(".")
            verdict, reason = "INCONCLUSIVE", f"{settled} after {progress}; keep watching."
    return Verdict(verdict, reason, tuple(results), profile.name, "wsanalysis", metadata)


def _window_json(window: Window | None) -> dict | None:
    if window is None:
        return None
    return {"start": window.start.isoformat(), "end": window.end.isoformat()}


def _sample_ratio_problem(profile: Profile, data: JudgeInput) -> str | None:
    """A sentence when the observed split contradicts the declared canary share."""
    if data.canary_share is None:
        return None
    units = _split_units(profile, data)
    if units is None:
        return None
    unit_name, canary_n, control_n = units
    result = sample_ratio_mismatch(canary_n, control_n, data.canary_share)
    if result.pvalue < profile.srm_alpha:
        observed = canary_n / (canary_n + control_n)
        return (
            f"Sample-ratio mismatch: the canary has {observed:.1%} of {unit_name} against the "
            f"declared {data.canary_share:.0%} (p = {result.pvalue:.1e}); the traffic split is "
            "not what was declared, so no comparison can be trusted."
        )
    return None


def _split_units(profile: Profile, data: JudgeInput) -> tuple[str, int, int] | None:
    """Sessions per variant from RUM, else connections opened from the server."""
    if profile.srm_unit == "sessions" and data.beacons is not None and not data.beacons.is_empty():
        counts = measures.sessions_per_variant(data.beacons, (CANARY, CONTROL))
        units = "sessions"
    else:
        opened = data.samples.filter(pl.col("metric") == "ws_connections_total")
        if opened.is_empty():
            return None
        per = total_increase(opened)
        counts = {r["variant"]: int(r["increase"]) for r in per.iter_rows(named=True)}
        units = "connections"
    if CANARY not in counts or CONTROL not in counts:
        return None
    return units, counts[CANARY], counts[CONTROL]
