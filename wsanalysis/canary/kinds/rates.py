"""Rates: events per unit of exposure (errors per connection opened, ...), the canary's
against control's (`RateKind`), or the canary's alone against an absolute bound
(`BoundKind`); `share` is a rate whose events are part of the exposure."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import polars as pl

from wsanalysis.canary import anytime, evidence
from wsanalysis.canary.gate_spec import Gate
from wsanalysis.canary.judge_input import JudgeInput
from wsanalysis.canary.kinds.base import CANARY, CONTROL, GateKind, register
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames.measures import Window


class _Rates(GateKind):
    statistics: ClassVar[tuple[str, ...]] = ("rate", "share")
    sources: ClassVar[tuple[str, ...]] = ("events", "exposure")
    missing: ClassVar[str] = "events or exposure missing for a variant"

    def measure(self, gate: Gate, data: JudgeInput, window: Window) -> Any:
        return self.counts(gate, data, window)

    def per_step(
        self, gate: Gate, data: JudgeInput, window: Window, step: timedelta
    ) -> dict[str, list[float]] | None:
        assert gate.events is not None and gate.exposure is not None
        counts = data.measures.counts(
            gate.events, gate.exposure, data.samples, data.beacons, window,
            gate.bucket or step, gate.prefer,
        )  # fmt: skip
        if counts is None:
            return None
        ratio = pl.when(pl.col("exposure") > 0).then(pl.col("events") / pl.col("exposure"))
        frame = counts.frame.with_columns(ratio.otherwise(None).alias("value"))
        return {
            v: counts.variant(v).join(frame, on=["bucket", "variant"])["value"].to_list()
            for v in (CANARY, CONTROL)
        }

    def preferred(self, gate: Gate) -> str | None:
        both = all(
            s is not None and s.prometheus and s.rum is not None
            for s in (gate.events, gate.exposure)
        )
        return (gate.prefer or "prometheus") if both else None

    def export(self, gate: Gate) -> str | None:
        has_series = gate.events and gate.events.prometheus and gate.exposure
        return "ratio" if has_series and gate.exposure.prometheus else None


@register
class RateKind(_Rates):
    """The canary's rate against control's: a ratio (relative margin) or a difference."""

    against: ClassVar[tuple[str, ...]] = ("control",)

    def evidence(self, gate: Gate, measured: Any, data: JudgeInput, window: Window) -> GateEvidence:
        fixed, plan = evidence.rate_evidence(gate, measured), data.sequential
        if plan is None or gate.relative:  # a ratio has its mixture SPRT
            return anytime.rate_evidence(gate, measured, plan, fixed) if plan else fixed
        return anytime.bonferroni_over_looks(fixed, plan)


@register
class BoundKind(_Rates):
    """The canary's rate alone against an absolute bound (a mixture SPRT when sequential)."""

    against: ClassVar[tuple[str, ...]] = ("bound",)

    def evidence(self, gate: Gate, measured: Any, data: JudgeInput, window: Window) -> GateEvidence:
        fixed, plan = evidence.rate_evidence(gate, measured), data.sequential
        return anytime.rate_evidence(gate, measured, plan, fixed) if plan else fixed
