"""Who and what a run is about, stamped into every result document it writes.

`verdict.json` (the `judge` command, the canary report, `judge-server`'s final answers)
and `findings.json` (the `incident` command, the incident report) each get one `about`
block: the kind of run, the `service`, `release` (version or commit) and `environment`
the caller named, the window, the gate file's sha256 and the time the run finished.
A folder of reports is then indexed by reading that one block, whichever producer wrote
the document (`wsanalysis report index`).

The three names are free text a caller types: kept as given (every page escapes them),
refused only when they cannot be one line of a table (control characters, too long).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wsanalysis.errors import UsageError
from wsanalysis.times import as_utc

KEY = "about"
FIELDS = ("service", "release", "environment")
MAX_LENGTH = 200
HELP = {
    "service": "the service this run is about, e.g. checkout (shown in the release history)",
    "release": "the release under test: a version or a commit, e.g. v2.3.1 or 7d9f8c1",
    "environment": "where it runs, e.g. production, staging, eu-west",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def checked_label(name: str, value: Any) -> str | None:
    """A service / release / environment name as stored: stripped text, None when empty."""
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise UsageError(f"{name} must be text, not {type(value).__name__}", f"e.g. {name}=...")
    text = str(value).strip()
    if not text:
        return None
    if len(text) > MAX_LENGTH:
        raise UsageError(
            f"{name} is {len(text)} characters long", f"give at most {MAX_LENGTH} characters"
        )
    if _CONTROL.search(text):
        raise UsageError(
            f"{name} {text!r} holds a control character (newline, tab, ...)",
            "give it on one line, printable characters only",
        )
    return text


def subject(source: Mapping[str, Any] | Any) -> dict[str, str | None]:
    """The three names from a mapping (notebook parameters, a request) or an object
    (parsed command-line arguments, a service look), checked."""
    get = source.get if isinstance(source, Mapping) else lambda n: getattr(source, n, None)
    return {name: checked_label(name, get(name)) for name in FIELDS}


def _moment(value: Any) -> datetime | None:
    try:
        return as_utc(value) if value not in (None, "") else None
    except (UsageError, ValueError, TypeError):
        return None


def stamp(
    document: dict[str, Any],
    kind: str,
    *,
    producer: str,
    names: Mapping[str, str | None] | None = None,
    gate_file: str | Path | None = None,
    window: Mapping[str, Any] | None = None,
    finished: datetime | None = None,
) -> dict[str, Any]:
    """Set `document["about"]` and return the document.

    `kind` is `canary` or `incident`; `producer` the command or service that wrote it;
    `window` the one to record when the document has none of its own (a failed run);
    `finished` defaults to now.
    """
    from wsanalysis.sources.dataset import file_fingerprint

    names = dict(names or {})
    span = document.get("window") if isinstance(document.get("window"), dict) else window
    start = _moment((span or {}).get("start"))
    end = _moment((span or {}).get("end"))
    document[KEY] = {
        "kind": kind,
        "producer": producer,
        **{name: names.get(name) for name in FIELDS},
        "window": ({"start": start.isoformat(), "end": end.isoformat()} if start and end else None),
        "window_s": (end - start).total_seconds() if start and end else None,
        "gate_file_sha256": file_fingerprint(Path(gate_file)) if gate_file else None,
        "finished": (finished or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
    }
    return document
