"""Instants and durations: the one vocabulary for time across the toolkit.

- An **instant** is an aware UTC datetime, an RFC 3339 / ISO 8601 text, or a bare
  number of **epoch seconds** (number or text). Milliseconds appear only where a
  name says `_ms` (`epoch_ms`, a beacon's `ts`, `backoff_ms`).
- A **duration** is a timedelta, a bare number of seconds, or Prometheus-style text:
  one or more `<number><unit>` parts, largest unit first, each unit once, units
  `y w d h m s ms` (`90s`, `5m`, `1h30m`, `2d`, `250ms`, `1.5h`). Gate files,
  scenarios, the CLI, notebook parameters and PromQL ranges all read this grammar.

This module depends on nothing in `wsanalysis` but its errors, so every layer can use it.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

from wsanalysis.errors import UsageError

__all__ = [
    "TimeError",
    "as_utc",
    "duration_ms",
    "duration_seconds",
    "epoch_ms",
    "parse_duration",
    "parse_moment",
]


class TimeError(UsageError, ValueError):
    """A time or a duration that cannot be read (a ValueError too, for older callers)."""


#: Seconds per unit, largest first (the order the parts of a duration must follow).
UNIT_SECONDS: dict[str, float] = {
    "y": 365 * 86400.0,
    "w": 7 * 86400.0,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|y|w|d|h|m|s))+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_RANK = {unit: rank for rank, unit in enumerate(UNIT_SECONDS)}
#: 9999-12-31T23:59:59Z: a bare number beyond it is not epoch seconds (milliseconds, say).
MAX_EPOCH_SECONDS = 253_402_300_799
_MOMENT_FIX = "use RFC 3339 (2026-11-02T06:00:00Z) or epoch seconds"
_DURATION_FIX = "write e.g. 90s, 5m, 1h30m, 2d, 250ms or a number of seconds"


def _cannot(value: object, what: str, name: str, fix: str) -> TimeError:
    where = f"{name}: " if name else ""
    return TimeError(f"{where}cannot read {value!r} as {what}", fix)


def duration_seconds(value: timedelta | str | float | int, name: str = "") -> float:
    """Seconds, finite and not negative, from any form of the duration grammar."""
    if isinstance(value, bool):
        raise _cannot(value, "a duration", name, _DURATION_FIX)
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _text_seconds(value, name)
    else:
        raise _cannot(value, "a duration", name, _DURATION_FIX)
    if not math.isfinite(seconds) or seconds < 0:
        raise _cannot(value, "a duration of zero or more", name, _DURATION_FIX)
    return seconds


def _text_seconds(value: str, name: str) -> float:
    text = value.strip().replace(" ", "")
    if _NUMBER.fullmatch(text):
        return float(text)
    if not _DURATION.fullmatch(text):
        raise _cannot(value, "a duration", name, _DURATION_FIX)
    parts = _PART.findall(text)
    ranks = [_RANK[unit] for _, unit in parts]
    if ranks != sorted(set(ranks)):
        raise _cannot(
            value,
            "a duration (units go largest first, once each)",
            name,
            "write e.g. 1h30m, not 30m1h",
        )
    return sum(float(n) * UNIT_SECONDS[u] for n, u in parts)


def parse_duration(value: timedelta | str | float | int, name: str = "") -> timedelta:
    """The duration as a timedelta (gate files, notebook parameters, the CLI)."""
    return timedelta(seconds=duration_seconds(value, name))


def duration_ms(value: timedelta | str | float | int, name: str = "") -> int:
    """The duration in whole milliseconds (PromQL steps and ranges)."""
    return round(duration_seconds(value, name) * 1000)


def as_utc(moment: datetime | date | str | float | int, name: str = "") -> datetime:
    """An instant as an aware UTC datetime; naive datetimes and zone-less texts are UTC."""
    if isinstance(moment, bool):
        raise _cannot(moment, "a time", name, _MOMENT_FIX)
    if isinstance(moment, str):
        text = moment.strip()
        if _NUMBER.fullmatch(text):
            moment = float(text)
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise _cannot(text, "a time", name, _MOMENT_FIX) from None
    if isinstance(moment, datetime):
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if isinstance(moment, date):
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if isinstance(moment, int | float):
        try:
            if not (math.isfinite(moment) and abs(moment) <= MAX_EPOCH_SECONDS):
                raise OverflowError
            return datetime.fromtimestamp(float(moment), UTC)
        except (OverflowError, OSError, ValueError):
            raise _cannot(
                moment, "a time (epoch seconds out of range)", name, _MOMENT_FIX
            ) from None
    raise _cannot(moment, "a time", name, _MOMENT_FIX)


def epoch_ms(moment: datetime | date | str | float | int, name: str = "") -> int:
    """Milliseconds since the epoch of an instant (a bare number is epoch *seconds*)."""
    if isinstance(moment, int | float) and not isinstance(moment, bool):
        if not (math.isfinite(moment) and abs(moment) <= MAX_EPOCH_SECONDS):
            raise _cannot(moment, "a time (epoch seconds out of range)", name, _MOMENT_FIX)
        return round(float(moment) * 1000)
    return round(as_utc(moment, name).timestamp() * 1000)


def parse_moment(text: str | None, name: str) -> datetime | None:
    """An RFC 3339 time or epoch seconds, as an aware UTC datetime (None stays None)."""
    if text is None:
        return None
    return as_utc(text, name)
