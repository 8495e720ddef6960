"""The one window check: two instants given as text, in order, with one message each way.

The judge, the incident analysis and both reports read a window from `start` and `end`;
they all check it here so a wrong window reads the same everywhere.
"""

from __future__ import annotations

from datetime import datetime

from wsanalysis.errors import UsageError
from wsanalysis.times import parse_moment


def checked_window(
    start: str | datetime | None,
    end: str | datetime | None,
    *,
    required: bool = False,
    names: tuple[str, str] = ("start", "end"),
    needs: str = "this source",
) -> tuple[datetime | None, datetime | None]:
    """(start, end) as UTC datetimes; refused when unreadable, missing (if `required`),
    or when the end is not after the start."""
    start_name, end_name = names
    start_at = start if isinstance(start, datetime) else parse_moment(start, start_name)
    end_at = end if isinstance(end, datetime) else parse_moment(end, end_name)
    if required and (start_at is None or end_at is None):
        missing = start_name if start_at is None else end_name
        raise UsageError(f"{needs} needs {missing}", f"give {start_name} and {end_name}")
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise UsageError(
            f"{end_name} ({end_at.isoformat()}) is not after {start_name} ({start_at.isoformat()})",
            "give a window that has a length: the end after the start",
        )
    return start_at, end_at
