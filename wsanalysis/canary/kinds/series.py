"""Series: any PromQL, one series per variant, the canary's per-step values against
control's (CPU per pod, GC pauses, a business metric), as Argo Rollouts, Flagger and
Kayenta judge a query.

The gate's `promql:` is written in the service's own names, grouped by the variant label
or with `{variant}` where each variant's matchers go (`pushdown.series`); the loader asks
the server (a dataset folder: a local Prometheus over it) for its values at the gate's
`step` over the whole window, and they reach the judge as `JudgeInput.series`. Judged as
the ratio (or, `margin_type: absolute`, the difference) of the variants' means with a
batch-means interval that holds under autocorrelation (`stats.series`), under decision
rule v2; in sequential mode alpha is split over the planned looks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import polars as pl

from wsanalysis.canary import anytime, evidence
from wsanalysis.canary.details import SeriesDetails
from wsanalysis.canary.gate_spec import CompareSpec, Gate
from wsanalysis.canary.judge_input import JudgeInput
from wsanalysis.canary.kinds.base import CANARY, CONTROL, GateKind, register
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames.measures import Window
from wsanalysis.pushdown.series import SeriesQuery
from wsanalysis.stats.series import compare_series

SOURCES = ("events", "exposure", "samples")
EXAMPLE = 'sum(rate(cpu_seconds_total{container="chat",{variant}}[2m]))'


@register
class SeriesKind(GateKind):
    statistics: ClassVar[tuple[str, ...]] = ("series",)
    against: ClassVar[tuple[str, ...]] = ("control",)
    stepped: ClassVar[bool] = True
    connection_exposure: ClassVar[bool] = False  # its exposure is steps
    missing: ClassVar[str] = (
        "its PromQL gave no values in the window (a series gate is evaluated by the "
        "server holding the data: give the window the canary ran in)"
    )

    def check_compare(self, statistic: str, compare: CompareSpec) -> tuple[str, str] | None:
        if compare.against != "control":
            return "against", "is bound; a series gate compares the canary against control"
        return None

    def check_fields(self, statistic: str, data: Mapping[str, Any]) -> tuple[str, str] | None:
        if not data.get("promql"):
            return (
                "promql",
                "is required for a series gate: an expression giving one series per "
                "variant, grouped by the variant label, or with {variant} where each "
                f"variant's label matchers go (e.g. {EXAMPLE})",
            )
        given = next((name for name in SOURCES if name in data), None)
        if given is not None:
            return given, "is not read by a series gate: its promql is the figure"
        return None

    def queries(self, gate: Gate) -> tuple[SeriesQuery, ...]:
        assert gate.promql is not None and gate.step is not None
        return (SeriesQuery(gate.name, gate.promql, gate.step),)

    def measure(self, gate: Gate, data: JudgeInput, window: Window) -> pl.DataFrame | None:
        """The gate's per-step values in the window, one column per variant (None: none)."""
        if data.series is None:
            return None
        rows = data.series.filter(
            (pl.col("query") == gate.name)
            & pl.col("timestamp").is_between(window.start, window.end)
        )
        if rows.is_empty():
            return None
        return rows.pivot(on="variant", index="timestamp", values="value").sort("timestamp")

    def evidence(self, gate: Gate, measured: Any, data: JudgeInput, window: Window) -> GateEvidence:
        wide: pl.DataFrame = measured
        absent = [role for role in (CANARY, CONTROL) if role not in wide.columns]
        if absent:
            return GateEvidence.no_data(
                gate.bound_line, f"its PromQL gave no {' or '.join(absent)} series"
            )
        result = compare_series(
            wide[CANARY].to_numpy(),
            wide[CONTROL].to_numpy(),
            effect="ratio" if gate.relative else "difference",
            level=gate.confidence,
            min_steps=gate.min_events,
        )
        if math.isnan(result.statistic):
            return GateEvidence.no_data(gate.bound_line, result.reason)
        steps = result.n_canary
        fixed = evidence.comparison_evidence(
            gate, result, float(steps), "prometheus", details=SeriesDetails(steps)
        )
        plan = data.sequential
        return anytime.bonferroni_over_looks(fixed, plan) if plan else fixed

    def per_step(
        self, gate: Gate, data: JudgeInput, window: Window, step: timedelta
    ) -> dict[str, list[float]] | None:
        """The values at the gate's own step (the server computed them at it)."""
        wide = self.measure(gate, data, window)
        if wide is None or not {CANARY, CONTROL} <= set(wide.columns):
            return None
        return {role: wide[role].to_list() for role in (CANARY, CONTROL)}

    def export(self, gate: Gate) -> str | None:
        return "series"
