"""One plain sentence per gate, for the manager who reads only the banner and the table.

Example: "Error rate is 1.02% on canary vs 1.00% on control; the ratio, ×1.02 (95% CI
×0.86 to ×1.22); this passes: the upper 95% limit, ×1.22, is inside the ×1.50 tolerance."
"""

from __future__ import annotations

from wsanalysis.canary.formatting import (
    format_duration,
    format_value,
    limit_text,
    ratio_text,
    tolerance_text,
)
from wsanalysis.canary.gate_spec import Gate
from wsanalysis.canary.kinds import kind_of
from wsanalysis.canary.verdict import Decision, GateEvidence, Verdict

__all__ = ["format_duration", "format_value", "sentence", "verdict_line"]


def verdict_line(verdict: Verdict) -> str:
    """The one line the judge prints first: the verdict, and for INCONCLUSIVE how much
    longer at this traffic would settle it (the pipeline's "retry after")."""
    if verdict.overall != "INCONCLUSIVE" or verdict.settle_in_s is None:
        return f"{verdict.overall}: {verdict.reason}"
    unsettled = [g for g in verdict.gates if g.decision in ("inconclusive", "no_data")]
    slowest = max(unsettled, key=lambda g: g.settle_in_s)
    others = [g.name for g in unsettled if g is not slowest]
    tail = f" (and sooner: {', '.join(others)})" if others else ""
    return (
        f"INCONCLUSIVE: {format_duration(verdict.settle_in_s)} more at this traffic would "
        f"settle {slowest.name}{tail}"
    )


def _level_text(gate: Gate, e: GateEvidence) -> str:
    return f"{gate.confidence:.0%}{' anytime-valid' if e.anytime else ''}"


def sentence(
    gate: Gate,
    e: GateEvidence,
    decision: Decision,
    *,
    p_harm: float,
    p_safe: float,
    settle_in_s: float | None,
    n_gates: int = 1,
) -> str:
    """The gate's sentence: what was measured (its kind says how), and why it is decided
    as it is."""
    if decision == "no_data":
        if not e.missing and gate.min_exposure > 0 and e.exposure < gate.min_exposure:
            return (
                f"{gate.title}: not judged, the canary's exposure ({e.exposure:,.0f}) is below "
                f"the gate's minimum of {gate.min_exposure:,.0f}; nothing failed."
            )
        return f"{gate.title}: no data ({e.reason or 'the metric is missing'})."
    kind = kind_of(gate)
    head = kind.head(gate, e)

    def scaled(value: float | None) -> str:
        if kind.scale(gate) == "ratio":
            return ratio_text(value)
        return format_value(value, gate.unit, signed=gate.compare.against == "control")

    limit = limit_text(gate)
    increase = gate.worse == "increase"
    near, far = ("upper", "lower") if increase else ("lower", "upper")
    near_value = e.ci_high if increase else e.ci_low
    far_value = e.ci_low if increase else e.ci_high
    window = kind.window_word
    tolerance = f"the {tolerance_text(gate)} tolerance"
    lv = _level_text(gate, e)
    correction = f" across {n_gates} gates" if n_gates > 1 else ""
    if decision == "fail":
        tail = kind.fail_tail(gate, limit, p_harm, correction) or (
            f"is worse than {limit}: the {far} {lv} limit, {scaled(far_value)}, is "
            f"beyond it (p = {p_harm:.2g} after correction{correction})"
        )
    elif decision == "pass":
        tail = kind.pass_tail(gate, e, near_value, lv) or (
            f"passes: the {near}{window} {lv} limit, {scaled(near_value)}, is inside {tolerance}"
        )
    else:
        inside = near_value is not None and (
            near_value <= gate.tolerance if increase else near_value >= gate.tolerance
        )
        if not e.sufficient:
            why = f"rests on too little data ({e.reason or 'below the method minimum'})"
        elif inside:
            why = (
                f"is not settled: the {near}{window} {lv} limit, {scaled(near_value)}, "
                f"is inside {tolerance} but not after the correction{correction} "
                f"(p = {p_safe:.2g})"
            )
        else:
            why = (
                f"is not settled: the {near}{window} {lv} limit, {scaled(near_value)}, "
                f"is not inside {tolerance}, and nothing shows it worse than {limit}"
            )
        wait = (
            f"; {format_duration(settle_in_s)} more at this traffic would settle it"
            if settle_in_s is not None
            else ""
        )
        tail = why + wait
    return f"{head}; this {tail}."
