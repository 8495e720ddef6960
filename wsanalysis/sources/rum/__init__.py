"""RUM beacons (client telemetry) from NDJSON, Parquet or a Datadog RUM events export.

Every reader returns the RUM frame of the contract (`schema.RUM_SCHEMA`): typed
columns for the beacon's known fields, `ts` as Datetime[ms, UTC], and the unknown
fields of each beacon kept as JSON text in `extra`. Broken input never aborts a load:
a bad line is counted, a few are shown with their line numbers, and all of them can
be written to a quarantine file (the original line, then the reason).

The package: `beacon` (one beacon's rules, the reference), `ndjson` (the bulk
engine), `parquet`, `datadog`, `files` (bytes and format sniffing), `writer`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import polars as pl

from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.rum.beacon import (
    EXAMPLES,
    BadLine,
    BeaconSchema,
    RumLoad,
    _beacon_row,
    _Rejects,
)
from wsanalysis.sources.rum.datadog import _read_datadog
from wsanalysis.sources.rum.files import _blocks, rum_format
from wsanalysis.sources.rum.ndjson import _read_ndjson_bytes
from wsanalysis.sources.rum.parquet import TimeBound, _window, scan_rum_parquet
from wsanalysis.sources.rum.writer import beacons_frame, write_rum
from wsanalysis.sources.schema import RUM_SCHEMA
from wsanalysis.sources.telemetry import REFERENCE, Telemetry

__all__ = [
    "EXAMPLES",
    "BadLine",
    "BeaconSchema",
    "RumLoad",
    "_beacon_row",
    "beacons_frame",
    "read_rum",
    "scan_rum_parquet",
    "write_rum",
]

Format = Literal["auto", "ndjson", "parquet", "datadog"]


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
    telemetry: Telemetry = REFERENCE,
) -> RumLoad:
    """Read RUM beacons from NDJSON (plain or gzip), Parquet or a Datadog RUM export.

    The window is [start, end) on the beacon time; `variants` keeps only those
    variants. Bad lines are counted and described in the result, and written to
    `quarantine` (each original line followed by a `# {"line": .., "reason": ..}`
    note) when a path is given; they never abort the load. `columns` keeps only those
    RUM columns (a Parquet scan then reads no others; text is parsed whole anyway).

    `telemetry` names the user's beacon fields, types, close codes and variant (a label
    with value renames, a field, or selectors evaluated on the beacons' fields): they are
    read in those names and handed back in the contract's; `v` is then not required.
    Beacons that no variant selector matches are left out and counted (`unassigned`).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"RUM input {path} does not exist",
            "pass an NDJSON(.gz) file, a Parquet file or folder, or a Datadog export",
        )
    kind = rum_format(path) if format == "auto" else format
    if kind not in ("ndjson", "parquet", "datadog"):
        raise UsageError(f"unknown RUM format {format!r}", "use auto, ndjson, parquet or datadog")
    keep = _columns(columns)
    if kind == "parquet":
        lazy = scan_rum_parquet(path, start=start, end=end, variants=variants, telemetry=telemetry)
        try:
            frame = lazy.select(keep).collect()
        except (pl.exceptions.PolarsError, OSError) as error:
            raise DataError(
                f"{path} cannot be read as RUM Parquet: {str(error).splitlines()[0]}",
                "check the file was copied whole, or re-export it with the RUM schema's types",
            ) from error
        load = RumLoad(frame=frame, source=str(path), format=kind, lines=frame.height)
        return _assigned(load, telemetry)
    predicate, _, _ = _window(start, end, variants)
    schema = BeaconSchema.of(telemetry)
    rejects = _Rejects(Path(quarantine) if quarantine is not None else None)
    unmapped: dict[str, int] = {}
    try:
        if kind == "datadog":
            files = (
                sorted(p for p in path.rglob("*") if p.suffix in (".json", ".gz"))
                if path.is_dir()
                else [path]
            )
            frame, lines, unmapped = _read_datadog(files, rejects, schema)
        else:
            frame, lines = _read_ndjson_bytes(_blocks(path), rejects, schema)
    except DataError:  # e.g. a gzip file found damaged half-way: no half a quarantine
        rejects.close()
        if rejects.path is not None:
            rejects.path.unlink(missing_ok=True)
        raise
    finally:
        rejects.close()
    if predicate is not None:
        frame = frame.filter(predicate)
    load = RumLoad(
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
    return _assigned(load, telemetry)


def _assigned(load: RumLoad, telemetry: Telemetry) -> RumLoad:
    """The load without the beacons no variant selector matched, counted in `unassigned`."""
    if not telemetry.variant_mapping.selectors or "variant" not in load.frame.columns:
        return load
    unassigned = load.frame["variant"].null_count()
    if unassigned:
        load.frame = load.frame.filter(pl.col("variant").is_not_null())
        load.unassigned = unassigned
    return load
