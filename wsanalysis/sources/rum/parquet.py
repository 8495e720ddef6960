"""Parquet beacons (a file or a hive-partitioned folder): a lazy scan filtered at scan time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

import polars as pl

from wsanalysis import times
from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.rum.beacon import BeaconSchema, _reference_values
from wsanalysis.sources.schema import RUM_SCHEMA, TIMESTAMP
from wsanalysis.sources.telemetry import REFERENCE, Telemetry

TimeBound = datetime | date | str | int | float | None


def _bound(value: TimeBound, name: str) -> datetime | None:
    """A window bound as an aware UTC datetime: a bare number is epoch *seconds*."""
    if value is None:
        return None
    return times.as_utc(value, name)


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
    telemetry: Telemetry = REFERENCE,
) -> pl.LazyFrame:
    """A lazy scan of a Parquet file or a hive-partitioned folder, filtered at scan time.

    The time window and the variants are pushed into the scan: partitions
    (`variant=canary/`, `date=2026-11-25/`) that cannot match are not opened and
    row groups are skipped by their statistics. Columns the RUM schema does not
    know are folded into `extra`; missing ones come back as nulls. Columns are named
    as `telemetry` says (the user's beacon fields), and come back as the contract's.
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
    try:
        schema = lazy.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataError(
            f"{path} cannot be read as Parquet: {str(error).splitlines()[0]}",
            "check the file was copied whole, or re-export it",
        ) from error
    dialect = BeaconSchema.of(telemetry)
    if not dialect.plain:
        lazy = _in_contract_names(lazy, dialect)
        schema = lazy.collect_schema()
    _check_types(schema, path)
    names = schema.names()
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


def _in_contract_names(lazy: pl.LazyFrame, dialect: BeaconSchema) -> pl.LazyFrame:
    """The user's columns renamed to the contract's, the variant picked and the beacon
    types and codes translated (`BeaconSchema.conform`, before the window's filter).
    A user column that a renamed one would shadow is kept as `<name>_` (in `extra`)."""
    present = lazy.collect_schema().names()
    mapping = dialect.telemetry.variant_mapping
    if dialect.by_selectors:
        lazy = lazy.with_columns(mapping.variant_expr(present).alias("__variant"))
    renamed = {u: c for u, c in dialect.fields if c in RUM_SCHEMA and u != c and u in present}
    shadowed = {c: f"{c}_" for c in renamed.values() if c in present and c not in renamed}
    lazy = lazy.rename(shadowed).rename(renamed)
    if dialect.by_selectors:
        lazy = lazy.drop("variant", strict=False).rename({"__variant": "variant"})
    elif mapping.rename and "variant" in lazy.collect_schema().names():
        lazy = lazy.with_columns(pl.col("variant").replace(mapping.rename))
    values = _reference_values(dialect.telemetry, lazy.collect_schema().names())
    return lazy.with_columns(values) if values else lazy


def _fits(name: str, dtype: pl.DataType) -> bool:
    """Whether a Parquet column of this type can become the RUM column without a guess."""
    target = RUM_SCHEMA[name]
    if dtype == pl.Null:
        return True
    if name == "ts":
        return dtype == pl.Datetime or dtype.is_integer()
    if target == pl.Utf8:
        return dtype in (pl.Utf8, pl.Categorical, pl.Enum) or (
            name != "extra" and (dtype.is_numeric() or dtype == pl.Boolean)
        )
    if target == pl.Int64:
        return dtype.is_integer()
    if target == pl.Float64:
        return dtype.is_numeric()
    return dtype == target


def _check_types(schema: pl.Schema, path: Path) -> None:
    wrong = {n: t for n, t in schema.items() if n in RUM_SCHEMA and not _fits(n, t)}
    if wrong:
        listed = ", ".join(f"{n} is {t}, not {RUM_SCHEMA[n]}" for n, t in wrong.items())
        raise DataError(
            f"{path}: RUM column(s) of the wrong type: {listed}",
            "re-export with the RUM schema's types (ts as epoch ms or a datetime)",
        )


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
