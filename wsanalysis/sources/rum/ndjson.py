"""NDJSON beacons in bulk: exact, and close to polars' own typed reader in speed.

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

import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import polars as pl

from wsanalysis.sources.rum.beacon import (
    MAX_TS_MS,
    REFERENCE_SCHEMA,
    BeaconSchema,
    _parse_line,
    _Rejects,
    _rows_frame,
)
from wsanalysis.sources.schema import TIMESTAMP, empty_rum

#: NDJSON is parsed in slices of about this many bytes, on this many threads.
CHUNK_BYTES = 32 << 20
THREADS = min(4, os.cpu_count() or 1)
#: Below this many lines a slice that polars refuses is checked line by line.
BISECT_FLOOR = 512


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


def _bulk_frame(
    lines: pl.DataFrame, decoded: pl.Series, schema: BeaconSchema
) -> tuple[pl.DataFrame, pl.Series]:
    """Decoded lines as a frame of the schema's fields (+ `_line`), and the rows to
    re-check one by one.

    Rows are re-checked when polars had to coerce one of their known fields (a
    string where a number belongs, say) or a required field is missing: those are
    either bad lines or need the exact rules of `_beacon_row`.
    """
    fields = {f.name: f.dtype for f in decoded.dtype.fields} if decoded.dtype == pl.Struct else {}
    frame = lines.select("_line", "line").with_columns(decoded.alias("_s"))
    columns: list[pl.Expr] = [pl.col("_line")]
    recheck = pl.lit(False)
    for name in schema.known:
        kind, target = schema.kind[name], schema.dtype[name]
        if name not in fields:
            columns.append(pl.lit(None, dtype=target).alias(name))
            if name in schema.required:
                recheck = pl.lit(True)
            continue
        value = pl.col("_s").struct.field(name)
        if not _compatible(kind, fields[name]):
            recheck = recheck | value.is_not_null()
            columns.append(pl.lit(None, dtype=target).alias(name))
            continue
        if name in schema.required:
            recheck = recheck | value.is_null()
        # a number the column cannot hold (beyond Int64, a time past year 9999, NaN)
        # casts to null here and gets the exact rules
        if kind == "timestamp":
            ms = value.cast(pl.Int64, strict=False)
            recheck = recheck | (value.is_not_null() & (ms.abs() > MAX_TS_MS).fill_null(True))
            value = ms.cast(TIMESTAMP)
        elif kind == "string" and fields[name] == pl.Boolean:
            value = pl.when(value).then(pl.lit("true")).when(~value).then(pl.lit("false"))
        else:
            cast = value.cast(target, strict=False)
            recheck = recheck | (value.is_not_null() & cast.is_null())
            value = cast
        columns.append(value.alias(name))
    pieces: list[pl.Expr] = []
    for name, dtype in fields.items():
        if name in schema.kind:
            continue
        value = pl.col("_s").struct.field(name)
        if dtype.is_nested():
            path = _json_path(name)
            if path is None:
                recheck = recheck | value.is_not_null()
                continue
            raw = pl.col("line").str.json_path_match(path)
            recheck = recheck | (value.is_not_null() & pl.col("line").str.contains(_LONG_NUMBER))
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
    present = pl.sum_horizontal(pl.col(c).is_not_null().cast(pl.UInt32) for c in schema.known)
    shown = present + _tokens("extra").fill_null(1)
    out = out.with_columns((pl.col("_recheck") | (pl.col("_tokens") != shown)).alias("_recheck"))
    done = out.filter(~pl.col("_recheck")).drop("_recheck", "_tokens")
    return done, out.filter("_recheck")["_line"]


def _decode(lines: pl.DataFrame, schema: BeaconSchema) -> Iterator[tuple[pl.DataFrame, pl.Series]]:
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
        yield from _decode(lines.slice(0, half), schema)
        yield from _decode(lines.slice(half), schema)
        return
    yield _bulk_frame(lines, decoded, schema)


def _split_chunks(
    blocks: Iterable[bytes], size: int = CHUNK_BYTES
) -> Iterator[tuple[int, int, bytes]]:
    """Slices of whole lines, each with the number of lines before it and in it.

    `blocks` is the text in pieces of any length (a file as it is inflated): a slice
    is cut at the last line break once `size` bytes are held.
    """
    first_line, pending, held = 0, [], 0
    for block in blocks:
        pending.append(block)
        held += len(block)
        if held < size:
            continue
        data = b"".join(pending)
        stop = data.rfind(b"\n") + 1
        pending, held = [data[stop:]], len(data) - stop
        if stop:
            count = data.count(b"\n", 0, stop)
            yield first_line, count, data[:stop]
            first_line += count
    data = b"".join(pending)
    if data:
        yield first_line, data.count(b"\n") + (0 if data.endswith(b"\n") else 1), data


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


def _typed_schema(schema: BeaconSchema) -> dict[str, pl.DataType]:
    return {c: (pl.Int64() if c == schema.ts else schema.dtype[c]) for c in schema.known}


def _strings(schema: BeaconSchema) -> list[str]:
    return [c for c in schema.known if schema.kind[c] == "string"]


def _read_typed(
    lines: pl.DataFrame, schema: BeaconSchema, raw: bytes | None = None
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
        typed = pl.read_ndjson(raw, schema=_typed_schema(schema))
    except pl.exceptions.PolarsError:
        typed = None
    if typed is None or typed.height != lines.height:
        if lines.height <= BISECT_FLOOR:
            return [], lines
        half = lines.height // 2
        first, rest_a = _read_typed(lines.slice(0, half), schema)
        second, rest_b = _read_typed(lines.slice(half), schema)
        return first + second, pl.concat([rest_a, rest_b])
    return [pl.concat([lines, typed], how="horizontal")], lines.head(0)


#: A number written with 16 or more digits: polars' nested-JSON reader may round its
#: last digit, so a line holding one gets the exact rules (`json` reads it exactly).
_LONG_NUMBER = r"[:\[,]\s*-?[0-9][0-9.]{15}"


def _tokens(column: str = "line") -> pl.Expr:
    """Colons, brackets and braces in a JSON text, wherever they are."""
    return pl.col(column).str.count_matches(r"[:\[{]")


def _without_unknowns(
    typed: pl.DataFrame, schema: BeaconSchema
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split typed rows into finished beacons and lines that hold more than known fields.

    A line polars accepted is finished when it has exactly one more colon, bracket
    or brace than it has known fields set: every key brings a colon and the
    object its brace, so that count leaves no room for an unknown key, a nested
    value (polars would have turned an object in a string field into text), an
    explicit null or a duplicate key. Lines whose known strings hold such
    characters (a URL, `user:42`) are counted again with those taken off.
    """
    present = pl.sum_horizontal(pl.col(c).is_not_null().cast(pl.UInt32) for c in schema.known)
    required = pl.all_horizontal(pl.col(c).is_not_null() for c in schema.required)
    required = required & (pl.col(schema.ts).abs() <= MAX_TS_MS).fill_null(False)
    flags = typed.select(
        pl.int_range(pl.len()).alias("_row"),
        required.alias("_sound"),
        present.alias("_present"),
        _tokens().alias("_tokens"),
    )
    done = flags.select(
        (pl.col("_sound") & (pl.col("_tokens") == pl.col("_present") + 1)).alias("done")
    )["done"]
    # Rows stay where they are (no filter, concat or sort of a million rows): lines
    # with unknown fields only get their `extra`, and the few lines left for the
    # exact rules are taken out.
    frame = typed.select(*_frame_columns(schema))
    general = typed.head(0).select("_line", "line")
    extra = pl.Series("extra", [None] * typed.height, dtype=pl.Utf8)
    if done.all():
        return frame.with_columns(extra), general
    flagged = pl.concat([typed, flags], how="horizontal").filter(~done)
    more = flagged.filter("_sound").with_columns(_in_strings(schema))
    exact = (pl.col("_tokens") == pl.col("_present") + 1 + pl.col("_inner")).fill_null(False)
    more = more.filter(~exact)  # the others are done: known strings held the tokens
    with_extra, general = _with_unknowns(more, schema)
    general = pl.concat([general, flagged.filter(~pl.col("_sound")).select("_line", "line")])
    if with_extra.height:
        extra = extra.scatter(with_extra["_row"], with_extra["extra"])
    frame = frame.with_columns(extra)
    if general.height:
        frame = frame.filter(~pl.col("_line").is_in(general["_line"].implode()))
    return frame, general


def _in_strings(schema: BeaconSchema) -> pl.Expr:
    """Tokens inside the known string values, or null when they cannot be trusted.

    Null when a value starts like an object or array (polars turns those into
    text for a string field) or the line has escapes (the decoded value and the
    text would not count alike).
    """
    strings = _strings(schema)
    inner = pl.sum_horizontal(_tokens(c).fill_null(0) for c in strings)
    nested = pl.any_horizontal(
        pl.col(c).str.starts_with("{") | pl.col(c).str.starts_with("[") for c in strings
    ).fill_null(False)
    escaped = pl.col("line").str.contains("\\", literal=True)
    return pl.when(nested | escaped).then(None).otherwise(inner).alias("_inner")


def _frame_columns(schema: BeaconSchema) -> list[str | pl.Expr]:
    return [
        "_line",
        *[pl.col(c).cast(TIMESTAMP) if c == schema.ts else pl.col(c) for c in schema.known],
    ]


def _with_unknowns(rows: pl.DataFrame, schema: BeaconSchema) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`extra` for typed rows whose lines also hold unknown fields.

    polars infers the unknown fields' columns over these lines. Nothing is added
    on the way (nested values are taken as their own text), and a row is done
    only when its known fields plus the tokens of its `extra` text account for
    every colon, bracket and brace of its line, so nothing was dropped either.
    An unknown field set to null (or missed by the inference) sends its line to
    the exact rules.
    """
    empty = rows.head(0).select("_row", pl.lit(None, dtype=pl.Utf8).alias("extra"))
    if rows.is_empty():
        return empty, rows.select("_line", "line")
    text = rows.select(pl.col("line").str.join("\n"))["line"][0].encode("utf-8")
    try:
        # keys first seen late are missed here and caught by the count below
        inferred = pl.read_ndjson(text, infer_schema_length=1000)
    except pl.exceptions.PolarsError:
        return empty, rows.select("_line", "line")
    unknown = [c for c in inferred.columns if c not in schema.kind]
    if inferred.height != rows.height or not unknown:
        return empty, rows.select("_line", "line")
    inferred = inferred.select(unknown).with_columns(rows["line"].alias("_text"))
    pieces, unsure = [], pl.col("_text").str.contains(_LONG_NUMBER)
    # an unknown field set to null, or one the inference missed, leaves its colon out
    # of `extra`: the token count below sends such a line to the exact rules
    for number, name in enumerate(unknown):
        value = pl.col(name)
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
            if (
                isinstance(dtype, pl.Struct)
                and dtype.fields
                and not any(f.dtype.is_nested() for f in dtype.fields)
            ):
                whole = pl.all_horizontal(
                    value.struct.field(f.name).is_not_null() for f in dtype.fields
                )
            encoded = (
                pl.struct(value).struct.json_encode().str.strip_prefix("{").str.strip_suffix("}")
            )
            need = inferred.select((value.is_not_null() & ~whole).alias("need"))["need"]
            if need.any():  # the raw text only where it is needed (json_path_match is slow)
                where = need.arg_true()
                piece = inferred.select(
                    pl.when(value.is_not_null() & whole).then(encoded).alias("piece")
                )["piece"]
                piece = piece.scatter(where, inferred[where].select(raw.alias("raw"))["raw"])
                inferred = inferred.with_columns(piece.alias(f"__piece{number}"))
                pieces.append(pl.col(f"__piece{number}"))
            else:
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
        rows.filter("_exact").select("_row", "extra"),
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
    first_line: int, count: int, chunk: bytes, schema: BeaconSchema = REFERENCE_SCHEMA
) -> tuple[list[pl.DataFrame], list[tuple[int, bytes]], int]:
    """One slice in bulk: typed frames, the lines left for `json` one by one, the line count.

    Runs in a worker thread (polars releases the GIL), so it touches no shared state.
    """
    lines, undecodable = _chunk_lines(chunk, first_line, count)
    # a line must at least look like an object to be worth handing to polars;
    # blank lines are skipped later, with the other odd ones
    shaped = pl.col("line").str.starts_with("{") & pl.col("line").str.ends_with("}")
    is_shaped = lines.select(shaped.alias("shaped"))["shaped"]
    suspects = [] if is_shaped.all() else lines.filter(~is_shaped)["_line"].to_list()
    raw = None if undecodable else _blank_out(chunk, suspects, first_line)
    typed, general = _read_typed(lines.filter(is_shaped) if suspects else lines, schema, raw)
    frames: list[pl.DataFrame] = []
    for part in typed:
        finished, unknowns = _without_unknowns(part, schema)
        frames.append(finished)
        general = pl.concat([general, unknowns])
    recheck: list[int] = []
    for good, again in _decode(general.sort("_line"), schema):
        if good.height:
            frames.append(good)
        recheck.extend(again.to_list())
    slow = sorted(set(suspects) | set(recheck))
    by_line = {}
    if slow:
        wanted = lines.filter(pl.col("_line").is_in(slow))
        by_line = dict(wanted.select("_line", "line").iter_rows())
    leftovers = [(n, by_line[n].encode("utf-8")) for n in slow]
    leftovers = sorted(leftovers + list(undecodable.items()))
    return frames, leftovers, lines.height


def _in_order(
    pool: ThreadPoolExecutor,
    jobs: Iterator[tuple[int, int, bytes]],
    window: int,
    schema: BeaconSchema,
) -> Iterator[tuple[list[pl.DataFrame], list[tuple[int, bytes]], int]]:
    """Results of `_parse_chunk` in file order, with at most `window` slices in flight."""
    pending: deque[Future] = deque()
    for job in jobs:
        pending.append(pool.submit(_parse_chunk, *job, schema))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _read_ndjson_bytes(
    data: bytes | Iterable[bytes], rejects: _Rejects, schema: BeaconSchema = REFERENCE_SCHEMA
) -> tuple[pl.DataFrame, int]:
    """Parse NDJSON (bytes, or blocks of them as a file is inflated) into a RUM frame;
    bad lines go to `rejects`. Fields are read by the schema's names (a telemetry
    mapping's dialect) and handed back in the contract's (`BeaconSchema.conform`).

    Slices are parsed in bulk on a couple of threads while the next ones are read;
    the few lines that the bulk path cannot vouch for are then checked one by one,
    in file order.
    """
    frames: list[pl.DataFrame] = []
    total = 0
    blocks = [data] if isinstance(data, bytes) else data
    workers = THREADS
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for bulk, leftovers, count in _in_order(pool, _split_chunks(blocks), workers + 1, schema):
            total += count
            frames.extend(bulk)
            rows, row_lines = [], []
            for number, raw in leftovers:
                if not raw.strip():
                    continue  # a blank line is no beacon, and no error either
                row, reason = _parse_line(raw, schema)
                if row is None:
                    rejects.add(number, reason, raw)
                else:
                    rows.append(row)
                    row_lines.append(number)
            if rows:
                frames.append(_rows_frame(rows, row_lines, schema))
    if not frames:
        return empty_rum(), total
    # the slices' frames side by side, not copied into one (nothing here needs that)
    numbers = pl.concat([f["_line"] for f in frames], rechunk=False)
    frame = pl.concat([schema.conform(f) for f in frames], rechunk=False)
    if not numbers.is_sorted():  # lines the exact rules took came after their slice
        frame = frame[numbers.arg_sort()]
    return frame, total
