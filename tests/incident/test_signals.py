"""The rolling baseline and the episode join on counts built by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from wsanalysis.incident.findings import Finding, dumps, severity_from
from wsanalysis.incident.signals import episodes, unusual, with_baseline


def counts(values: list[float]) -> pl.DataFrame:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return pl.DataFrame({
        "bucket": [start + timedelta(minutes=i) for i in range(len(values))],
        "variant": "canary", "n": values,
    }).with_columns(pl.col("bucket").cast(pl.Datetime("ms", "UTC")))  # fmt: skip


def test_burst_becomes_one_episode_and_quiet_data_none():
    values = [10.0] * 120 + [80.0, 90.0, 10.0, 85.0] + [10.0] * 60
    marked = with_baseline(counts(values))
    found = episodes(marked, unusual(marked))
    assert len(found) == 1
    e = found[0]
    assert e.minutes == 4 and e.observed == 265 and e.peak == 90
    assert e.start == marked["bucket"][120]
    quiet = with_baseline(counts([10.0, 12.0, 8.0, 11.0] * 60))
    assert episodes(quiet, unusual(quiet)) == []


def test_baseline_is_robust_to_the_incident_itself():
    values = [10.0] * 120 + [100.0] * 30
    marked = with_baseline(counts(values))
    assert marked["baseline"][-1] == 10.0


def test_severity_and_dumps():
    assert severity_from(5, 2, 4) == "high"
    assert severity_from(3, 2, 4) == "medium"
    assert severity_from(1, 2, 4) == "low"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    text = dumps([Finding("x", at, at, "canary", "low", "s", {"r": float("nan")})], [], {})
    assert '"r": null' in text
