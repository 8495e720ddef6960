"""One plain sentence per gate, for the manager who reads only the banner and the table.

Example: "p95 assistant time-to-first-byte is 1.21 s on canary vs 1.18 s on control;
the difference, +30 ms (95% CI -5 to +62 ms), is within the 100 ms margin."
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


def _detectable_text(gate: Gate) -> str:
    relative = gate.compare.against == "control" and gate.compare.margin_type == "relative"
    if relative:
        return _ratio(gate.detectable)
    return format_value(gate.detectable, gate.unit, signed=gate.compare.against == "control")


def sentence(gate: Gate, result: GateResult) -> str:
    e = result.evidence
    if result.decision == "no_data":
        return f"{gate.title}: no data ({e.reason or 'the metric is missing'})."
    relative = gate.compare.against == "control" and gate.compare.margin_type == "relative"
    level = f"{gate.confidence:.0%} CI"
    if gate.statistic == "spike":
        details = e.details
        when = details.get("worst_bucket", "?")[11:16]
        canary_part = (
            f"{details.get('worst_bucket_events', 0):.0f} in "
            f"{details.get('worst_bucket_exposure', 0):.0f}"
        )
        if relative:
            where = (
                f"the worst bucket ({when}) had {canary_part} on canary against "
                f"{details.get('worst_bucket_control_events', 0):.0f} in "
                f"{details.get('worst_bucket_control_exposure', 0):.0f} on control"
            )
        else:
            where = (
                f"the worst bucket ({when}) had {canary_part} "
                f"({format_value(e.effect, gate.unit)}, {level} "
                f"{format_value(e.ci_low, gate.unit)} to {format_value(e.ci_high, gate.unit)})"
            )
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
    if result.decision == "fail":
        tail = f"is worse than {limit} (p = {result.p_adjusted:.2g} after correction)"
    elif result.decision == "pass":
        inside = e.ci_high is not None and (
            e.ci_high <= e.limit if gate.worse == "increase" else e.ci_low >= e.limit
        )
        within = "meets the bound:" if gate.compare.against == "bound" else "is within"
        tail = (
            f"{within} {limit}"
            if inside
            else f"shows no breach of {limit}, and {_detectable_text(gate)}"
            f"{' across the window' if gate.statistic == 'spike' else ''} would have been "
            f"detected with {e.power:.0%} power"
        )
    elif not e.sufficient:
        tail = (
            f"rests on too little data to judge against {limit} ({e.reason or 'below the minimum'})"
        )
    else:
        power = "" if math.isnan(e.power) else f" (power {e.power:.0%})"
        tail = (
            f"shows no breach of {limit}, but too little data to rule out "
            f"{_detectable_text(gate)}{power}"
        )
    return f"{head}; this {tail}."
