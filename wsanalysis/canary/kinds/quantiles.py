"""Quantiles (p95 time-to-first-byte): the canary's against control's, as a difference;
from RUM samples clustered by session, else from a server histogram."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import polars as pl

from wsanalysis.canary import anytime, evidence
from wsanalysis.canary.gate_spec import CompareSpec, Gate
from wsanalysis.canary.judge_input import JudgeInput
from wsanalysis.canary.kinds.base import GateKind, per_bucket, register
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames.measures import HistogramCounts, Samples, Window


@register
class QuantileKind(GateKind):
    statistics: ClassVar[tuple[str, ...]] = ("quantile",)
    sources: ClassVar[tuple[str, ...]] = ("samples",)
    quantile: ClassVar[bool] = True

    def check_compare(self, statistic: str, compare: CompareSpec) -> tuple[str, str] | None:
        if compare.against != "control" or compare.margin_type != "absolute":
            return "against", "must be control with an absolute margin (e.g. +0.1 s) for a quantile"
        return None

    def measure(
        self, gate: Gate, data: JudgeInput, window: Window
    ) -> tuple[Samples | None, HistogramCounts | None]:
        source = gate.samples
        assert source is not None
        samples = data.measures.rum_samples(source.rum, data.beacons) if source.rum else None
        histogram = (
            data.measures.histogram_counts(source.histogram, data.samples)
            if source.histogram
            else None
        )
        if gate.prefer == "prometheus" and histogram is not None:
            samples = None
        return samples, histogram  # the evidence says when neither has data

    def preferred(self, gate: Gate) -> str | None:
        source = gate.samples
        if source is None or source.rum is None or not source.histogram:
            return None
        return "prometheus" if gate.prefer == "prometheus" else "rum"

    def evidence(self, gate: Gate, measured: Any, data: JudgeInput, window: Window) -> GateEvidence:
        samples, histogram = measured
        fixed = evidence.quantile_evidence(gate, samples, histogram)
        plan = data.sequential
        return anytime.quantile_evidence(gate, samples, window, plan, fixed) if plan else fixed

    def per_step(
        self, gate: Gate, data: JudgeInput, window: Window, step: timedelta
    ) -> dict[str, list[float]] | None:
        source = gate.samples
        if source is None or source.rum is None:
            return None
        samples = data.measures.rum_samples(source.rum, data.beacons)
        if samples is None:
            return None
        return per_bucket(
            samples.frame, pl.col("value").quantile(gate.quantile), window, "ts", step
        )

    def export(self, gate: Gate) -> str | None:
        has_histogram = gate.samples is not None and gate.samples.histogram
        return "quantile" if has_histogram and gate.quantile is not None else None
