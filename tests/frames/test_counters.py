"""Counter increase with resets, checked against a plain-Python reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from wsanalysis.frames.counters import increases, total_increase


def reference_increase(values: list[float]) -> float:
    total = 0.0
    for before, after in zip(values, values[1:], strict=False):
        total += after - before if after >= before else after
    return total


def frame_of(series: dict[tuple[str, str], list[float]]) -> pl.DataFrame:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "timestamp": start + timedelta(seconds=15 * i),
            "metric": "ws_closes_total",
            "variant": variant,
            "value": value,
            "code": code,
        }
        for (variant, code), values in series.items()
        for i, value in enumerate(values)
    ]
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("ms"))


def test_increase_handles_resets_per_series():
    series = {
        ("canary", "1006"): [3, 5, 9, 2, 4, 4, 10],  # reset after 9
        ("canary", "1011"): [0, 0, 1, 1],
        ("control", "1006"): [100, 50, 75],  # reset on the second sample
    }
    frame = frame_of(series).sample(fraction=1.0, shuffle=True, seed=1)  # order must not matter
    got = total_increase(frame, by=["variant", "code"])
    for (variant, code), values in series.items():
        row = got.filter((pl.col("variant") == variant) & (pl.col("code") == code))
        assert row["increase"].item() == reference_increase(values)


def test_increase_random_series_matches_reference():
    rng = np.random.default_rng(3)
    values = np.cumsum(rng.poisson(3, 400)).astype(float)
    values[150:] -= values[149]  # a restart
    values[300:] -= values[299] - 2
    frame = frame_of({("canary", "1000"): values.tolist()})
    assert increases(frame)["increase"].sum() == reference_increase(values.tolist())
