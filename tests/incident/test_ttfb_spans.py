"""A span of slow replies in time is one `ttfb_degradation` finding, bounded by the span,
sized in the quarter hours findings.json has always counted (`buckets`, `buckets_total`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from wsanalysis.incident import ttfb
from wsanalysis.incident.inputs import from_frames

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOURS, PER_MINUTE = 8, 20
SLOW_FROM, SLOW_TO = timedelta(hours=3), timedelta(hours=4)


def replies(seed: int) -> pl.DataFrame:
    """Both variants' replies (lognormal around 200 ms); the canary's ×2.5 for one hour."""
    rng = np.random.default_rng(seed)
    minutes = HOURS * 60
    frames = []
    for variant in ("canary", "control"):
        at = np.repeat(np.arange(minutes), PER_MINUTE) * 60_000 + rng.integers(
            0, 60_000, minutes * PER_MINUTE
        )
        ms = rng.lognormal(np.log(200.0), 0.3, at.size)
        if variant == "canary":
            slow = (at >= SLOW_FROM.total_seconds() * 1000) & (at < SLOW_TO.total_seconds() * 1000)
            ms = np.where(slow, ms * 2.5, ms)
        frames.append(
            pl.DataFrame(
                {
                    "ts": at + int(T0.timestamp() * 1000),
                    "type": "ws.ttfb",
                    "session_id": [f"{variant}-{s}" for s in rng.integers(0, 400, at.size)],
                    "variant": variant,
                    "ttfb_ms": ms,
                }
            )
        )
    return pl.concat(frames).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC"))).sort("ts")


def test_an_hour_of_slow_replies_is_one_span_counted_in_quarter_hours():
    data = from_frames(None, replies(7), start=T0, end=T0 + timedelta(hours=HOURS))
    findings, not_run = ttfb.detect(data)
    assert not_run == []
    assert [f.variant for f in findings] == ["canary"], [f.to_json() for f in findings]
    (span,) = findings
    assert abs(span.start - (T0 + SLOW_FROM)) <= timedelta(minutes=5)
    assert abs(span.end - (T0 + SLOW_TO)) <= timedelta(minutes=5)
    assert span.numbers["p95_ms"] > 1.25 * span.numbers["reference_p95_ms"]
    assert span.numbers["buckets"] == -(-(span.end - span.start) // ttfb.BUCKET) in (4, 5)
    assert span.numbers["buckets_total"] == HOURS * 4
