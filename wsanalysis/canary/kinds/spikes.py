"""Spikes: a rate tested in every time bucket (a burst is not averaged away by quiet
hours), against control in the same bucket or against a bound; a pass is window-wide."""

from __future__ import annotations

from typing import Any, ClassVar

from wsanalysis.canary import anytime, evidence
from wsanalysis.canary.details import SpikeDetails
from wsanalysis.canary.formatting import format_value, ratio_text
from wsanalysis.canary.gate_spec import CompareSpec, Gate
from wsanalysis.canary.judge_input import JudgeInput
from wsanalysis.canary.kinds.base import register
from wsanalysis.canary.kinds.rates import _Rates
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames.measures import Window


@register
class SpikeKind(_Rates):
    statistics: ClassVar[tuple[str, ...]] = ("spike",)
    bucketed: ClassVar[bool] = True
    excess: ClassVar[bool] = True
    window_word: ClassVar[str] = " window-wide"

    def check_compare(self, statistic: str, compare: CompareSpec) -> tuple[str, str] | None:
        if compare.against == "control" and compare.margin_type != "relative":
            return "margin_type", "must be relative for a spike against control"
        return None

    def evidence(self, gate: Gate, measured: Any, data: JudgeInput, window: Window) -> GateEvidence:
        fixed = evidence.spike_evidence(gate, measured)
        plan = data.sequential
        return anytime.spike_evidence(gate, measured, plan, fixed) if plan else fixed

    def scale(self, gate: Gate) -> str:
        return "ratio" if gate.compare.against == "control" else "figure"

    def head(self, gate: Gate, e: GateEvidence) -> str:
        found = e.details if isinstance(e.details, SpikeDetails) else None
        when = found.worst_bucket[11:16] if found else "?"
        events = found.worst_bucket_events if found else 0
        exposure = found.worst_bucket_exposure if found else 0
        canary_part = f"{events:.0f} in {exposure:.0f}"
        if gate.compare.against == "control":
            control_events = found.worst_bucket_control_events if found else 0
            control_exposure = found.worst_bucket_control_exposure if found else 0
            where = (
                f"the worst bucket ({when}) had {canary_part} on canary against "
                f"{control_events:.0f} in {control_exposure:.0f} on control"
            )
        else:
            where = f"the worst bucket ({when}) had {canary_part}"
        return (
            f"{gate.title}: {format_value(e.canary, gate.unit)} overall on canary vs "
            f"{format_value(e.control, gate.unit)} on control; {where}, "
            f"{found.buckets if found else 0} buckets tested"
        )

    def fail_tail(self, gate: Gate, limit: str, p_harm: float, correction: str) -> str | None:
        return (
            f"is a spike worse than {limit} (p = {p_harm:.2g} after correction "
            f"over buckets{correction})"
        )

    def pass_tail(self, gate: Gate, e: GateEvidence, near: float | None, level: str) -> str | None:
        """Passed on the absolute excess over control, not on the ratio."""
        found = e.details if isinstance(e.details, SpikeDetails) else None
        if (
            gate.tolerance_excess is None
            or found is None
            or found.excess_high is None
            or (near is not None and near <= gate.tolerance)
        ):
            return None
        return (
            f"passes: the canary's window-wide excess over control is at most "
            f"{format_value(found.excess_high, gate.unit, signed=True)} ({level}), inside "
            f"the {format_value(gate.tolerance_excess, gate.unit, signed=True)} excess tolerance"
        )

    def cell(self, gate: dict[str, Any]) -> str | None:
        """The worst bucket, with its counts: against control the ratio alone is ×∞
        whenever control had no event in that bucket."""
        e = gate["evidence"]
        details = e.get("details") or {}
        if details.get("worst_bucket_events") is None:
            return "n/a"
        canary = f"{details['worst_bucket_events']:g} in {details['worst_bucket_exposure']:g}"
        if gate["comparison"] != "control":
            exposure = details["worst_bucket_exposure"]
            worst = details["worst_bucket_events"] / exposure if exposure else None
            return f"worst bucket {format_value(worst, gate['unit'])} ({canary})"
        control = (
            f"{details['worst_bucket_control_events']:g} in "
            f"{details['worst_bucket_control_exposure']:g}"
        )
        # rule v2 keeps the worst bucket's ratio in the details (the effect is window-wide);
        # a verdict.json written before it had the worst bucket's ratio as the effect
        ratio = (
            details["worst_bucket_ratio"] if "worst_bucket_ratio" in details else e.get("effect")
        )
        return f"worst bucket {_ratio(ratio)} ({canary} vs {control})"


def _ratio(value: Any) -> str:
    number = None if value is None else float(value)
    if number is not None and number == float("inf"):
        return "×∞"
    return ratio_text(number)
