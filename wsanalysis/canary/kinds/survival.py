"""Connection lifetimes: a quantile of how long connections last, by Kaplan–Meier with
the connections still open censored, against control or an absolute bound."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import polars as pl

from wsanalysis.canary import anytime, evidence
from wsanalysis.canary.gate_spec import Gate
from wsanalysis.canary.judge_input import JudgeInput
from wsanalysis.canary.kinds.base import GateKind, per_bucket, register
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames.measures import Window


@register
class SurvivalKind(GateKind):
    statistics: ClassVar[tuple[str, ...]] = ("survival_quantile",)
    sources: ClassVar[tuple[str, ...]] = ("samples",)
    quantile: ClassVar[bool] = True

    def rum_columns(self, gate: Gate) -> set[str]:
        return super().rum_columns(gate) | {"socket_id"}  # still-open sockets, by their id

    def measure(self, gate: Gate, data: JudgeInput, window: Window) -> Any:
        return gate  # the durations are read with the evidence (none: no data, said there)

    def evidence(self, gate: Gate, measured: Any, data: JudgeInput, window: Window) -> GateEvidence:
        source = gate.samples
        assert source is not None
        durations = (
            data.measures.connection_durations(source.rum, data.beacons, window)
            if source.rum
            else None
        )
        fixed = evidence.survival_evidence(gate, durations)
        return anytime.fixed_horizon(fixed) if data.sequential else fixed

    def per_step(
        self, gate: Gate, data: JudgeInput, window: Window, step: timedelta
    ) -> dict[str, list[float]] | None:
        """The mean lifetime of the connections that closed in each step (Kayenta has no
        notion of censoring)."""
        source = gate.samples
        if source is None or source.rum is None or data.beacons is None:
            return None
        closes = data.beacons.filter(pl.col("type") == source.rum.type)
        value = (pl.col(source.rum.column).cast(pl.Float64) * source.rum.scale).mean()
        return per_bucket(closes, value, window, "ts", step) if closes.height else None

    def export(self, gate: Gate) -> str | None:
        has_histogram = gate.samples is not None and gate.samples.histogram
        return "quantile" if has_histogram and gate.quantile is not None else None
