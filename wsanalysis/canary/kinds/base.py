"""A gate kind: everything the rest of the toolkit asks of one statistic, in one class.

The gate file's parser asks a kind what a gate of it must give (`sources`, `quantile`,
`bucketed`, `excess`, `stepped`, `check_compare`, `check_fields`); the judge asks it to
measure and to weigh the evidence (`measure`, `evidence`); the reads ask which RUM fields
and server queries it needs (`rum_columns`, `queries`); the verdict asks which source it
prefers when it has two (`preferred`); the sentence, the report's table and the Kayenta comparison ask how it
reads (`head`, `fail_tail`, `pass_tail`, `cell`, `per_step`); the observability export
asks its PromQL form (`export`). A new statistic is one subclass in one module of this
package, registered with `@register`: nothing else dispatches on the statistic's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import polars as pl

from wsanalysis.canary.formatting import format_value, ratio_text
from wsanalysis.canary.gate_spec import CompareSpec, Gate
from wsanalysis.canary.judge_input import JudgeInput
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.frames import measures
from wsanalysis.frames.measures import RATE_BUCKET, Window
from wsanalysis.pushdown.series import SeriesQuery

CANARY, CONTROL = "canary", "control"


class GateKind:
    """One statistic of the gate file (`statistics`), against control or a bound."""

    #: the gate file's `statistic` words this kind serves
    statistics: ClassVar[tuple[str, ...]] = ()
    #: the comparisons it serves (a statistic may have a kind per comparison)
    against: ClassVar[tuple[str, ...]] = ("control", "bound")
    #: the data blocks a gate of this kind must give (events, exposure, samples)
    sources: ClassVar[tuple[str, ...]] = ()
    quantile: ClassVar[bool] = False  # needs `quantile` in (0, 1)
    bucketed: ClassVar[bool] = False  # needs `bucket` (tested per time bucket)
    excess: ClassVar[bool] = False  # may take `tolerance_excess`
    stepped: ClassVar[bool] = False  # takes `step` (a server's query step, default 1m)
    #: its exposure is connections, so the file's default `min_exposure` applies
    connection_exposure: ClassVar[bool] = True
    #: a pass or a fail is about the window as a whole (" window-wide") or as is ("")
    window_word: ClassVar[str] = ""

    # -- the gate file ------------------------------------------------------------------
    def check_compare(self, statistic: str, compare: CompareSpec) -> tuple[str, str] | None:
        """(field of `compare`, problem) when the comparison does not suit this kind."""
        return None

    def check_fields(self, statistic: str, data: Mapping[str, Any]) -> tuple[str, str] | None:
        """(field, problem) when the gate's own fields do not suit this kind."""
        return None

    # -- reading and weighing -----------------------------------------------------------
    def rum_columns(self, gate: Gate) -> set[str]:
        """The RUM fields the gate reads (a Parquet scan then reads no others)."""
        names: set[str] = set()
        for source in (gate.events, gate.exposure, gate.samples):
            if source is not None and source.rum is not None:
                names.update(source.rum.where)
                if source.rum.column:
                    names.add(source.rum.column)
        return names

    def queries(self, gate: Gate) -> tuple[SeriesQuery, ...]:
        """Expressions a server evaluates per step for the gate (its figure)."""
        return ()

    def preferred(self, gate: Gate) -> str | None:
        """The source the gate reads when both have data (`prometheus` or `rum`; None:
        it reads one source only), so the verdict can say when it read the other."""
        return None

    def measure(self, gate: Gate, data: JudgeInput, window: Window) -> Any:
        """What the statistic is computed from (None: the gate has no data)."""
        raise NotImplementedError

    #: why a gate has no data when `measure` found none
    missing: ClassVar[str] = "no data"

    def evidence(self, gate: Gate, measured: Any, data: JudgeInput, window: Window) -> GateEvidence:
        """The statistic's evidence, anytime-valid when `data.sequential` is set."""
        raise NotImplementedError

    def evaluate(self, gate: Gate, data: JudgeInput, window: Window) -> GateEvidence:
        measured = self.measure(gate, data, window)
        if measured is None:
            return GateEvidence.no_data(gate.bound_line, self.missing)
        return self.evidence(gate, measured, data, window)

    def counts(self, gate: Gate, data: JudgeInput, window: Window) -> measures.Counts | None:
        """Events and exposure per time bucket (the count statistics' input)."""
        assert gate.events is not None and gate.exposure is not None
        return data.measures.counts(
            gate.events, gate.exposure, data.samples, data.beacons, window,
            gate.bucket or RATE_BUCKET, gate.prefer,
        )  # fmt: skip

    # -- how it reads -------------------------------------------------------------------
    def scale(self, gate: Gate) -> str:
        """What the effect and its lines are: `ratio`, `difference` or the `figure`."""
        if gate.compare.against == "bound":
            return "figure"
        return "ratio" if gate.relative else "difference"

    def head(self, gate: Gate, e: GateEvidence) -> str:
        """The sentence's first half: what was measured."""
        if gate.compare.against == "bound":
            return head_on_the_canary(gate, e)
        return head_against_control(gate, e)

    def fail_tail(self, gate: Gate, limit: str, p_harm: float, correction: str) -> str | None:
        """A fail said this kind's own way (None: the general wording)."""
        return None

    def pass_tail(self, gate: Gate, e: GateEvidence, near: float | None, level: str) -> str | None:
        """A pass said this kind's own way (None: the general wording)."""
        return None

    def cell(self, gate: dict[str, Any]) -> str | None:
        """The report table's figure for a gate of verdict.json (None: the effect and its
        interval, the general way)."""
        return None

    def per_step(
        self, gate: Gate, data: JudgeInput, window: Window, step: timedelta
    ) -> dict[str, list[float]] | None:
        """Canary and control values per time step, as Kayenta reads a metric."""
        return None

    def export(self, gate: Gate) -> str | None:
        """The PromQL form of the gate's figure (`ratio`, `quantile`), None if it has none."""
        return None


def head_against_control(gate: Gate, e: GateEvidence) -> str:
    level = f"{gate.confidence:.0%} CI"
    effect = (
        f"the ratio, {ratio_text(e.effect)} ({level} {ratio_text(e.ci_low)} to "
        f"{ratio_text(e.ci_high)})"
        if gate.relative
        else (
            f"the difference, {format_value(e.effect, gate.unit, True)} ({level} "
            f"{format_value(e.ci_low, gate.unit, True)} to "
            f"{format_value(e.ci_high, gate.unit, True)})"
        )
    )
    return (
        f"{gate.title} is {format_value(e.canary, gate.unit)} on canary vs "
        f"{format_value(e.control, gate.unit)} on control; {effect}"
    )


def head_on_the_canary(gate: Gate, e: GateEvidence) -> str:
    level = f"{gate.confidence:.0%} CI"
    return (
        f"{gate.title} is {format_value(e.canary, gate.unit)} on canary "
        f"({level} {format_value(e.ci_low, gate.unit)} to {format_value(e.ci_high, gate.unit)})"
    )


def per_bucket(
    frame: pl.DataFrame, value: pl.Expr, window: Window, time: str, step: timedelta
) -> dict[str, list[float]]:
    """A value per time step and variant (Kayenta's series)."""
    bucketed = frame.with_columns(measures.bucket_of(time, window, step).alias("bucket"))
    per = bucketed.group_by("variant", "bucket").agg(value.alias("value")).sort("bucket")
    return {v: per.filter(pl.col("variant") == v)["value"].to_list() for v in (CANARY, CONTROL)}


KINDS: list[GateKind] = []


def register(kind: type[GateKind]) -> type[GateKind]:
    """Make a kind known to the gate file, the judge and every reader of gates."""
    KINDS.append(kind())
    return kind
