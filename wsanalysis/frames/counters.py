"""Counter arithmetic on samples frames, as PromQL's `increase()` does it.

Counters stay raw in the samples frame; a drop in value is a reset (the process
restarted), after which the new value is itself the increase since the reset.
"""

from __future__ import annotations

import polars as pl

from wsanalysis.sources.schema import SAMPLES_FIXED


def series_keys(frame: pl.DataFrame) -> list[str]:
    """The columns that identify a series: metric, variant and every label column."""
    return ["metric", "variant", *[c for c in frame.columns if c not in SAMPLES_FIXED]]


def increases(frame: pl.DataFrame) -> pl.DataFrame:
    """Per-sample increase of each counter series, resets handled (first sample: 0)."""
    keys = series_keys(frame)
    previous = pl.col("value").shift(1).over(keys, order_by="timestamp")
    step = pl.when(previous.is_null()).then(0.0)
    step = step.when(pl.col("value") >= previous).then(pl.col("value") - previous)
    return frame.with_columns(step.otherwise(pl.col("value")).alias("increase"))


def total_increase(frame: pl.DataFrame, by: list[str] | None = None) -> pl.DataFrame:
    """Increase over the whole frame's window, summed over series within `by` groups."""
    by = by if by is not None else ["metric", "variant"]
    return increases(frame).group_by(by).agg(pl.col("increase").sum()).sort(by)
