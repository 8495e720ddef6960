"""Moments and spans as the Prometheus HTTP API takes them (epoch ms, durations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wsanalysis import times


def to_epoch_ms(moment: datetime | str | float | int) -> int:
    """Milliseconds since the epoch; naive datetimes and ISO strings without zone are UTC."""
    return times.epoch_ms(moment)


def _to_ms_span(value: timedelta | str | float | int) -> int:
    """A duration in ms from a timedelta, seconds, or a Prometheus duration ('15s', '1h30m')."""
    return times.duration_ms(value)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
