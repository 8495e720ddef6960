"""Moments and spans as the Prometheus HTTP API takes them (epoch ms, durations)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from wsanalysis.errors import UsageError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_MS |= {"w": 7 * 86_400_000, "y": 365 * 86_400_000}


def to_epoch_ms(moment: datetime | str | float | int) -> int:
    """Milliseconds since the epoch; naive datetimes and ISO strings without zone are UTC."""
    if isinstance(moment, str):
        text = moment.strip()
        try:
            moment = float(text)  # epoch seconds as text, e.g. from a command line
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise UsageError(
                    f"cannot read {text!r} as a time",
                    "pass an ISO 8601 / RFC 3339 time or epoch seconds",
                ) from None
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return round(moment.timestamp() * 1000)
    if isinstance(moment, int | float) and math.isfinite(moment):
        return round(float(moment) * 1000)
    raise UsageError(
        f"cannot read {moment!r} as a time",
        "pass a datetime, an ISO 8601 string or epoch seconds",
    )


def _to_ms_span(value: timedelta | str | float | int) -> int:
    """A duration in ms from a timedelta, seconds, or a Prometheus duration ('15s', '1h30m')."""
    if isinstance(value, timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, int | float):
        return round(float(value) * 1000)
    text = value.strip()
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"cannot read {value!r} as a duration", "write e.g. 15s, 1m, 1h30m")
    return round(sum(float(n) * _DURATION_MS[u] for n, u in parts))


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
