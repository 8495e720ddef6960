"""One plain sentence per gate, for the manager who reads only the banner and the table.

Example: "Error rate is 1.02% on canary vs 1.00% on control; the ratio, ×1.02 (95% CI
×0.86 to ×1.22); this passes: the upper 95% limit, ×1.22, is inside the ×1.50 tolerance."
"""

from __future__ import annotations

import math

from wsanalysis.canary.gates import Gate
from wsanalysis.canary.verdict import GateResult


def format_value(value: float | None, unit: str, signed: bool = False) -> str:
    """A number in the unit a reader expects: ms or s, min or h, percent for rates."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    sign = "+" if signed and value > 0 else ""
    if unit == "s":
        magnitude = abs(value)
        if magnitude < 1:
            return f"{sign}{value * 1000:.0f} ms"
        if magnitude < 120:
            return f"{sign}{value:.2f} s"
        if magnitude < 7200:
            return f"{sign}{value / 60:.1f} min"
        return f"{sign}{value / 3600:.2f} h"
    if unit.startswith("per"):
        return f"{sign}{value * 100:.2f}%"
    return f"{sign}{value:.3g}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"×{value:.2f}"


def _limit_text(gate: Gate) -> str:
    compare = gate.compare
    if compare.against == "bound":
        word = "at most" if gate.worse == "increase" else "at least"
        return f"{word} {format_value(compare.bound, gate.unit)}"
    if compare.margin_type == "relative":
        return f"control {'+' if gate.worse == 'increase' else '-'} {compare.margin:.0%}"
    return f"the {format_value(compare.margin, gate.unit)} margin"


def _tolerance_text(gate: Gate) -> str:
    if gate.relative:
        return _ratio(gate.tolerance)
    return format_value(gate.tolerance, gate.unit, signed=gate.compare.against == "control")


def _on_scale(gate: Gate, value: float | None) -> str:
    """A limit on the gate's effect scale: ×ratio, signed difference, or the figure."""
    if gate.relative or (gate.statistic == "spike" and gate.compare.against == "control"):
        return _ratio(value)
    return format_value(value, gate.unit, signed=gate.compare.against == "control")


def format_duration(seconds: float) -> str:
    """`about 1 h 40 min`: a wait a person reads, rounded to what a projection is worth."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        rest = 10 * round(rest / 10)
        if rest == 60:
            hours, rest = hours + 1, 0
        return f"about {hours} h" + (f" {rest} min" if rest else "")
    days, hours = divmod(round(minutes / 60), 24)
    return f"about {days} d" + (f" {hours} h" if hours else "")


def verdict_line(verdict) -> str:
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


def _level_text(gate: Gate, e) -> str:
    return f"{gate.confidence:.0%}{' anytime-valid' if e.anytime else ''}"


def _passed_on_excess(gate: Gate, e, near_value: float | None) -> bool:
    """A spike gate that passed on its absolute excess, not on the ratio."""
    return (
        gate.tolerance_excess is not None
        and e.details.get("excess_high") is not None
        and not (near_value is not None and near_value <= gate.tolerance)
    )


def sentence(gate: Gate, result: GateResult, n_gates: int = 1) -> str:
    e = result.evidence
    if result.decision == "no_data":
        if not e.missing and gate.min_exposure > 0 and e.exposure < gate.min_exposure:
            return (
                f"{gate.title}: not judged, the canary's exposure ({e.exposure:,.0f}) is below "
                f"the gate's minimum of {gate.min_exposure:,.0f}; nothing failed."
            )
        return f"{gate.title}: no data ({e.reason or 'the metric is missing'})."
    relative = gate.relative
    level = f"{gate.confidence:.0%} CI"
    if gate.statistic == "spike":
        details = e.details
        when = details.get("worst_bucket", "?")[11:16]
        canary_part = (
            f"{details.get('worst_bucket_events', 0):.0f} in "
            f"{details.get('worst_bucket_exposure', 0):.0f}"
        )
        if gate.compare.against == "control":
            where = (
                f"the worst bucket ({when}) had {canary_part} on canary against "
                f"{details.get('worst_bucket_control_events', 0):.0f} in "
                f"{details.get('worst_bucket_control_exposure', 0):.0f} on control"
            )
        else:
            where = f"the worst bucket ({when}) had {canary_part}"
        head = (
            f"{gate.title}: {format_value(e.canary, gate.unit)} overall on canary vs "
            f"{format_value(e.control, gate.unit)} on control; {where}, "
            f"{details.get('buckets', 0)} buckets tested"
        )
    elif gate.compare.against == "bound":
        head = (
            f"{gate.title} is {format_value(e.canary, gate.unit)} on canary "
            f"({level} {format_value(e.ci_low, gate.unit)} to {format_value(e.ci_high, gate.unit)})"
        )
    else:
        effect = (
            f"the ratio, {_ratio(e.effect)} ({level} {_ratio(e.ci_low)} to {_ratio(e.ci_high)})"
            if relative
            else (
                f"the difference, {format_value(e.effect, gate.unit, True)} ({level} "
                f"{format_value(e.ci_low, gate.unit, True)} to "
                f"{format_value(e.ci_high, gate.unit, True)})"
            )
        )
        head = (
            f"{gate.title} is {format_value(e.canary, gate.unit)} on canary vs "
            f"{format_value(e.control, gate.unit)} on control; {effect}"
        )
    limit = _limit_text(gate)
    increase = gate.worse == "increase"
    near, far = ("upper", "lower") if increase else ("lower", "upper")
    near_value = e.ci_high if increase else e.ci_low
    far_value = e.ci_low if increase else e.ci_high
    window = " window-wide" if gate.statistic == "spike" else ""
    tolerance = f"the {_tolerance_text(gate)} tolerance"
    lv = _level_text(gate, e)
    correction = f" across {n_gates} gates" if n_gates > 1 else ""
    if result.decision == "fail":
        if gate.statistic == "spike":
            tail = (
                f"is a spike worse than {limit} (p = {result.p_adjusted:.2g} after correction "
                f"over buckets{correction})"
            )
        else:
            tail = (
                f"is worse than {limit}: the {far} {lv} limit, {_on_scale(gate, far_value)}, is "
                f"beyond it (p = {result.p_adjusted:.2g} after correction{correction})"
            )
    elif result.decision == "pass" and _passed_on_excess(gate, e, near_value):
        tail = (
            f"passes: the canary's window-wide excess over control is at most "
            f"{format_value(e.details['excess_high'], gate.unit, signed=True)} ({lv}), inside "
            f"the {format_value(gate.tolerance_excess, gate.unit, signed=True)} excess tolerance"
        )
    elif result.decision == "pass":
        tail = (
            f"passes: the {near}{window} {lv} limit, {_on_scale(gate, near_value)}, is inside "
            f"{tolerance}"
        )
    else:
        inside = near_value is not None and (
            near_value <= gate.tolerance if increase else near_value >= gate.tolerance
        )
        if not e.sufficient:
            why = f"rests on too little data ({e.reason or 'below the method minimum'})"
        elif inside:
            why = (
                f"is not settled: the {near}{window} {lv} limit, {_on_scale(gate, near_value)}, "
                f"is inside {tolerance} but its test does not show it at the gate's level "
                f"(p = {result.p_safe_adjusted:.2g})"
            )
        else:
            why = (
                f"is not settled: the {near}{window} {lv} limit, {_on_scale(gate, near_value)}, "
                f"is not inside {tolerance}, and nothing shows it worse than {limit}"
            )
        wait = (
            f"; {format_duration(result.settle_in_s)} more at this traffic would settle it"
            if result.settle_in_s is not None
            else ""
        )
        tail = why + wait
    return f"{head}; this {tail}."
