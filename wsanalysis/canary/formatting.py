"""Numbers and limits as a reader expects them: units, ratios, waits, a gate's two lines.

Shared by the sentences, the gate kinds and the report's table, so a figure reads the
same wherever it is shown.
"""

from __future__ import annotations

import math

from wsanalysis.canary.gate_spec import Gate


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


def ratio_text(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"×{value:.2f}"


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


def limit_text(gate: Gate) -> str:
    """Where harm starts, in words: `at most 5.00%`, `control + 10%`, `the 100 ms margin`."""
    compare = gate.compare
    if compare.against == "bound":
        word = "at most" if gate.worse == "increase" else "at least"
        return f"{word} {format_value(compare.bound, gate.unit)}"
    if compare.margin_type == "relative":
        return f"control {'+' if gate.worse == 'increase' else '-'} {compare.margin:.0%}"
    return f"the {format_value(compare.margin, gate.unit)} margin"


def tolerance_text(gate: Gate) -> str:
    if gate.relative:
        return ratio_text(gate.tolerance)
    return format_value(gate.tolerance, gate.unit, signed=gate.compare.against == "control")


def on_scale(gate: Gate, value: float | None) -> str:
    """A value on the gate's effect scale: ×ratio, signed difference, or the figure."""
    if gate.relative:
        return ratio_text(value)
    return format_value(value, gate.unit, signed=gate.compare.against == "control")
