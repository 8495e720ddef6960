"""Ramp stages: a canary whose traffic share moves (Argo `setWeight`, Flagger `stepWeight`).

A stage is a span of the window at one declared share. Within a stage canary and control
see the same hours in the same proportion; across stages they do not (a canary at 10 %
then 50 % has most of its traffic late, its control most of it early), so a rate pooled
over the window compares different hours, and a base rate that drifts with the time of
day reads as a difference (Simpson's paradox). Two things follow per stage:

- the sample-ratio check: each stage's split against that stage's declared share;
- a rate against control is weighted per stage (`weighted`): Mantel-Haenszel weights, the
  canary's counts in stage s by f_s / (e_s + f_s) and control's by e_s / (e_s + f_s)
  (e, f the variants' exposure in the stage), give both variants the same mix of stages,
  and the pooled ratio of the weighted counts is the Mantel-Haenszel rate ratio. The
  weights are scaled to at most 1: the statistics then read fewer counts than there are,
  so their Poisson variance is an over-estimate (conservative), never an under-estimate.

A moment belongs to the stage whose span (start, end] holds it (the first stage holds its
start); a time bucket to the stage its start falls in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from wsanalysis.frames.counters import increases
from wsanalysis.frames.measures import Counts, sessions_per_variant
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL

CANARY, CONTROL = "canary", "control"


@dataclass(frozen=True)
class Stage:
    """A span of the canary's window at one declared share (None: none was declared)."""

    share: float | None
    start: datetime
    end: datetime

    def to_json(self) -> dict[str, Any]:
        return {"share": self.share, "start": self.start.isoformat(), "end": self.end.isoformat()}

    def label(self, number: int) -> str:
        share = "no share declared" if self.share is None else f"{self.share:.0%}"
        return f"stage {number} ({self.start:%H:%M}-{self.end:%H:%M}, {share})"


def stage_index(times: pl.Expr, stages: Sequence[Stage]) -> pl.Expr:
    """The stage each moment belongs to: how many stage ends lie before it."""
    index = pl.lit(0, dtype=pl.Int32)
    for stage in stages[:-1]:
        index = index + (times > pl.lit(stage.end)).cast(pl.Int32)
    return index


def weighted(counts: Counts | None, stages: Sequence[Stage]) -> Counts | None:
    """A rate's counts with each stage weighted (Mantel-Haenszel; see the module).

    One stage, or stages whose split is the same, leave the counts as they are. A stage
    where a variant has no exposure weighs nothing (it compares nothing).
    """
    if counts is None or len(stages) < 2:
        return counts
    frame = counts.frame.with_columns(
        stage_index(pl.col("bucket") + timedelta(milliseconds=1), stages).alias("stage")
    )
    per = frame.group_by("stage").agg(
        e=pl.col("exposure").filter(pl.col("variant") == CANARY).sum(),
        f=pl.col("exposure").filter(pl.col("variant") == CONTROL).sum(),
    )
    both = (pl.col("e") > 0) & (pl.col("f") > 0)
    per = per.with_columns(
        a=pl.when(both).then(pl.col("f") / (pl.col("e") + pl.col("f"))).otherwise(0.0),
        b=pl.when(both).then(pl.col("e") / (pl.col("e") + pl.col("f"))).otherwise(0.0),
    )
    if per["a"].max() <= 0 or per["b"].max() <= 0:
        return counts
    per = per.with_columns(pl.col("a") / pl.col("a").max(), pl.col("b") / pl.col("b").max())
    weight = pl.when(pl.col("variant") == CANARY).then(pl.col("a")).otherwise(pl.col("b"))
    scaled = (
        frame.join(per.select("stage", "a", "b"), on="stage", how="left")
        .with_columns(weight.fill_null(0.0).alias("w"))
        .with_columns(pl.col("events") * pl.col("w"), pl.col("exposure") * pl.col("w"))
        .select(counts.frame.columns)
    )
    return replace(counts, frame=scaled)


def units_per_stage(
    samples: pl.DataFrame, beacons: pl.DataFrame | None, stages: Sequence[Stage], unit: str
) -> tuple[str, list[dict[str, int]]] | None:
    """Each stage's units per variant: RUM sessions (when the profile counts sessions and
    the beacons are in memory), else connections opened from the server's counter."""
    if unit == "sessions" and beacons is not None and not beacons.is_empty():
        marked = beacons.with_columns(stage_index(pl.col("ts"), stages).alias("stage"))
        return "sessions", [
            sessions_per_variant(marked.filter(pl.col("stage") == k), (CANARY, CONTROL))
            for k in range(len(stages))
        ]
    opened = samples.filter(pl.col("metric") == CONNECTIONS_TOTAL)
    if opened.is_empty():
        return None
    per = (
        increases(opened)
        .with_columns(stage_index(pl.col("timestamp"), stages).alias("stage"))
        .group_by("stage", "variant")
        .agg(pl.col("increase").sum())
    )
    found: list[dict[str, int]] = [{} for _ in stages]
    for row in per.iter_rows(named=True):
        found[row["stage"]][row["variant"]] = int(row["increase"])
    return "connections", found


def undeclared_sentence(stages: Sequence[Stage]) -> str | None:
    """What the verdict says when a look declared no share (never silence)."""
    if not stages:
        return None
    if all(s.share is None for s in stages):
        return (
            "No canary share was declared, so the traffic split was not checked and a share "
            "that moved could not be weighted for (declare canary_share, or canary_weight in "
            "percent, on every look)."
        )
    missing = [s.label(k + 1) for k, s in enumerate(stages) if s.share is None]
    if missing:
        return f"The traffic split was not checked in {', '.join(missing)}."
    return None


def unchecked_sentence(stages: Sequence[Stage], records: Sequence[dict]) -> str | None:
    """What the verdict says when a stage declared a share but holds no unit of both
    variants, so its split could not be tested (never silence)."""
    unchecked = [
        s.label(k + 1)
        for k, (s, record) in enumerate(zip(stages, records, strict=True))
        if s.share is not None and "srm_p" not in record
    ]
    if not unchecked:
        return None
    return (
        f"The traffic split could not be checked in {', '.join(unchecked)}: no unit was "
        "counted there for both variants."
    )


def across_sentence(stages: Sequence[Stage], how: dict[str, list[str]]) -> str | None:
    """How the gates read a share that moved (`how`: weighted, canary only, pooled)."""
    if len(stages) < 2:
        return None
    shares = ", ".join("?" if s.share is None else f"{s.share:.0%}" for s in stages)
    parts = []
    if how.get("weighted"):
        parts.append(f"{', '.join(how['weighted'])} weighted per stage (Mantel-Haenszel)")
    if how.get("canary only"):
        parts.append(f"{', '.join(how['canary only'])} read the canary alone")
    if how.get("pooled"):
        parts.append(f"{', '.join(how['pooled'])} pooled over the stages")
    return (
        f"The canary's share moved over {len(stages)} stages ({shares}): " + "; ".join(parts) + "."
    )
