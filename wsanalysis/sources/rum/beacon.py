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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.sources.schema import RUM_REQUIRED, RUM_SCHEMA, TIMESTAMP
from wsanalysis.sources.telemetry import REFERENCE, Telemetry

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
class BeaconSchema:
    """Which JSON field fills which RUM column, in a telemetry mapping's dialect.

    `fields` maps each field the reader types (the user's name) to its RUM column (the
    contract's), in the RUM schema's order; with variant selectors, the fields they name
    follow (read to pick the variant, then dropped). `required` names the fields a
    beacon must carry. `conform` turns a frame read with the user's field names into the
    RUM frame: the variant, the contract's column names, beacon types and close codes.
    """

    fields: tuple[tuple[str, str], ...]
    required: tuple[str, ...]
    telemetry: Telemetry = REFERENCE
    by_selectors: bool = False

    @classmethod
    def of(cls, telemetry: Telemetry) -> BeaconSchema:
        """The schema a mapping reads (the contract's own when it renames no beacon field).

        The variant comes from `rum.fields.variant` when the mapping names it, else from
        the variants' label (values renamed as for the metrics), else, for selectors, from
        the selectors evaluated on the beacon fields of the labels' names."""
        mapping = telemetry.variant_mapping
        names = {c: telemetry.beacon_field(c) for c in KNOWN}
        names["variant"] = telemetry.beacon_variant_field
        by_selectors = bool(mapping.selectors) and "variant" not in telemetry.rum_fields
        required = [names[f] for f in RUM_REQUIRED if not (by_selectors and f == "variant")]
        if any(names[c] != c for c in KNOWN) or telemetry.rum_types or by_selectors:
            required.remove(names["v"])  # a mapped dialect need not carry the contract's version
        fields = [(user, column) for column, user in names.items()]
        if by_selectors:
            used = set(names.values())
            labels = sorted({m.label for ms in mapping.matchers().values() for m in ms})
            fields += [(label, label) for label in labels if label not in used]
        return cls(tuple(fields), tuple(required), telemetry, by_selectors)

    @cached_property
    def known(self) -> tuple[str, ...]:
        return tuple(user for user, _ in self.fields)

    @cached_property
    def field_of(self) -> dict[str, str]:
        """RUM column -> the field that fills it."""
        return {column: user for user, column in self.fields if column in RUM_SCHEMA}

    @cached_property
    def kind(self) -> dict[str, str]:
        return {user: _KIND.get(column, "string") for user, column in self.fields}

    @cached_property
    def dtype(self) -> dict[str, pl.DataType]:
        return {user: RUM_SCHEMA.get(column, pl.Utf8()) for user, column in self.fields}

    @cached_property
    def ts(self) -> str:
        return next(user for user, column in self.fields if column == "ts")

    @cached_property
    def plain(self) -> bool:
        """The contract's own beacons: nothing to rename or translate."""
        mapping = self.telemetry.variant_mapping
        return (
            all(user == column for user, column in self.fields)
            and self.required == RUM_REQUIRED
            and not (self.by_selectors or mapping.rename or self.telemetry.rum_types)
            and not any(self.telemetry.label_values.get(c) for c in ("code", "reason"))
        )

    def conform(self, frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
        """A frame of the schema's fields (and `extra`) as the RUM frame; a beacon that
        no variant selector matches keeps a null variant (the reader counts it)."""
        if self.plain:
            return frame.select(list(RUM_SCHEMA))
        mapping = self.telemetry.variant_mapping
        columns = frame.collect_schema().names()
        if self.by_selectors:
            frame = frame.with_columns(mapping.variant_expr(columns).alias("__variant"))
        renamed = {u: c for u, c in self.fields if c in RUM_SCHEMA and u != c and u in columns}
        frame = frame.rename(renamed)
        if self.by_selectors:
            frame = frame.with_columns(pl.col("__variant").alias("variant"))
        elif mapping.rename:
            frame = frame.with_columns(pl.col("variant").replace(mapping.rename))
        values = _reference_values(self.telemetry)
        return (frame.with_columns(values) if values else frame).select(list(RUM_SCHEMA))


def _reference_values(telemetry: Telemetry, columns: Iterable[str] = KNOWN) -> list[pl.Expr]:
    """The user's beacon types, close codes and reasons as the contract's (on the RUM
    frame's columns among `columns`)."""
    exprs = []
    if telemetry.rum_types and "type" in columns:
        backwards = {user: ref for ref, user in telemetry.rum_types.items()}
        exprs.append(pl.col("type").replace(backwards))
    for label in ("code", "reason"):
        values = telemetry.label_values.get(label)
        if not values or label not in columns:
            continue
        if RUM_SCHEMA[label] == pl.Int64:
            pairs = {int(u): int(r) for r, u in values.items() if _integer(r) and _integer(u)}
        else:
            pairs = {u: r for r, u in values.items()}
        if pairs:
            exprs.append(pl.col(label).replace(pairs))
    return exprs


def _integer(text: str) -> bool:
    return text.lstrip("-").isdigit()


REFERENCE_SCHEMA = BeaconSchema.of(REFERENCE)


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
    #: beacons left out because no variant selector matched them
    unassigned: int = 0

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


def _beacon_row(
    obj: Any, schema: BeaconSchema = REFERENCE_SCHEMA
) -> tuple[dict[str, Any] | None, str]:
    """A beacon (parsed JSON) as a frame row of the schema's fields, or (None, why it is
    rejected)."""
    if not isinstance(obj, dict):
        return None, f"not a JSON object: {_json_type(obj)}"
    missing = [f for f in schema.required if obj.get(f) is None]
    if missing:
        return None, f"missing required field: {', '.join(missing)}"
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    kinds = schema.kind
    for key, value in obj.items():
        kind = kinds.get(key)
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


def _parse_line(
    raw: bytes, schema: BeaconSchema = REFERENCE_SCHEMA
) -> tuple[dict[str, Any] | None, str]:
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
    return _beacon_row(obj, schema)


def _rows_frame(
    rows: list[dict[str, Any]],
    lines: list[int] | None = None,
    schema: BeaconSchema = REFERENCE_SCHEMA,
) -> pl.DataFrame:
    """Frame rows (ts in epoch ms) as a frame of the schema's fields and `extra`,
    optionally with their `_line` (the contract's RUM frame for the reference schema)."""
    types = {f: (pl.Int64() if f == schema.ts else t) for f, t in schema.dtype.items()}
    frame = pl.DataFrame(rows, schema={**types, "extra": pl.Utf8()})
    frame = frame.with_columns(pl.col(schema.ts).cast(TIMESTAMP))
    if lines is not None:
        frame = frame.with_columns(pl.Series("_line", lines, dtype=pl.Int64))
    return frame
