"""Instants: how a time given as text (RFC 3339 or epoch seconds) becomes a UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime

from wsanalysis.errors import UsageError
from wsanalysis.sources.prometheus import to_epoch_ms


def parse_moment(text: str | None, name: str) -> datetime | None:
    """An RFC 3339 time or epoch seconds, as an aware UTC datetime (None stays None)."""
    if text is None:
        return None
    try:
        return datetime.fromtimestamp(to_epoch_ms(text) / 1000, UTC)
    except (ValueError, UsageError) as error:
        raise UsageError(
            f"{name} {text!r} is not a time", "use RFC 3339 or epoch seconds"
        ) from error
