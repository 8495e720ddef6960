"""One beacon's rules, in Python: the reference the bulk paths must agree with.

A beacon is a JSON object with the contract's required fields; known fields must
have their column's type (a number or flag in a string field is kept as its JSON
text), unknown ones go to `extra` as JSON. A load's evidence (bad lines, reasons,
examples, quarantine) is collected here too.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.sources.schema import RUM_REQUIRED, RUM_SCHEMA, TIMESTAMP

#: How many bad lines a load keeps as examples (all are counted and quarantined).
EXAMPLES = 5


KNOWN = tuple(c for c in RUM_SCHEMA if c != "extra")
_KIND: dict[str, str] = {}
for _name, _dtype in RUM_SCHEMA.items():
    if _name == "ts":
        _KIND[_name] = "timestamp"
    elif _dtype == pl.Utf8:
        _KIND[_name] = "string"
    elif _dtype == pl.Int64:
        _KIND[_name] = "integer"
    elif _dtype == pl.Float64:
        _KIND[_name] = "number"
    elif _dtype == pl.Boolean:
        _KIND[_name] = "boolean"
_KIND.pop("extra", None)


@dataclass(frozen=True)
class BadLine:
    """One rejected line: where it was, why, and (the start of) what it held."""

    line: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}: {self.text[:120]!r}"


@dataclass
class RumLoad:
    """The result of a load: the frame plus the evidence about what was left out."""

    frame: pl.DataFrame
    source: str
    format: str
    lines: int = 0
    bad_lines: int = 0
    examples: list[BadLine] = field(default_factory=list)
    bad_reasons: Counter[str] = field(default_factory=Counter)
    unmapped: dict[str, int] = field(default_factory=dict)
    quarantine: Path | None = None

    def summary(self) -> str:
        """A few lines for a terminal or a notebook: counts, reasons, examples."""
        text = [
            f"{self.source} ({self.format}): {self.frame.height:,} beacons, "
            f"{self.bad_lines:,} bad lines"
        ]
        text += [f"  {n:,} × {reason}" for reason, n in self.bad_reasons.most_common(5)]
        text += [f"  e.g. {example}" for example in self.examples]
        if self.unmapped:
            fields = ", ".join(f"{k} ({n:,})" for k, n in sorted(self.unmapped.items()))
            text.append(f"  Datadog attributes not mapped: {fields}")
        if self.quarantine is not None and self.bad_lines:
            text.append(f"  bad lines written to {self.quarantine}")
        return "\n".join(text)


class _Rejects:
    """Collects bad lines: counts, reasons, a few examples, the quarantine file."""

    def __init__(self, quarantine: Path | None) -> None:
        self.count = 0
        self.reasons: Counter[str] = Counter()
        self.examples: list[BadLine] = []
        self.path = quarantine
        self._handle: io.BufferedWriter | None = None
        if quarantine is not None:
            quarantine.parent.mkdir(parents=True, exist_ok=True)
            self._handle = quarantine.open("wb")

    def add(self, line: int, reason: str, raw: bytes) -> None:
        self.count += 1
        self.reasons[reason.split(":")[0]] += 1
        if len(self.examples) < EXAMPLES:
            text = raw.decode("utf-8", errors="replace")
            self.examples.append(BadLine(line, reason, text))
        if self._handle is not None:
            note = json.dumps({"line": line, "reason": reason}, ensure_ascii=False)
            self._handle.write(raw.rstrip(b"\r\n") + b"\n" + b"# " + note.encode() + b"\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


#: The beacon time's range (epoch ms, years 1-9999), and the Int64 column's.
MAX_TS_MS = 253_402_300_799_999
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _coerce(kind: str, value: Any) -> tuple[bool, Any]:
    """The value as its column holds it, or (False, None) when it has the wrong type
    (or is a number the column cannot hold: an integer beyond Int64, a time beyond
    year 9999, a float beyond float64, a non-finite time)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        if isinstance(value, str):
            return True, value
        # a numeric id or a flag written unquoted is kept as its JSON text
        return (True, json.dumps(value)) if number or isinstance(value, bool) else (False, None)
    if kind == "integer":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return (True, value) if _INT64[0] <= value <= _INT64[1] else (False, None)
        return False, None
    if kind == "number":
        if not number:
            return False, None
        try:
            return True, float(value)
        except OverflowError:
            return False, None
    if kind == "timestamp":
        if not number or not math.isfinite(value) or abs(value) > MAX_TS_MS:
            return False, None
        return True, int(value)
    if kind == "boolean":
        return (True, value) if isinstance(value, bool) else (False, None)
    raise AssertionError(kind)


def encode_extra(extra: Mapping[str, Any]) -> str | None:
    """The `extra` column's text for a beacon's unknown fields (None when there are none)."""
    if not extra:
        return None
    return json.dumps(extra, ensure_ascii=False, separators=(",", ":"))


def _beacon_row(obj: Any) -> tuple[dict[str, Any] | None, str]:
    """A beacon (parsed JSON) as a frame row, or (None, why it is rejected)."""
    if not isinstance(obj, dict):
        return None, f"not a JSON object: {_json_type(obj)}"
    missing = [f for f in RUM_REQUIRED if obj.get(f) is None]
    if missing:
        return None, f"missing required field: {', '.join(missing)}"
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in obj.items():
        kind = _KIND.get(key)
        if kind is None:
            extra[key] = value
            continue
        if value is None:
            continue
        ok, cell = _coerce(kind, value)
        if not ok:
            article = "an" if kind[0] in "aeiou" else "a"
            whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            numeric = kind in ("number", "timestamp") or (kind == "integer" and whole)
            if _json_type(value) == "number" and numeric:
                return None, f"out of range: {key} = {str(value)[:40]}"
            return None, f"wrong type: {key} should be {article} {kind}, not {_json_type(value)}"
        row[key] = cell
    row["extra"] = encode_extra(extra)
    return row, ""


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8: byte {raw[exc.start]:#04x} at column {exc.start + 1}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        return None, "not JSON we read: nested too deeply"
    return _beacon_row(obj)


def _rows_frame(rows: list[dict[str, Any]], lines: list[int] | None = None) -> pl.DataFrame:
    """Frame rows (ts in epoch ms) as a RUM frame, optionally with their `_line`."""
    schema = {c: (pl.Int64() if c == "ts" else t) for c, t in RUM_SCHEMA.items()}
    frame = pl.DataFrame(rows, schema=schema)
    frame = frame.with_columns(pl.col("ts").cast(TIMESTAMP))
    if lines is not None:
        frame = frame.with_columns(pl.Series("_line", lines, dtype=pl.Int64))
    return frame
