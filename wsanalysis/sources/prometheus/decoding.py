"""Matrix answers decoded in bulk: label sets through the JSON decoder, sample values as
one text per answer split and cast by polars, never one Python object per sample."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl


@dataclass
class _Matrix:
    """One matrix answer, decoded: each series' labels and its values as JSON text.

    `values[i]` is the inside of series i's `values` array (`[t,"v"],[t,"v"]`): the
    numbers are parsed later, all at once, by polars rather than one by one.
    """

    labels: list[dict[str, str]]
    values: list[str]
    warnings: list[str]
    skipped_histograms: int = 0


_DECODER = json.JSONDecoder()
_MATRIX_HEAD = '{"status":"success","data":{"resultType":"matrix","result":['


def decode_matrix(text: str) -> _Matrix | None:
    """Decode a successful matrix answer; None when it is anything else.

    Fast path for Prometheus's own compact encoding: labels go through the JSON
    decoder (they may hold any text), values are cut out as text. Anything that does
    not look exactly like that takes the plain `json.loads` path.
    """
    if not text.startswith(_MATRIX_HEAD):
        return _decode_matrix_slowly(text)
    labels, values, i = [], [], len(_MATRIX_HEAD)
    while text.startswith('{"metric":', i):
        metric, i = _DECODER.raw_decode(text, i + len('{"metric":'))
        if not text.startswith(',"values":[', i):
            return _decode_matrix_slowly(text)
        start = i + len(',"values":[')
        end = text.find("]]", start)
        if text.startswith("]}", start):  # no samples
            end, segment = start - 1, ""
        elif end < 0:
            return _decode_matrix_slowly(text)
        else:
            segment = text[start : end + 1]
        i = end + 1
        if not text.startswith("]}", i):
            return _decode_matrix_slowly(text)
        i += 2
        labels.append(metric)
        values.append(segment)
        if text.startswith(",", i):
            i += 1
    if not text.startswith("]}", i):
        return _decode_matrix_slowly(text)
    try:
        tail = json.loads('{"_":0' + text[i + 2 :])
    except ValueError:
        return _decode_matrix_slowly(text)
    return _Matrix(labels, values, [*tail.get("warnings", []), *tail.get("infos", [])])


def _decode_matrix_slowly(text: str) -> _Matrix | None:
    body = _json_or_none(text)
    if not body or body.get("status") != "success":
        return None
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        return None
    labels, values, histograms = [], [], 0
    for series in data.get("result") or []:
        histograms += bool(series.get("histograms"))
        labels.append(series.get("metric") or {})
        text = json.dumps(series.get("values") or [], separators=(",", ":"))
        values.append(text[1:-1])
    warnings_ = [*(body.get("warnings") or []), *(body.get("infos") or [])]
    return _Matrix(labels, values, warnings_, histograms)


_NOT_NUMBERS = str.maketrans("", "", '[]"')


@dataclass
class _Series:
    """Raw samples of many series gathered chunk by chunk, then made into one frame."""

    labels: list[dict[str, str]] = field(default_factory=list)
    index: dict[tuple[tuple[str, str], ...], int] = field(default_factory=dict)
    chunks: list[pl.DataFrame] = field(default_factory=list)

    def add(self, matrix: _Matrix, lower_exclusive_ms: int) -> None:
        """Add one answer's samples, keeping only those after `lower_exclusive_ms`."""
        ids, lengths, segments = [], [], []
        for metric, segment in zip(matrix.labels, matrix.values, strict=True):
            if not segment:
                continue
            key = tuple(sorted(metric.items()))
            if key not in self.index:
                self.index[key] = len(self.labels)
                self.labels.append(metric)
            ids.append(self.index[key])
            lengths.append(segment.count("],[") + 1)
            segments.append(segment)
        if not ids:
            return
        text = ",".join(segments).translate(_NOT_NUMBERS)  # t,v,t,v,...
        numbers = pl.Series([text]).str.split(",").explode()
        chunk = pl.DataFrame(
            {
                "series": np.repeat(np.asarray(ids, dtype=np.int64), lengths),
                "timestamp_ms": (numbers.gather_every(2).cast(pl.Float64) * 1000).round(),
                "value": numbers.gather_every(2, offset=1).cast(pl.Float64),
            }
        ).with_columns(pl.col("timestamp_ms").cast(pl.Int64))
        self.chunks.append(chunk.filter(pl.col("timestamp_ms") > lower_exclusive_ms))

    def samples(self, first_id: int = 0) -> pl.DataFrame:
        """series (id from `first_id`), timestamp_ms, value: each sample once."""
        if not self.chunks:
            schema = {"series": pl.Int64, "timestamp_ms": pl.Int64, "value": pl.Float64}
            return pl.DataFrame(schema=schema)
        return pl.concat(self.chunks).with_columns(pl.col("series") + first_id)

    def table(self, first_id: int = 0) -> pl.DataFrame:
        """One row per series: its id and one Utf8 column per label (`__name__` included)."""
        names = dict.fromkeys(name for labels in self.labels for name in labels)
        table = pl.DataFrame(self.labels, schema=dict.fromkeys(names, pl.Utf8))
        return table.with_columns(series=pl.int_range(len(self.labels), dtype=pl.Int64) + first_id)

    def frame(self) -> pl.DataFrame:
        """timestamp_ms, value and the series' labels on every row."""
        if not self.chunks:
            return pl.DataFrame()
        samples = self.samples()
        labels = self.table().drop("series")[samples["series"].to_numpy()]
        return pl.concat([samples.drop("series"), labels], how="horizontal")


def _json_or_none(content: bytes | str) -> dict[str, Any] | None:
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
