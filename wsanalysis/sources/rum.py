"""RUM beacons (client telemetry) from NDJSON, Parquet or a Datadog RUM events export.

Every reader returns the RUM frame of the contract (`schema.RUM_SCHEMA`): typed
columns for the beacon's known fields, `ts` as Datetime[ms, UTC], and the unknown
fields of each beacon kept as JSON text in `extra`. Broken input never aborts a load:
a bad line is counted, a few are shown with their line numbers, and all of them can
be written to a quarantine file (the original line, then the reason).

NDJSON goes three ways, each exact, the cheapest first:
1. bulk: polars reads the known fields with their contract types straight from
   the text (`read_ndjson` with a schema); a count of colons, brackets and braces
   per line proves the line holds nothing else (see `_without_unknowns`);
   lines with unknown fields get `extra` from a second bulk read of just them;
2. per slice: what the bulk read refused (a mistyped field, odd JSON) is decoded
   by `str.json_decode` after halving the slice around the culprits;
3. per line: broken, mistyped or ambiguous lines go through `json` one by one
   (`_beacon_row` holds the rules; the other two ways must agree with it, and a
   property test checks they do).
Slices are parsed on a couple of threads; gzip is detected by its magic bytes and
inflated with ISA-L when `isal` is installed.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.schema import RUM_REQUIRED, RUM_SCHEMA, TIMESTAMP, empty_rum

try:  # ISA-L inflates gzip about twice as fast as zlib; optional
    from isal.igzip import decompress as _gunzip
except ImportError:  # pragma: no cover - depends on the environment
    _gunzip = gzip.decompress

__all__ = [
    "BadLine",
    "RumLoad",
    "beacons_frame",
    "read_rum",
    "scan_rum_parquet",
    "write_rum",
]

Format = Literal["auto", "ndjson", "parquet", "datadog"]
TimeBound = datetime | date | str | int | None

#: How many bad lines a load keeps as examples (all are counted and quarantined).
EXAMPLES = 5
#: NDJSON is parsed in slices of about this many bytes, on this many threads.
CHUNK_BYTES = 32 << 20
THREADS = min(4, os.cpu_count() or 1)
#: Below this many lines a slice that polars refuses is checked line by line.
BISECT_FLOOR = 512

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


# --------------------------------------------------------------------------------------
# One beacon, in Python: the reference rules (the bulk path must agree with them)


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


def _coerce(kind: str, value: Any) -> tuple[bool, Any]:
    """The value as its column holds it, or (False, None) when it has the wrong type."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        if isinstance(value, str):
            return True, value
        # a numeric id or a flag written unquoted is kept as its JSON text
        return (True, json.dumps(value)) if number or isinstance(value, bool) else (False, None)
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, None
    if kind == "number":
        return (True, float(value)) if number else (False, None)
    if kind == "timestamp":
        return (True, int(value)) if number else (False, None)
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
    return _beacon_row(obj)


def _rows_frame(rows: list[dict[str, Any]], lines: list[int] | None = None) -> pl.DataFrame:
    """Frame rows (ts in epoch ms) as a RUM frame, optionally with their `_line`."""
    schema = {c: (pl.Int64() if c == "ts" else t) for c, t in RUM_SCHEMA.items()}
    frame = pl.DataFrame(rows, schema=schema)
    frame = frame.with_columns(pl.col("ts").cast(TIMESTAMP))
    if lines is not None:
        frame = frame.with_columns(pl.Series("_line", lines, dtype=pl.Int64))
    return frame


# --------------------------------------------------------------------------------------
# NDJSON in bulk


def _compatible(kind: str, dtype: pl.DataType) -> bool:
    """Whether a column polars inferred can be cast without hiding a wrong type."""
    if dtype == pl.Null:
        return True
    if kind == "string":
        return dtype == pl.Utf8 or dtype.is_numeric() or dtype == pl.Boolean
    if kind == "integer":
        return dtype.is_integer()
    if kind in ("number", "timestamp"):
        return dtype.is_numeric()
    if kind == "boolean":
        return dtype == pl.Boolean
    return False


def _json_path(key: str) -> str | None:
    if "'" in key or "\\" in key or "]" in key:
        return None
    return f"$['{key}']"


def _bulk_frame(lines: pl.DataFrame, decoded: pl.Series) -> tuple[pl.DataFrame, pl.Series]:
    """Decoded lines as a RUM frame (+ `_line`), and the rows to re-check one by one.

    Rows are re-checked when polars had to coerce one of their known fields (a
    string where a number belongs, say) or a required field is missing: those are
    either bad lines or need the exact rules of `_beacon_row`.
    """
    fields = {f.name: f.dtype for f in decoded.dtype.fields} if decoded.dtype == pl.Struct else {}
    frame = lines.select("_line", "line").with_columns(decoded.alias("_s"))
    columns: list[pl.Expr] = [pl.col("_line")]
    recheck = pl.lit(False)
    for name in KNOWN:
        kind, target = _KIND[name], RUM_SCHEMA[name]
        if name not in fields:
            columns.append(pl.lit(None, dtype=target).alias(name))
            if name in RUM_REQUIRED:
                recheck = pl.lit(True)
            continue
        value = pl.col("_s").struct.field(name)
        if not _compatible(kind, fields[name]):
            recheck = recheck | value.is_not_null()
            columns.append(pl.lit(None, dtype=target).alias(name))
            continue
        if name in RUM_REQUIRED:
            recheck = recheck | value.is_null()
        if kind == "timestamp":
            value = value.cast(pl.Int64).cast(TIMESTAMP)
        elif kind == "string" and fields[name] == pl.Boolean:
            value = pl.when(value).then(pl.lit("true")).when(~value).then(pl.lit("false"))
        else:
            value = value.cast(target)
        columns.append(value.alias(name))
    pieces: list[pl.Expr] = []
    for name, dtype in fields.items():
        if name in _KIND:
            continue
        value = pl.col("_s").struct.field(name)
        if dtype.is_nested():
            path = _json_path(name)
            if path is None:
                recheck = recheck | value.is_not_null()
                continue
            raw = pl.col("line").str.json_path_match(path)
            key = json.dumps(name, ensure_ascii=False)
            pieces.append(pl.when(raw.is_not_null()).then(pl.lit(key + ":") + raw))
        else:
            encoded = pl.struct(value.alias(name)).struct.json_encode()
            pieces.append(
                pl.when(value.is_not_null()).then(
                    encoded.str.strip_prefix("{").str.strip_suffix("}")
                )
            )
    if pieces:
        joined = pl.concat_str(pieces, separator=",", ignore_nulls=True)
        extra = pl.when(joined == "").then(None).otherwise(pl.lit("{") + joined + pl.lit("}"))
    else:
        extra = pl.lit(None, dtype=pl.Utf8)
    columns.append(extra.alias("extra"))
    columns.append(recheck.alias("_recheck"))
    out = frame.select(*columns, _tokens().alias("_tokens"))
    # an unknown field set to null leaves no trace in `extra`: such a line, or any
    # other whose text holds more than the row shows, gets the exact rules
    present = pl.sum_horizontal(pl.col(c).is_not_null().cast(pl.UInt32) for c in KNOWN)
    shown = present + _tokens("extra").fill_null(1)
    out = out.with_columns((pl.col("_recheck") | (pl.col("_tokens") != shown)).alias("_recheck"))
    done = out.filter(~pl.col("_recheck")).drop("_recheck", "_tokens")
    return done, out.filter("_recheck")["_line"]


def _decode(lines: pl.DataFrame) -> Iterator[tuple[pl.DataFrame, pl.Series]]:
    """Bulk-decode lines; when polars refuses a slice, halve it to corner the culprits.

    Yields (good rows, line numbers to check one by one).
    """
    if lines.is_empty():
        return
    try:
        decoded = lines["line"].str.json_decode(infer_schema_length=None)
    except pl.exceptions.PolarsError:
        if lines.height <= BISECT_FLOOR:
            yield lines.head(0).select("_line"), lines["_line"]
            return
        half = lines.height // 2
        yield from _decode(lines.slice(0, half))
        yield from _decode(lines.slice(half))
        return
    yield _bulk_frame(lines, decoded)


def _split_chunks(data: bytes, size: int = CHUNK_BYTES) -> Iterator[tuple[int, int, bytes]]:
    """Slices of whole lines, each with the number of lines before it and in it."""
    start, first_line = 0, 0
    while start < len(data):
        stop = data.find(b"\n", min(start + size, len(data)) - 1)
        stop = len(data) if stop < 0 else stop + 1
        chunk = data[start:stop]
        count = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        yield first_line, count, chunk
        first_line += count
        start = stop


def _chunk_lines(
    chunk: bytes, first_line: int, expected: int
) -> tuple[pl.DataFrame, dict[int, bytes]]:
    """The lines of one slice as a frame (`_line`, `line`), plus lines that are not UTF-8.

    The CSV reader splits lines in parallel; a unit separator (which valid JSON
    never holds raw) or bytes that are not UTF-8 send the slice the slow way.
    """
    if b"\x1f" not in chunk:
        try:
            lines = pl.read_csv(
                chunk,
                has_header=False,
                separator="\x1f",
                quote_char=None,
                schema={"line": pl.Utf8()},
            )
        except pl.exceptions.PolarsError:
            lines = None
        if lines is not None and lines.height == expected:
            return _numbered(lines.with_columns(pl.col("line").fill_null("")), first_line), {}
    undecodable: dict[int, bytes] = {}
    parts = chunk.split(b"\n")
    if chunk.endswith(b"\n"):
        parts.pop()
    try:
        text = [part.decode("utf-8") for part in parts]
    except UnicodeDecodeError:
        text = []
        for i, part in enumerate(parts):
            try:
                text.append(part.decode("utf-8"))
            except UnicodeDecodeError:
                undecodable[first_line + i + 1] = part
                text.append("")
    return _numbered(pl.Series("line", text, dtype=pl.Utf8).to_frame(), first_line), undecodable


def _numbered(lines: pl.DataFrame, first_line: int) -> pl.DataFrame:
    return lines.with_row_index("_line", offset=first_line + 1).with_columns(
        pl.col("_line").cast(pl.Int64)
    )


_TYPED_SCHEMA = {c: (pl.Int64() if c == "ts" else RUM_SCHEMA[c]) for c in KNOWN}
_STRINGS = [c for c in KNOWN if _KIND[c] == "string"]


def _read_typed(
    lines: pl.DataFrame, raw: bytes | None = None
) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """Typed columns for well-formed lines, straight from the text (no JSON tree per line).

    polars reads the known fields with their contract types and rejects a whole
    buffer for one broken line or one mistyped field, so a refused buffer is
    halved until the culprits are cornered in small slices, which are returned
    for the general path. Returns frames of `_line`, `line` and the typed columns.
    """
    if lines.is_empty():
        return [], lines
    if raw is None:
        raw = lines.select(pl.col("line").str.join("\n"))["line"][0].encode("utf-8")
    try:
        typed = pl.read_ndjson(raw, schema=_TYPED_SCHEMA)
    except pl.exceptions.PolarsError:
        typed = None
    if typed is None or typed.height != lines.height:
        if lines.height <= BISECT_FLOOR:
            return [], lines
        half = lines.height // 2
        first, rest_a = _read_typed(lines.slice(0, half))
        second, rest_b = _read_typed(lines.slice(half))
        return first + second, pl.concat([rest_a, rest_b])
    return [pl.concat([lines, typed], how="horizontal")], lines.head(0)


def _tokens(column: str = "line") -> pl.Expr:
    """Colons, brackets and braces in a JSON text, wherever they are."""
    return pl.col(column).str.count_matches(r"[:\[{]")


def _without_unknowns(typed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split typed rows into finished beacons and lines that hold more than known fields.

    A line polars accepted is finished when it has exactly one more colon, bracket
    or brace than it has known fields set: every key brings a colon and the
    object its brace, so that count leaves no room for an unknown key, a nested
    value (polars would have turned an object in a string field into text), an
    explicit null or a duplicate key. Lines whose known strings hold such
    characters (a URL, `user:42`) are counted again with those taken off.
    """
    present = pl.sum_horizontal(pl.col(c).is_not_null().cast(pl.UInt32) for c in KNOWN)
    required = pl.all_horizontal(pl.col(c).is_not_null() for c in RUM_REQUIRED)
    flagged = typed.with_columns(
        required.alias("_sound"), present.alias("_present"), _tokens().alias("_tokens")
    )
    done = pl.col("_sound") & (pl.col("_tokens") == pl.col("_present") + 1)
    finished = flagged.filter(done)
    more = flagged.filter(~done & pl.col("_sound")).with_columns(_in_strings())
    exact = (pl.col("_tokens") == pl.col("_present") + 1 + pl.col("_inner")).fill_null(False)
    again, more = more.filter(exact), more.filter(~exact)
    with_extra, general = _with_unknowns(more)
    general = pl.concat([general, flagged.filter(~pl.col("_sound")).select("_line", "line")])
    parts = [
        finished.select(*_FRAME_COLUMNS, pl.lit(None, dtype=pl.Utf8).alias("extra")),
        again.select(*_FRAME_COLUMNS, pl.lit(None, dtype=pl.Utf8).alias("extra")),
        with_extra,
    ]
    return pl.concat(parts), general


def _in_strings() -> pl.Expr:
    """Tokens inside the known string values, or null when they cannot be trusted.

    Null when a value starts like an object or array (polars turns those into
    text for a string field) or the line has escapes (the decoded value and the
    text would not count alike).
    """
    inner = pl.sum_horizontal(_tokens(c).fill_null(0) for c in _STRINGS)
    nested = pl.any_horizontal(
        pl.col(c).str.starts_with("{") | pl.col(c).str.starts_with("[") for c in _STRINGS
    ).fill_null(False)
    escaped = pl.col("line").str.contains("\\", literal=True)
    return pl.when(nested | escaped).then(None).otherwise(inner).alias("_inner")


_FRAME_COLUMNS = [
    "_line",
    *[pl.col("ts").cast(TIMESTAMP) if c == "ts" else pl.col(c) for c in KNOWN],
]


def _with_unknowns(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`extra` for typed rows whose lines also hold unknown fields.

    polars infers the unknown fields' columns over these lines. Nothing is added
    on the way (nested values are taken as their own text), and a row is done
    only when its known fields plus the tokens of its `extra` text account for
    every colon, bracket and brace of its line, so nothing was dropped either.
    An unknown field set to null (or missed by the inference) sends its line to
    the exact rules.
    """
    empty = rows.head(0).select(*_FRAME_COLUMNS, pl.lit(None, dtype=pl.Utf8).alias("extra"))
    if rows.is_empty():
        return empty, rows.select("_line", "line")
    text = rows.select(pl.col("line").str.join("\n"))["line"][0].encode("utf-8")
    try:
        # keys first seen late are missed here and caught by the count below
        inferred = pl.read_ndjson(text, infer_schema_length=1000)
    except pl.exceptions.PolarsError:
        return empty, rows.select("_line", "line")
    unknown = [c for c in inferred.columns if c not in _KIND]
    if inferred.height != rows.height or not unknown:
        return empty, rows.select("_line", "line")
    inferred = inferred.select(unknown).with_columns(rows["line"].alias("_text"))
    pieces, unsure = [], pl.lit(False)
    for name in unknown:
        value = pl.col(name)
        # set to null, or not seen by the inference: only `json` can tell
        unsure = unsure | (
            value.is_null() & pl.col("_text").str.contains(f'"{name}"', literal=True)
        )
        if inferred.schema[name].is_nested():
            path = _json_path(name)
            if path is None:
                unsure = unsure | value.is_not_null()
                continue
            # the value's own text: a struct column would add the keys of other rows
            # as nulls, so polars only writes it back where every key is there
            raw = pl.lit(json.dumps(name, ensure_ascii=False) + ":") + pl.col(
                "_text"
            ).str.json_path_match(path)
            dtype = inferred.schema[name]
            whole = pl.lit(False)
            if isinstance(dtype, pl.Struct) and not any(f.dtype.is_nested() for f in dtype.fields):
                whole = pl.all_horizontal(
                    value.struct.field(f.name).is_not_null() for f in dtype.fields
                )
            encoded = (
                pl.struct(value).struct.json_encode().str.strip_prefix("{").str.strip_suffix("}")
            )
            if inferred.select((value.is_not_null() & ~whole).any()).item():
                pieces.append(pl.when(value.is_not_null() & whole).then(encoded).otherwise(raw))
            else:  # polars evaluates both branches: skip the slow one when it is not needed
                pieces.append(pl.when(value.is_not_null()).then(encoded))
        else:
            encoded = pl.struct(value).struct.json_encode()
            pieces.append(
                pl.when(value.is_not_null()).then(
                    encoded.str.strip_prefix("{").str.strip_suffix("}")
                )
            )
    joined = pl.concat_str(pieces, separator=",", ignore_nulls=True)
    extra = inferred.select(
        pl.when(joined == "")
        .then(None)
        .otherwise(pl.lit("{") + joined + pl.lit("}"))
        .alias("extra"),
        unsure.alias("_unsure"),
    )
    rows = rows.with_columns(extra)
    exact = pl.col("_tokens") == pl.col("_present") + pl.col("_inner") + _tokens("extra")
    rows = rows.with_columns((exact.fill_null(False) & ~pl.col("_unsure")).alias("_exact"))
    return (
        rows.filter("_exact").select(*_FRAME_COLUMNS, "extra"),
        rows.filter(~pl.col("_exact")).select("_line", "line"),
    )


def _blank_out(chunk: bytes, numbers: list[int], first_line: int) -> bytes:
    """The slice with the given lines overwritten by spaces (line breaks stay put)."""
    if not numbers:
        return chunk
    buffer = np.frombuffer(chunk, dtype=np.uint8).copy()
    ends = np.flatnonzero(buffer == ord("\n"))
    if not chunk.endswith(b"\n"):
        ends = np.append(ends, len(chunk))
    starts = np.concatenate(([0], ends[:-1] + 1))
    for index in np.asarray(numbers) - first_line - 1:
        buffer[starts[index] : ends[index]] = ord(" ")
    return buffer.tobytes()


def _parse_chunk(
    first_line: int, count: int, chunk: bytes
) -> tuple[list[pl.DataFrame], list[tuple[int, bytes]], int]:
    """One slice in bulk: typed frames, the lines left for `json` one by one, the line count.

    Runs in a worker thread (polars releases the GIL), so it touches no shared state.
    """
    lines, undecodable = _chunk_lines(chunk, first_line, count)
    # a line must at least look like an object to be worth handing to polars;
    # blank lines are skipped later, with the other odd ones
    shaped = pl.col("line").str.starts_with("{") & pl.col("line").str.ends_with("}")
    lines = lines.with_columns(shaped.alias("_shaped"))
    suspects = lines.filter(~pl.col("_shaped"))["_line"].to_list()
    raw = None if undecodable else _blank_out(chunk, suspects, first_line)
    typed, general = _read_typed(lines.filter("_shaped").drop("_shaped"), raw)
    frames: list[pl.DataFrame] = []
    for part in typed:
        finished, unknowns = _without_unknowns(part)
        frames.append(finished)
        general = pl.concat([general, unknowns])
    recheck: list[int] = []
    for good, again in _decode(general.sort("_line")):
        if good.height:
            frames.append(good)
        recheck.extend(again.to_list())
    slow = sorted(set(suspects) | set(recheck))
    by_line = dict(lines.filter(pl.col("_line").is_in(slow)).select("_line", "line").iter_rows())
    leftovers = [(n, by_line[n].encode("utf-8")) for n in slow]
    leftovers = sorted(leftovers + list(undecodable.items()))
    return frames, leftovers, lines.height


def _in_order(
    pool: ThreadPoolExecutor, jobs: Iterator[tuple[int, int, bytes]], window: int
) -> Iterator[tuple[list[pl.DataFrame], list[tuple[int, bytes]], int]]:
    """Results of `_parse_chunk` in file order, with at most `window` slices in flight."""
    pending: deque[Future] = deque()
    for job in jobs:
        pending.append(pool.submit(_parse_chunk, *job))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _read_ndjson_bytes(data: bytes, rejects: _Rejects) -> tuple[pl.DataFrame, int]:
    """Parse NDJSON bytes into a RUM frame; bad lines go to `rejects`.

    Slices are parsed in bulk on a couple of threads; the few lines that the bulk
    path cannot vouch for are then checked one by one, in file order.
    """
    frames: list[pl.DataFrame] = []
    total = 0
    workers = max(1, min(THREADS, (len(data) // CHUNK_BYTES) + 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for bulk, leftovers, count in _in_order(pool, _split_chunks(data), workers + 1):
            total += count
            frames.extend(bulk)
            rows, row_lines = [], []
            for number, raw in leftovers:
                if not raw.strip():
                    continue  # a blank line is no beacon, and no error either
                row, reason = _parse_line(raw)
                if row is None:
                    rejects.add(number, reason, raw)
                else:
                    rows.append(row)
                    row_lines.append(number)
            if rows:
                frames.append(_rows_frame(rows, row_lines))
    if not frames:
        return empty_rum(), total
    order = ["_line", *RUM_SCHEMA]
    frame = pl.concat([f.select(order) for f in frames], how="vertical")
    if not frame["_line"].is_sorted():
        frame = frame.sort("_line")
    return frame.drop("_line"), total


# --------------------------------------------------------------------------------------
# Datadog RUM events export


def _get(obj: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _leaves(obj: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(obj, Mapping) and obj:
        for key, value in obj.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


#: Datadog standard attributes that fill a beacon field when `context` does not.
DATADOG_FALLBACKS: dict[str, tuple[str, ...]] = {
    "type": ("action.target.name", "type"),
    "session_id": ("session.id",),
    "user": ("usr.id",),
    "trace": ("_dd.trace_id",),
}


def _datadog_timestamp(event: Mapping[str, Any], inner: Mapping[str, Any]) -> Any:
    if isinstance(inner.get("date"), int | float):
        return inner["date"]
    stamp = event.get("timestamp")
    if isinstance(stamp, int | float):
        return stamp
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None
        return round(parsed.timestamp() * 1000)
    return None


def _datadog_beacon(event: Any, used: set[str]) -> tuple[dict[str, Any] | None, str]:
    """One Datadog RUM event as a beacon dict; `used` collects the attribute paths taken."""
    if not isinstance(event, Mapping):
        return None, f"not a JSON object: {_json_type(event)}"
    outer = event.get("attributes")
    if not isinstance(outer, Mapping):
        return None, "missing required field: attributes"
    inner = outer.get("attributes") if isinstance(outer.get("attributes"), Mapping) else {}
    context = inner.get("context") if isinstance(inner.get("context"), Mapping) else {}
    beacon: dict[str, Any] = {"v": 1}
    for key, value in context.items():
        beacon[key] = value
        used.add(f"context.{key}")
    if beacon.get("ts") is None:
        beacon["ts"] = _datadog_timestamp(outer, inner)
        used.add("date")
    for name, paths in DATADOG_FALLBACKS.items():
        if beacon.get(name) is not None:
            continue
        for path in paths:
            value = _get(inner, path)
            if value is not None:
                beacon[name] = value
                used.add(path)
                break
    if beacon.get("variant") is None:
        for tag in outer.get("tags") or ():
            if isinstance(tag, str) and tag.startswith("variant:"):
                beacon["variant"] = tag.split(":", 1)[1]
                break
    return _beacon_row(beacon)


def _datadog_pages(data: bytes) -> list[Any]:
    """The pages of an export: one JSON page, a JSON array of pages, or one page per line."""
    text = data.decode("utf-8", errors="replace").strip()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return doc if isinstance(doc, list) else [doc]


def _read_datadog(paths: Sequence[Path], rejects: _Rejects) -> tuple[pl.DataFrame, int, dict]:
    rows: list[dict[str, Any]] = []
    unmapped: Counter[str] = Counter()
    number = 0
    for path in paths:
        try:
            pages = _datadog_pages(_read_bytes(path))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path} is not a Datadog RUM export: {exc.msg} at line {exc.lineno}",
                "pass the JSON pages returned by the RUM events API (GET /api/v2/rum/events)",
            ) from exc
        for page in pages:
            events = page.get("data") if isinstance(page, Mapping) else page
            if not isinstance(events, list):
                raise DataError(
                    f"{path} holds no `data` list of events",
                    "pass the JSON pages returned by the RUM events API (GET /api/v2/rum/events)",
                )
            for event in events:
                number += 1
                used: set[str] = set()
                row, reason = _datadog_beacon(event, used)
                if row is None:
                    raw = json.dumps(event, ensure_ascii=False).encode()
                    rejects.add(number, reason, raw)
                    continue
                rows.append(row)
                inner = _get(event, "attributes.attributes") or {}
                for leaf in _leaves({k: v for k, v in inner.items() if k != "context"}):
                    if (
                        leaf
                        and leaf not in used
                        and not any(leaf.startswith(p + ".") for p in used)
                    ):
                        unmapped[leaf] += 1
    frame = _rows_frame(rows) if rows else empty_rum()
    return frame, number, dict(unmapped)


# --------------------------------------------------------------------------------------
# Parquet


def _bound(value: TimeBound, name: str) -> datetime | None:
    """A window bound as an aware UTC datetime (naive datetimes are taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise UsageError(
                f"{name}={value!r} is not a time",
                "give an ISO 8601 time such as 2026-11-25T18:00:00Z",
            ) from exc
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise UsageError(f"{name}={value!r} is not a time", "give a datetime or an ISO 8601 string")


def _window(
    start: TimeBound, end: TimeBound, variants: Iterable[str] | None
) -> tuple[pl.Expr | None, datetime | None, datetime | None]:
    """The row filter for [start, end) and the variants (None when nothing is filtered)."""
    lo, hi = _bound(start, "start"), _bound(end, "end")
    if lo is not None and hi is not None and hi <= lo:
        raise UsageError(f"the window ends ({hi}) before it starts ({lo})", "swap start and end")
    terms: list[pl.Expr] = []
    if lo is not None:
        terms.append(pl.col("ts") >= lo)
    if hi is not None:
        terms.append(pl.col("ts") < hi)
    if variants is not None:
        if isinstance(variants, str):
            variants = [variants]
        terms.append(pl.col("variant").is_in(list(variants)))
    predicate = pl.all_horizontal(terms) if terms else None
    return predicate, lo, hi


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if p.is_file())


def scan_rum_parquet(
    path: str | Path,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    variants: Iterable[str] | None = None,
) -> pl.LazyFrame:
    """A lazy scan of a Parquet file or a hive-partitioned folder, filtered at scan time.

    The time window and the variants are pushed into the scan: partitions
    (`variant=canary/`, `date=2026-11-25/`) that cannot match are not opened and
    row groups are skipped by their statistics. Columns the RUM schema does not
    know are folded into `extra`; missing ones come back as nulls.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist", "pass a .parquet file or a folder of them")
    files = _parquet_files(path)
    if not files:
        raise DataError(f"{path} holds no .parquet files", "pass a .parquet file or a folder")
    hive = path.is_dir()
    source = str(path / "**" / "*.parquet") if hive else str(path)
    hive_schema = None
    if hive:
        keys = {
            part.split("=", 1)[0]
            for f in files
            for part in f.relative_to(path).parts[:-1]
            if "=" in part
        }
        hive_schema = {
            k: (pl.Date() if k == "date" else RUM_SCHEMA.get(k, pl.Utf8())) for k in keys
        }
    lazy = pl.scan_parquet(
        source,
        hive_partitioning=hive,
        hive_schema=hive_schema or None,
        missing_columns="insert",
        extra_columns="ignore",
    )
    names = lazy.collect_schema().names()
    predicate, lo, hi = _window(start, end, variants)
    if "date" in names and "date" not in RUM_SCHEMA:
        # a date partition prunes whole folders before any file is opened
        if lo is not None:
            lazy = lazy.filter(pl.col("date") >= lo.date())
        if hi is not None:
            lazy = lazy.filter(pl.col("date") <= hi.date())
    if "ts" in names and lazy.collect_schema()["ts"] != TIMESTAMP:
        lazy = lazy.with_columns(_as_timestamp(pl.col("ts"), lazy.collect_schema()["ts"]))
    if predicate is not None:
        lazy = lazy.filter(predicate)
    return _conform(lazy, exclude={"date"} if hive else set())


def _as_timestamp(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Datetime:
        return (
            column.dt.cast_time_unit("ms").dt.replace_time_zone(None).dt.replace_time_zone("UTC")
            if getattr(dtype, "time_zone", None) is None
            else column.dt.convert_time_zone("UTC").dt.cast_time_unit("ms")
        )
    return column.cast(pl.Int64).cast(TIMESTAMP)


def _conform(lazy: pl.LazyFrame, exclude: set[str] = frozenset()) -> pl.LazyFrame:
    """Cast to the RUM schema; fold unknown columns into `extra`, add missing ones."""
    schema = lazy.collect_schema()
    unknown = [c for c in schema.names() if c not in RUM_SCHEMA and c not in exclude]
    columns = []
    for name, dtype in RUM_SCHEMA.items():
        if name not in schema:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
        elif name == "ts":
            columns.append(_as_timestamp(pl.col("ts"), schema["ts"]).alias("ts"))
        elif name == "extra" and unknown:
            columns.append(_merge_extra(pl.col("extra"), unknown).alias("extra"))
        else:
            columns.append(pl.col(name).cast(dtype).alias(name))
    if unknown and "extra" not in schema:
        columns[-1] = _merge_extra(pl.lit(None, dtype=pl.Utf8), unknown).alias("extra")
    return lazy.select(columns)


def _merge_extra(extra: pl.Expr, columns: Sequence[str]) -> pl.Expr:
    """`extra` text with the non-null values of `columns` added as keys."""
    pieces = [extra.str.strip_prefix("{").str.strip_suffix("}")]
    for name in columns:
        encoded = pl.struct(pl.col(name)).struct.json_encode()
        pieces.append(
            pl.when(pl.col(name).is_not_null()).then(
                encoded.str.strip_prefix("{").str.strip_suffix("}")
            )
        )
    joined = pl.concat_str(
        [pl.when(p != "").then(p) for p in pieces], separator=",", ignore_nulls=True
    )
    return pl.when(joined == "").then(None).otherwise(pl.lit("{") + joined + pl.lit("}"))


# --------------------------------------------------------------------------------------
# Reading: format detection and the public entry point


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when its first bytes say gzip (whatever its name)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return _gunzip(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path} looks gzip-compressed but cannot be decompressed: {exc}",
                "check the file was copied whole (gzip -t FILE)",
            ) from exc
    return data


def _sniff(path: Path) -> str:
    """ndjson, parquet or datadog, from the content (names can lie)."""
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
        if any(p.suffix == ".parquet" for p in files):
            return "parquet"
        if any(p.suffix in (".json", ".gz") for p in files):
            return "datadog"
        raise DataError(
            f"{path} holds no .parquet files nor Datadog export pages",
            "pass an NDJSON file, a Parquet file or folder, or a Datadog RUM export",
        )
    with path.open("rb") as handle:
        head = handle.read(4)
    if head == b"PAR1":
        return "parquet"
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as handle:
            try:
                head = handle.read(4096)
            except (OSError, EOFError, zlib.error):
                return "ndjson"
    else:
        with path.open("rb") as handle:
            head = handle.read(4096)
    return "datadog" if _looks_like_datadog(head) else "ndjson"


_DATADOG_HINT = re.compile(rb'"data"\s*:\s*\[')


def _looks_like_datadog(head: bytes) -> bool:
    """A page of the RUM events API: an object whose `data` is a list of events."""
    first = next((x for x in head.split(b"\n") if x.strip()), b"")
    try:
        doc = json.loads(first)
    except ValueError:  # a long or pretty-printed page: look for `"data": [` early on
        hint = _DATADOG_HINT.search(head)
        return hint is not None and b'"v"' not in head[: hint.start()]
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]
    return isinstance(doc, dict) and isinstance(doc.get("data"), list)


def _columns(columns: Sequence[str] | None) -> list[str]:
    """The RUM columns to keep, in schema order; every name must be a RUM column."""
    if columns is None:
        return list(RUM_SCHEMA)
    wanted = set(columns)
    unknown = sorted(wanted - set(RUM_SCHEMA))
    if unknown:
        raise UsageError(
            f"unknown RUM column(s) {unknown}", f"choose among {', '.join(RUM_SCHEMA)}"
        )
    return [name for name in RUM_SCHEMA if name in wanted]


def read_rum(
    path: str | Path,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    variants: Iterable[str] | None = None,
    quarantine: str | Path | None = None,
    format: Format = "auto",
    columns: Sequence[str] | None = None,
) -> RumLoad:
    """Read RUM beacons from NDJSON (plain or gzip), Parquet or a Datadog RUM export.

    The window is [start, end) on the beacon time; `variants` keeps only those
    variants. Bad lines are counted and described in the result, and written to
    `quarantine` (each original line followed by a `# {"line": .., "reason": ..}`
    note) when a path is given; they never abort the load. `columns` keeps only those
    RUM columns (a Parquet scan then reads no others; text is parsed whole anyway).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"RUM input {path} does not exist",
            "pass an NDJSON(.gz) file, a Parquet file or folder, or a Datadog export",
        )
    kind = _sniff(path) if format == "auto" else format
    if kind not in ("ndjson", "parquet", "datadog"):
        raise UsageError(f"unknown RUM format {format!r}", "use auto, ndjson, parquet or datadog")
    keep = _columns(columns)
    if kind == "parquet":
        frame = scan_rum_parquet(path, start=start, end=end, variants=variants)
        frame = frame.select(keep).collect()
        return RumLoad(frame=frame, source=str(path), format=kind, lines=frame.height)
    predicate, _, _ = _window(start, end, variants)
    rejects = _Rejects(Path(quarantine) if quarantine is not None else None)
    unmapped: dict[str, int] = {}
    try:
        if kind == "datadog":
            files = (
                sorted(p for p in path.rglob("*") if p.suffix in (".json", ".gz"))
                if path.is_dir()
                else [path]
            )
            frame, lines, unmapped = _read_datadog(files, rejects)
        else:
            frame, lines = _read_ndjson_bytes(_read_bytes(path), rejects)
    finally:
        rejects.close()
    if predicate is not None:
        frame = frame.filter(predicate)
    return RumLoad(
        frame=frame.select(keep),
        source=str(path),
        format=kind,
        lines=lines,
        bad_lines=rejects.count,
        examples=rejects.examples,
        bad_reasons=rejects.reasons,
        unmapped=unmapped,
        quarantine=rejects.path,
    )


# --------------------------------------------------------------------------------------
# Writing


def beacons_frame(beacons: pl.DataFrame | Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Beacons (a frame, or dicts as the contract writes them) as a RUM frame.

    A frame may carry `ts` as epoch ms or as a datetime, and columns the schema does
    not know (they go to `extra`). Dicts follow the same rules as a line of NDJSON;
    one that breaks them raises DataError, since a writer must not drop data quietly.
    """
    if isinstance(beacons, pl.DataFrame):
        return _conform(beacons.lazy()).collect()
    rows = []
    for index, beacon in enumerate(beacons):
        row, reason = _beacon_row(dict(beacon) if isinstance(beacon, Mapping) else beacon)
        if row is None:
            raise DataError(f"beacon #{index} cannot be written: {reason}", "fix the producer")
        rows.append(row)
    return _rows_frame(rows) if rows else empty_rum()


def _ndjson_lines(frame: pl.DataFrame) -> pl.Series:
    """One compact JSON object per beacon: known fields that are set, then `extra`'s keys."""
    pieces = []
    for name in KNOWN:
        value = pl.col(name).dt.epoch("ms") if name == "ts" else pl.col(name)
        encoded = pl.struct(value.alias(name)).struct.json_encode()
        pieces.append(
            pl.when(pl.col(name).is_not_null()).then(
                encoded.str.strip_prefix("{").str.strip_suffix("}")
            )
        )
    extra = pl.col("extra").str.strip_prefix("{").str.strip_suffix("}")
    pieces.append(pl.when(extra != "").then(extra))
    body = pl.concat_str(pieces, separator=",", ignore_nulls=True)
    return frame.select((pl.lit("{") + body + pl.lit("}")).alias("line"))["line"]


def write_rum(
    beacons: pl.DataFrame | Iterable[Mapping[str, Any]],
    path: str | Path,
    *,
    partition_by: Sequence[str] = ("variant",),
) -> None:
    """Write beacons so that `read_rum` gives them back unchanged.

    The path decides the format: `.ndjson` / `.jsonl` (plain), `.gz` (gzip NDJSON,
    byte-for-byte reproducible), `.parquet` (one file, sorted by time so row-group
    statistics prune a window), or a path without a suffix: a hive-partitioned
    folder (`variant=canary/...parquet`) for the lazy scan.
    """
    path = Path(path)
    frame = beacons_frame(beacons)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffixes = path.suffixes
    if suffixes[-1:] == [".parquet"]:
        frame.sort("ts", maintain_order=True).write_parquet(path, statistics=True)
    elif not suffixes or path.is_dir():
        frame.sort("ts", maintain_order=True).write_parquet(
            path, partition_by=list(partition_by), mkdir=True
        )
    elif suffixes[-1] in (".ndjson", ".jsonl", ".json", ".gz"):
        _write_ndjson(frame, path, gzipped=suffixes[-1] == ".gz")
    else:
        raise UsageError(
            f"cannot tell which format to write from the name {path.name}",
            "end it in .ndjson, .ndjson.gz or .parquet, or give a folder name",
        )


def _write_ndjson(frame: pl.DataFrame, path: Path, *, gzipped: bool) -> None:
    """NDJSON in slices; gzip with a fixed level and no timestamp, so same data, same bytes."""
    with path.open("wb") as raw:
        out = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
            if gzipped
            else raw
        )
        try:
            step = 500_000
            for offset in range(0, frame.height, step):
                lines = _ndjson_lines(frame.slice(offset, step))
                text = lines.to_frame().select(pl.col("line").str.join("\n"))["line"][0]
                out.write(text.encode("utf-8") + b"\n")
        finally:
            if gzipped:
                out.close()
