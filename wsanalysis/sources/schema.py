"""The data contracts every source returns (see docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

TIMESTAMP = pl.Datetime("ms", "UTC")

#: Fixed columns of the samples frame; label columns (Utf8) follow them.
SAMPLES_FIXED: dict[str, pl.DataType] = {
    "timestamp": TIMESTAMP,
    "metric": pl.Utf8(),
    "variant": pl.Utf8(),
    "value": pl.Float64(),
}

#: Required fields of a RUM beacon (contract version 1).
RUM_REQUIRED = ("v", "ts", "type", "session_id", "variant")

#: Typed columns of the RUM frame; unknown fields are kept in `extra` (JSON text).
RUM_SCHEMA: dict[str, pl.DataType] = {
    "v": pl.Int64(),
    "ts": TIMESTAMP,
    "type": pl.Utf8(),
    "session_id": pl.Utf8(),
    "variant": pl.Utf8(),
    "socket_id": pl.Utf8(),
    "user": pl.Utf8(),
    "thread_id": pl.Utf8(),
    "trace": pl.Utf8(),
    "code": pl.Int64(),
    "reason": pl.Utf8(),
    "attempt": pl.Int64(),
    "backoff_ms": pl.Float64(),
    "duration_ms": pl.Float64(),
    "ttfb_ms": pl.Float64(),
    "online": pl.Boolean(),
    "extra": pl.Utf8(),
}

# The contract's beacon types: code above the sources names them by these (a telemetry
# mapping's own names are translated back to them when the beacons are read).
OPEN = "ws.open"
CLOSE = "ws.close"
RECONNECT_SCHEDULED = "ws.reconnect_scheduled"
GIVE_UP = "ws.give_up"
MESSAGE = "ws.message"
DEDUP_DROP = "ws.dedup_drop"
STALE_DROP = "ws.stale_drop"
TTFB = "ws.ttfb"
ONLINE = "ws.online"
OFFLINE = "ws.offline"
SUMMARY = "ws.summary"

RUM_TYPES = (
    OPEN,
    CLOSE,
    RECONNECT_SCHEDULED,
    GIVE_UP,
    MESSAGE,
    DEDUP_DROP,
    STALE_DROP,
    TTFB,
    ONLINE,
    OFFLINE,
    SUMMARY,
)


def samples_schema(labels: Iterable[str] = ()) -> dict[str, pl.DataType]:
    """Schema of a samples frame carrying the given label columns (sorted)."""
    schema = dict(SAMPLES_FIXED)
    for name in sorted(set(labels) - set(SAMPLES_FIXED)):
        schema[name] = pl.Utf8()
    return schema


def empty_samples(labels: Iterable[str] = ()) -> pl.DataFrame:
    """An empty samples frame with the right columns, so callers never special-case."""
    return pl.DataFrame(schema=samples_schema(labels))


def empty_rum() -> pl.DataFrame:
    return pl.DataFrame(schema=RUM_SCHEMA)


def normalize_samples(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast to the contract, order columns (fixed, then labels sorted) and rows.

    Rows are sorted by metric, label values, variant and time so that two sources
    over the same data compare equal with `frame.equals`.
    """
    labels = sorted(c for c in frame.columns if c not in SAMPLES_FIXED)
    schema = samples_schema(labels)
    frame = frame.select([pl.col(c).cast(t) for c, t in schema.items()])
    return frame.sort(["metric", "variant", *labels, "timestamp"], nulls_last=True)
