"""A canary's state as the gates' sufficient statistics per bucket, not samples.

What the push-down returns (`pushdown.promql`: per counter family and variant, and per
`code` / `le` / `event` where the gates tell them apart, the increase in each step) is
all the judge needs from the server. Kept as one row per (bucket, series group) with
the increase in that bucket (`k` counts buckets from the canary's start), the state
grows with buckets and gates, never with pods or samples; a look replaces the buckets it
re-read, and the judge gets them back as the counters the push-down would have handed it
(`as_counters`), so a look says exactly what a one-shot push-down judge says.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import polars as pl

from wsanalysis.sources.schema import SAMPLES_FIXED, TIMESTAMP, samples_schema

INDEX = "k"  # the bucket's number from the canary's start


def buckets_in(start: datetime, end: datetime, bucket: timedelta) -> int:
    """How many buckets the window [start, end] has (its last one may be partial)."""
    return max(1, math.ceil((end - start) / bucket))


def bucket_index(start: datetime, end: datetime, bucket: timedelta, at: datetime) -> int:
    """The bucket holding `at` (the window's end belongs to its last bucket)."""
    last = buckets_in(start, end, bucket) - 1
    return min(max(0, (at - start) // bucket), last)


def label_columns(frame: pl.DataFrame) -> list[str]:
    return sorted(c for c in frame.columns if c not in (*SAMPLES_FIXED, INDEX, "increase"))


def increments(
    counters: pl.DataFrame, start: datetime, end: datetime, bucket: timedelta
) -> pl.DataFrame:
    """Per-bucket increases from push-down counters (cumulated from zero where the read
    began): k, metric, variant, labels..., increase. Groups without any increase keep one
    row (an empty histogram bucket is still a bucket)."""
    labels = label_columns(counters)
    keys = ["metric", "variant", *labels]
    size_ms = bucket // timedelta(milliseconds=1)
    last = buckets_in(start, end, bucket) - 1
    offset = (pl.col("timestamp") - pl.lit(start).cast(TIMESTAMP)).dt.total_milliseconds()
    found = (
        counters.sort([*keys, "timestamp"], nulls_last=True)
        .with_columns(
            increase=pl.col("value").diff().over(keys).fill_null(pl.col("value")),
            k=(offset // size_ms).clip(0, last).cast(pl.Int32),
        )
        .group_by([INDEX, *keys])
        .agg(pl.col("increase").sum())
    )
    return compact(found, keys)


def compact(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Only the buckets with an increase, plus the first row of a group that has none."""
    if frame.is_empty():
        return frame
    any_increase = pl.col("increase").max().over(keys) > 0
    first = pl.col(INDEX) == pl.col(INDEX).min().over(keys)
    kept = frame.filter((pl.col("increase") > 0) | (~any_increase & first))
    return kept.sort([*keys, INDEX], nulls_last=True).select(INDEX, *keys, "increase")


def replaced(state: pl.DataFrame | None, fresh: pl.DataFrame, first: int) -> pl.DataFrame:
    """The state with every bucket from `first` on replaced by a fresh read of them."""
    if state is None or state.is_empty():
        return fresh
    kept = state.filter(pl.col(INDEX) < first)
    frame = pl.concat([kept, fresh], how="diagonal_relaxed")
    keys = ["metric", "variant", *label_columns(frame)]
    return compact(frame.select(INDEX, *keys, "increase"), keys)


def as_counters(
    state: pl.DataFrame, start: datetime, end: datetime, bucket: timedelta
) -> pl.DataFrame:
    """The samples frame the judge reads: per group a counter from zero at `start`,
    stepped at the last millisecond of each bucket (the window's end for the last)."""
    labels = label_columns(state)
    schema = samples_schema(labels)
    if state.is_empty():
        return pl.DataFrame(schema=schema)
    keys = ["metric", "variant", *labels]
    start_at = pl.lit(start).cast(TIMESTAMP)
    size_ms = bucket // timedelta(milliseconds=1)
    stamp = start_at + pl.duration(milliseconds=(pl.col(INDEX).cast(pl.Int64) + 1) * size_ms - 1)
    steps = state.with_columns(
        timestamp=pl.min_horizontal(stamp, pl.lit(end).cast(TIMESTAMP)),
        value=pl.col("increase").cum_sum().over(keys, order_by=INDEX),
    )
    zeros = state.select(keys).unique().with_columns(timestamp=start_at, value=pl.lit(0.0))
    frame = pl.concat([zeros.select(schema.keys()), steps.select(schema.keys())])
    return frame.cast(schema).sort([*keys, "timestamp"], nulls_last=True)  # type: ignore[arg-type]
