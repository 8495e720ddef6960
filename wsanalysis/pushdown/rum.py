"""RUM gate inputs computed where the beacons are: DuckDB (embedded) or Spark.

One query definition for every engine: SQL built here, with the two places where the
dialects differ (a timestamp's epoch milliseconds, reading the files) named per
engine. We chose SQL over Ibis: the gates need three small aggregate shapes (counts
per bucket, selected values, connection lifetimes), the same text runs on DuckDB and
Spark SQL (and, with the same two hooks, on ClickHouse, BigQuery or Snowflake), and
Ibis would add a dependency stack (ibis, sqlglot, pyarrow versions per backend) for
no query we cannot write in 40 lines; the SQL is also what a warehouse user pastes.

What each gate gets (the same types `frames.measures` builds from a beacons frame):
- rates (`Counts`): `count(*)` per variant and bucket index, aligned on the window's
  start exactly as `measures.bucket_of` (index clipped to the last bucket): only
  buckets × variants rows leave the engine;
- quantiles (`Samples`): the field's values with their session, for the selected
  beacon type only (filter and projection pushed down); the cluster is hashed here
  with `measures.session_cluster`, so the intervals equal the polars path's;
- survival (`Durations`): closed connections' lifetimes, plus open sockets without a
  close (an anti-join in the engine) censored at the window's end;
- the sample-ratio check: distinct sessions per variant, as one row per session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import polars as pl

from wsanalysis.errors import DataError, UsageError
from wsanalysis.frames import measures
from wsanalysis.frames.selection import MetricSource, RumFilter
from wsanalysis.sources.schema import TIMESTAMP

Engine = Literal["polars", "duckdb", "spark"]
ENGINES: tuple[str, ...] = ("polars", "duckdb", "spark")


class SqlEngine(Protocol):
    """Runs SQL over a relation named `beacons` and returns polars frames."""

    name: str

    def query(self, sql: str) -> pl.DataFrame: ...

    def ts_ms(self) -> str: ...

    def columns(self) -> set[str]: ...


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _where(spec: RumFilter, columns: set[str]) -> str:
    parts = [f"type = {_literal(spec.type)}"]
    for name, value in spec.where.items():
        parts.append(f"{name} = {_literal(value)}" if name in columns else "FALSE")
    return " AND ".join(parts)


@dataclass
class RumAggregates:
    """RUM gate inputs from an engine, over the window the judge names."""

    engine: SqlEngine
    start_ms: int = 0
    end_ms: int = 0
    variants: tuple[str, ...] = ("canary", "control")
    queries: list[str] = field(default_factory=list)

    def at(self, window: measures.Window) -> RumAggregates:
        start, end = (_ms(t) for t in (window.start, window.end))
        return RumAggregates(self.engine, start, end, self.variants, self.queries)

    def _run(self, sql: str) -> pl.DataFrame:
        self.queries.append(sql)
        return self.engine.query(sql)

    def _in_window(self) -> str:
        ts = self.engine.ts_ms()
        return f"{ts} BETWEEN {self.start_ms} AND {self.end_ms}"

    def counts(self, spec: RumFilter, bucket: timedelta) -> pl.DataFrame:
        """bucket, variant, n: beacons matching `spec` per bucket (as `measures`)."""
        size = int(bucket.total_seconds() * 1000)
        last = max(1, math.ceil((self.end_ms - self.start_ms) / size)) - 1
        ts = self.engine.ts_ms()
        index = f"LEAST(GREATEST(FLOOR(({ts} - {self.start_ms}) / {size}), 0), {last})"
        sql = (
            f"SELECT CAST({index} AS BIGINT) AS idx, variant, COUNT(*) AS n FROM beacons "
            f"WHERE {_where(spec, self.engine.columns())} AND {self._in_window()} "
            "GROUP BY 1, 2"
        )
        frame = self._run(sql)
        start = pl.lit(_at(self.start_ms)).cast(TIMESTAMP)
        return frame.select(
            (start + pl.duration(milliseconds=pl.col("idx").cast(pl.Int64) * size))
            .cast(TIMESTAMP)
            .alias("bucket"),
            pl.col("variant").cast(pl.Utf8),
            pl.col("n").cast(pl.Float64),
        )

    def samples(self, spec: RumFilter) -> measures.Samples | None:
        if spec.column is None or spec.column not in self.engine.columns():
            return None
        sql = (
            f"SELECT {self.engine.ts_ms()} AS ts_ms, variant, session_id, "
            f"CAST({spec.column} AS DOUBLE) AS value FROM beacons "
            f"WHERE {_where(spec, self.engine.columns())} AND {spec.column} IS NOT NULL "
            f"AND {self._in_window()}"
        )
        frame = self._run(sql).with_columns(
            pl.col("ts_ms").cast(pl.Int64).cast(TIMESTAMP).alias("ts"),
            measures.session_cluster().alias("cluster"),
            (pl.col("value") * spec.scale).alias("value"),
        )
        parts = {
            name: frame.filter(pl.col("variant") == name).select("ts", "cluster", "value")
            for name in self.variants
        }
        return measures.Samples(parts) if any(p.height for p in parts.values()) else None

    def durations(self, spec: RumFilter) -> measures.Durations | None:
        columns = self.engine.columns()
        if spec.column is None or spec.column not in columns or "socket_id" not in columns:
            return None
        where, window, ts = _where(spec, columns), self._in_window(), self.engine.ts_ms()
        sql = (
            f"WITH closed AS (SELECT socket_id FROM beacons WHERE {where} AND {window}), "
            f"opened AS (SELECT variant, socket_id, {ts} AS ts_ms FROM beacons "
            f"WHERE type = 'ws.open' AND socket_id IS NOT NULL AND {window}) "
            f"SELECT variant, CAST({spec.column} AS DOUBLE) * {spec.scale!r} AS duration, "
            f"TRUE AS observed FROM beacons WHERE {where} AND {spec.column} IS NOT NULL "
            f"AND {window} "
            "UNION ALL "
            f"SELECT variant, ({self.end_ms} - ts_ms) / 1000.0 AS duration, FALSE AS observed "
            "FROM opened WHERE NOT EXISTS "
            "(SELECT 1 FROM closed WHERE closed.socket_id = opened.socket_id)"
        )
        frame = self._run(sql).select(
            pl.col("variant").cast(pl.Utf8),
            pl.col("duration").cast(pl.Float64),
            pl.col("observed").cast(pl.Boolean),
        )
        frame = frame.filter(pl.col("duration") >= 0)
        return measures.Durations(frame) if frame.height else None

    def sessions(self) -> pl.DataFrame:
        """One row per (variant, session): what the sample-ratio check counts."""
        sql = (
            "SELECT variant, session_id, MIN(" + self.engine.ts_ms() + ") AS ts_ms "
            f"FROM beacons WHERE {self._in_window()} GROUP BY 1, 2"
        )
        frame = self._run(sql)
        return frame.select(
            pl.col("ts_ms").cast(pl.Int64).cast(TIMESTAMP).alias("ts"),
            pl.col("variant").cast(pl.Utf8),
            pl.col("session_id").cast(pl.Utf8),
        )

    def span(self) -> tuple[int, int] | None:
        ts = self.engine.ts_ms()
        frame = self.engine.query(f"SELECT MIN({ts}) AS lo, MAX({ts}) AS hi FROM beacons")
        lo, hi = frame.row(0)
        return None if lo is None else (int(lo), int(hi))


def _at(ms: int) -> datetime:
    return pl.Series([ms]).cast(pl.Int64).cast(TIMESTAMP).item()


def _ms(moment: datetime) -> int:
    return int(pl.Series([moment]).cast(TIMESTAMP).cast(pl.Int64).item())


class EngineMeasures:
    """`frames.measures` for the judge, with RUM figures from an engine.

    Same names and arguments as the functions of `frames.measures`, so the judge asks
    it as it asks that module; server series still come from the samples frame.
    """

    RATE_BUCKET = measures.RATE_BUCKET

    def __init__(self, aggregates: RumAggregates) -> None:
        self.aggregates = aggregates

    def counts(
        self,
        events: MetricSource,
        exposure: MetricSource,
        samples: pl.DataFrame,
        beacons: pl.DataFrame | None,
        window: measures.Window,
        bucket: timedelta = measures.RATE_BUCKET,
        prefer: measures.Source | None = None,
        variants: tuple[str, ...] = ("canary", "control"),
    ) -> measures.Counts | None:
        def server() -> measures.Counts | None:
            return measures.counts(events, exposure, samples, None, window, bucket, None, variants)

        def rum() -> measures.Counts | None:
            if events.rum is None or exposure.rum is None:
                return None
            at = self.aggregates.at(window)
            num, den = at.counts(events.rum, bucket), at.counts(exposure.rum, bucket)
            return _counts_frame(num, den, window, bucket, variants)

        for source in (server, rum) if prefer != "rum" else (rum, server):
            found = source()
            if found is not None:
                return found
        return None

    def rum_samples(
        self, spec: RumFilter, beacons: pl.DataFrame | None, variants: tuple[str, ...] = ()
    ) -> measures.Samples | None:
        return self.aggregates.samples(spec)

    def connection_durations(
        self, spec: RumFilter, beacons: pl.DataFrame | None, window: measures.Window
    ) -> measures.Durations | None:
        return self.aggregates.at(window).durations(spec)

    def histogram_counts(
        self, family: str, samples: pl.DataFrame
    ) -> measures.HistogramCounts | None:
        return measures.histogram_counts(family, samples)


def _counts_frame(
    num: pl.DataFrame,
    den: pl.DataFrame,
    window: measures.Window,
    bucket: timedelta,
    variants: tuple[str, ...],
) -> measures.Counts | None:
    """As `measures.counts` joins its per-bucket counts: every bucket, zeros filled."""
    buckets = max(1, math.ceil(window.duration / bucket))
    starts = [window.start + i * bucket for i in range(buckets)]
    grid = pl.DataFrame({"bucket": starts}).with_columns(pl.col("bucket").cast(TIMESTAMP))
    grid = grid.join(pl.DataFrame({"variant": list(variants)}), how="cross")
    frame = (
        grid.join(num.rename({"n": "events"}), on=["bucket", "variant"], how="left")
        .join(den.rename({"n": "exposure"}), on=["bucket", "variant"], how="left")
        .with_columns(pl.col("events", "exposure").fill_null(0.0))
        .sort("variant", "bucket")
    )
    exposed = frame.group_by("variant").agg(pl.col("exposure").sum())
    if exposed.height == len(variants) and (exposed["exposure"] > 0).all():
        return measures.Counts(frame, "rum", bucket, window)
    return None


def rum_files(path: Path) -> tuple[str, list[str]]:
    """('parquet' | 'ndjson', files): a Parquet file or (partitioned) folder, or NDJSON[.gz]."""
    if path.is_dir():
        parquet = sorted(str(p) for p in path.rglob("*.parquet"))
        if parquet:
            return "parquet", parquet
        for name in ("rum.parquet", "rum.ndjson.gz", "rum.ndjson"):
            if (path / name).exists():
                return rum_files(path / name)
        raise DataError(f"no RUM beacons in {path}", "give a Parquet folder or an NDJSON file")
    if path.suffix == ".parquet":
        return "parquet", [str(path)]
    if path.name.endswith((".ndjson", ".ndjson.gz", ".jsonl", ".json", ".json.gz", ".gz")):
        return "ndjson", [str(path)]
    raise UsageError(f"cannot tell the format of {path}", "use .parquet or .ndjson[.gz]")


def open_engine(engine: Engine, path: Path) -> SqlEngine:
    if engine == "duckdb":
        from wsanalysis.pushdown.engines import DuckDBEngine

        return DuckDBEngine(path)
    if engine == "spark":
        from wsanalysis.pushdown.engines import SparkEngine

        return SparkEngine(path)
    raise UsageError(f"unknown engine {engine!r}", f"choose one of {', '.join(ENGINES)}")


@dataclass
class EngineInput:
    """What the judge takes from an engine: its measures, one row per session, the span."""

    measures: EngineMeasures
    sessions: pl.DataFrame  # ts (first beacon), variant, session_id
    span: tuple[datetime, datetime] | None


def engine_input(
    engine: Engine, path: str | Path, start: datetime | None, end: datetime | None
) -> EngineInput:
    """Open `path` on `engine`; the window is narrowed to [start, end] when given."""
    sql_engine = open_engine(engine, Path(path))
    aggregates = RumAggregates(sql_engine)
    span = aggregates.span()
    if span is None:
        return EngineInput(EngineMeasures(aggregates), pl.DataFrame(), None)
    lo = max(span[0], _ms(start)) if start else span[0]
    hi = min(span[1], _ms(end)) if end else span[1]
    aggregates = RumAggregates(sql_engine, lo, hi)
    return EngineInput(EngineMeasures(aggregates), aggregates.sessions(), (_at(lo), _at(hi)))


def with_engine_window(
    window: measures.Window | None, samples: pl.DataFrame, pushed: EngineInput
) -> measures.Window | None:
    """The judge's window: as given, else the union of the metrics' and the beacons' spans."""
    if window is not None or pushed.span is None:
        return window
    own = measures.Window.of(samples, None)
    lo, hi = pushed.span
    if own is None:
        return measures.Window(lo, hi)
    return measures.Window(min(own.start, lo), max(own.end, hi))
