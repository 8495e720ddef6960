"""The service's state: per-bucket increases, replaced from a bucket on, read back as the
counters the judge reads; the judge's inputs are the same as from the counters read whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from wsanalysis.frames import measures
from wsanalysis.frames.selection import MetricSource, Series
from wsanalysis.service import bucket_stats
from wsanalysis.sources.schema import TIMESTAMP

START = datetime(2026, 11, 2, 6, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def counters(values: dict[tuple[str, str | None], list[float]], every: timedelta) -> pl.DataFrame:
    """Cumulated counters from zero at START, one sample per step (as push-down hands)."""
    rows = []
    for (variant, code), steps in values.items():
        total = 0.0
        rows.append((START, variant, code, 0.0))
        for i, step in enumerate(steps, start=1):
            total += step
            rows.append((START + i * every - timedelta(milliseconds=1), variant, code, total))
    frame = pl.DataFrame(rows, schema=["timestamp", "variant", "code", "value"], orient="row")
    return frame.with_columns(
        pl.col("timestamp").cast(TIMESTAMP), metric=pl.lit("ws_closes_total")
    ).select("timestamp", "metric", "variant", "value", "code")


def test_increments_replaced_from_a_bucket_read_back_as_the_same_counts():
    end = START + 10 * MINUTE
    whole = counters({("canary", "4401"): [1, 0, 2, 0, 0, 3, 1, 0, 0, 4],
                      ("control", "4401"): [5] * 10, ("control", "1000"): [0] * 10}, MINUTE)  # fmt: skip
    early = counters({("canary", "4401"): [1, 0, 2, 0, 0, 9], ("control", "4401"): [5] * 6,
                      ("control", "1000"): [0] * 6}, MINUTE)  # fmt: skip
    # a later read from bucket 4 on: its counters start from zero there (as push-down's)
    keys = ["variant", "code"]
    base = (
        whole.filter(pl.col("timestamp") < START + 4 * MINUTE)
        .group_by(keys)
        .agg(pl.col("value").max().alias("base"))
    )
    late = (
        whole.filter(pl.col("timestamp") >= START + 4 * MINUTE)
        .join(base, on=keys)
        .with_columns(pl.col("value") - pl.col("base"))
        .drop("base")
    )
    zeros = base.with_columns(
        timestamp=pl.lit(START + 4 * MINUTE).cast(TIMESTAMP),
        metric=pl.lit("ws_closes_total"),
        value=pl.lit(0.0),
    )
    late = pl.concat([zeros.select(late.columns), late])
    state = bucket_stats.increments(early, START, START + 6 * MINUTE, MINUTE)
    fresh = bucket_stats.increments(late, START, end, MINUTE)
    merged = bucket_stats.replaced(state, fresh, first=4)  # bucket 5's 9 was short-read
    rebuilt = bucket_stats.as_counters(merged, START, end, MINUTE)
    series = MetricSource((Series.parse('ws_closes_total{code="4401"}'),))
    window = measures.Window(START, end)
    expected = measures.counts(series, series, whole, None, window)
    found = measures.counts(series, series, rebuilt, None, window)
    assert found is not None and expected is not None
    assert found.frame.equals(expected.frame)
    # a group that never increased keeps one row (an empty histogram bucket is a bucket)
    quiet = merged.filter(pl.col("code") == "1000")
    assert quiet.height == 1 and quiet["increase"].item() == 0
    assert merged.height < whole.height  # only buckets with an increase are kept
