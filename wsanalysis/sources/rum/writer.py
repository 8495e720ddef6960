"""Writing beacons so that `read_rum` gives them back unchanged (NDJSON, gzip, Parquet)."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.rum.beacon import KNOWN, _beacon_row, _rows_frame
from wsanalysis.sources.rum.parquet import _conform
from wsanalysis.sources.schema import empty_rum


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
