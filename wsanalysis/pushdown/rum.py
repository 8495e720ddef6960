"""RUM gate inputs computed where the beacons are: DuckDB (embedded) or Spark.

One query definition for every engine: SQL built here, with the few places where the
dialects differ (a timestamp's epoch milliseconds, the session hash, integer division,
keeping a result in the engine, reading the files) named per engine (`SqlEngine`). We
chose SQL over Ibis: the gates need a few small aggregate shapes (counts per bucket,
a histogram and a window of values, per-cluster counts, connection lifetimes), the
same text runs on DuckDB and Spark SQL (and, with the same hooks, on ClickHouse,
BigQuery or Snowflake), and
Ibis would add a dependency stack (ibis, sqlglot, pyarrow versions per backend) for
no query we cannot write in 40 lines; the SQL is also what a warehouse user pastes.

What each gate gets (the same types `frames.measures` builds from a beacons frame):
- rates (`Counts`): `count(*)` per type, variant and bucket index, aligned on the
  window's start exactly as `measures.bucket_of` (index clipped to the last bucket),
  one query shared by the rate gates: only types × buckets × variants rows leave;
- quantiles (`Samples`): up to `BOOTSTRAP_MAX_SAMPLES` values in all (where the
  statistic bootstraps them, so the data are small by definition) the values with
  their session, hashed here with `measures.session_cluster` (the polars path's
  intervals exactly); above it, Woodruff's sufficient statistics per variant
  (`EngineValues`): N, a window of ranks around the quantile, and per session bucket
  (the engine's hash into the same 2^20 buckets) its count and count above the
  estimate: rows bounded by clusters plus the rank window, not by beacons;
- survival (`Durations`): counts per (variant, duration rounded up to the second,
  closed or censored), closed connections' lifetimes plus open sockets without a
  close (an anti-join in the engine) censored at the window's end; Kaplan–Meier
  takes the counts as weights;
- the sample-ratio check: distinct sessions per variant, counted in the engine.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from wsanalysis.frames import measures
from wsanalysis.frames.selection import MetricSource, RumFilter
from wsanalysis.pushdown.engines import Engine, open_engine
from wsanalysis.sources.schema import OPEN, TIMESTAMP
from wsanalysis.stats.quantiles import BOOTSTRAP_MAX_SAMPLES

#: Durations leave the engine rounded up to this many seconds (see `durations`).
DURATION_RESOLUTION = 1.0


class SqlEngine(Protocol):
    """Runs SQL over a relation named `beacons` and returns polars frames."""

    name: str

    def query(self, sql: str) -> pl.DataFrame: ...

    def ts_ms(self, column: str = "ts") -> str: ...

    def stage(self, sql: str) -> str:
        """Keep a query's result in the engine (spilling past memory); its relation name."""
        ...

    def int_div(self, a: str, b: int) -> str:
        """SQL: integer division of a BIGINT by a positive constant (toward zero)."""
        ...

    def columns(self) -> set[str]: ...

    def cluster(self) -> str:
        """SQL: the session's hash bucket, one of 2^SESSION_BUCKET_BITS (the engine's hash)."""
        ...


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _double(value: float) -> str:
    """A double literal both dialects read as DOUBLE, exactly (17 significant digits)."""
    return f"{float(value):.16e}"


def _where(spec: RumFilter, columns: set[str]) -> str:
    parts = [f"type = {_literal(spec.type)}"]
    for name, value in spec.where.items():
        parts.append(f"{name} = {_literal(value)}" if name in columns else "FALSE")
    return " AND ".join(parts)


@dataclass
class _Shared:
    """Answers every window's aggregates reuse: counts of all types per bucket."""

    counts: dict[tuple[int, int, int], pl.DataFrame] = field(default_factory=dict)
    span: tuple[int, int] | None = None  # the beacons' first and last timestamp (ms)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class RumAggregates:
    """RUM gate inputs from an engine, over the window the judge names."""

    engine: SqlEngine
    start_ms: int = 0
    end_ms: int = 0
    variants: tuple[str, ...] = ("canary", "control")
    queries: list[str] = field(default_factory=list)
    shared: _Shared = field(default_factory=lambda: _Shared())

    def at(self, window: measures.Window) -> RumAggregates:
        start, end = (_ms(t) for t in (window.start, window.end))
        return RumAggregates(self.engine, start, end, self.variants, self.queries, self.shared)

    def _run(self, sql: str) -> pl.DataFrame:
        self.queries.append(sql)
        return self.engine.query(sql)

    def _in_window(self) -> str:
        span = self.shared.span
        if span is not None and self.start_ms <= span[0] and span[1] <= self.end_ms:
            return "TRUE"  # the window holds every beacon: no timestamp to convert per row
        ts = self.engine.ts_ms()
        return f"{ts} BETWEEN {self.start_ms} AND {self.end_ms}"

    def counts(self, spec: RumFilter, bucket: timedelta) -> pl.DataFrame:
        """bucket, variant, n: beacons matching `spec` per bucket (as `measures`).

        A filter on the beacon type alone (most rates: events and exposure) is read
        from one query per window and bucket size that counts every type at once, so
        the gates' rates share one scan of the beacons."""
        size = int(bucket.total_seconds() * 1000)
        last = max(1, math.ceil((self.end_ms - self.start_ms) / size)) - 1
        ts = self.engine.ts_ms()
        # beacons are grouped by their raw bucket number and the few groups clipped
        # afterwards (toward zero is floor here: anything before the start clips to 0,
        # the window's last millisecond to the last bucket): no clipping per beacon
        raw = self.engine.int_div(f"{ts} - {self.start_ms}", size)
        index = f"CAST(LEAST(GREATEST(raw, 0), {last}) AS BIGINT)"
        if spec.where:
            sql = (
                f"SELECT {index} AS idx, variant, CAST(SUM(n) AS BIGINT) AS n FROM ("
                f"SELECT {raw} AS raw, variant, COUNT(*) AS n FROM beacons "
                f"WHERE {_where(spec, self.engine.columns())} AND {self._in_window()} "
                "GROUP BY 1, 2) AS buckets GROUP BY 1, 2"
            )
            frame = self._run(sql)
        else:
            key = (self.start_ms, self.end_ms, size)
            with self.shared.lock:
                if key not in self.shared.counts:
                    self.shared.counts[key] = self._run(
                        f"SELECT type, {index} AS idx, variant, CAST(SUM(n) AS BIGINT) AS n "
                        f"FROM (SELECT type, {raw} AS raw, variant, COUNT(*) AS n FROM beacons "
                        f"WHERE {self._in_window()} GROUP BY 1, 2, 3) AS buckets GROUP BY 1, 2, 3"
                    )
            every = self.shared.counts[key]
            frame = every.filter(pl.col("type") == spec.type).drop("type")
        start = pl.lit(_at(self.start_ms)).cast(TIMESTAMP)
        return frame.select(
            (start + pl.duration(milliseconds=pl.col("idx").cast(pl.Int64) * size))
            .cast(TIMESTAMP)
            .alias("bucket"),
            pl.col("variant").cast(pl.Utf8),
            pl.col("n").cast(pl.Float64),
        )

    def samples(self, spec: RumFilter) -> measures.Samples | None:
        """Rows when the statistic would bootstrap them (at most `BOOTSTRAP_MAX_SAMPLES`
        in all: small by definition, so the decision is the polars path's), else each
        variant's values left in the engine as `EngineValues` for the Woodruff interval."""
        if spec.column is None or spec.column not in self.engine.columns():
            return None
        selected = (
            f"{_where(spec, self.engine.columns())} AND {spec.column} IS NOT NULL "
            f"AND {self._in_window()}"
        )
        value = f"CAST({spec.column} AS DOUBLE) * {_double(spec.scale)}"
        # each variant's selection is read once from the beacons and kept in the engine
        # (clusters hashed there; a folder partitioned by variant is read only where the
        # variant is); its size, and the interval's few passes, then read only it
        staged = {
            name: self.engine.stage(
                f"SELECT {value} AS value, {self.engine.cluster()} AS cluster FROM beacons "
                f"WHERE variant = {_literal(name)} AND {selected}"
            )
            for name in self.variants
        }
        found = self._run(
            " UNION ALL ".join(
                f"SELECT {_literal(name)} AS variant, COUNT(*) AS n FROM {relation}"
                for name, relation in staged.items()
            )
        )
        sizes = {str(v): int(n) for v, n in found.iter_rows()}
        if not any(sizes.get(name, 0) for name in self.variants):
            return None
        # the statistic's switch (`quantiles.quantile_difference`) counts these variants
        if sum(sizes.get(name, 0) for name in self.variants) > BOOTSTRAP_MAX_SAMPLES:
            ranked = {
                name: EngineValues(self, staged[name], n)
                for name in self.variants
                if (n := sizes.get(name, 0))
            }
            empty = pl.DataFrame(schema={"ts": TIMESTAMP, "cluster": pl.Int64, "value": pl.Float64})
            return measures.Samples({name: empty for name in self.variants}, ranked=ranked)
        sql = (
            f"SELECT {self.engine.ts_ms()} AS ts_ms, variant, session_id, {value} AS value "
            f"FROM beacons WHERE {selected}"
        )
        frame = self._run(sql).with_columns(
            pl.col("ts_ms").cast(pl.Int64).cast(TIMESTAMP).alias("ts"),
            measures.session_cluster().alias("cluster"),
        )
        parts = {
            name: frame.filter(pl.col("variant") == name).select("ts", "cluster", "value")
            for name in self.variants
        }
        return measures.Samples(parts)

    def durations(self, spec: RumFilter) -> measures.Durations | None:
        """Connections per (variant, whole second, closed or still open): a duration is
        rounded up to its second (`DURATION_RESOLUTION`), so for every whole second t
        "lasted at most t" is unchanged and the gates' bounds (whole seconds) read the
        same survival; rows are bounded by the window's seconds, not by connections."""
        columns = self.engine.columns()
        if spec.column is None or spec.column not in columns or "socket_id" not in columns:
            return None
        where, window, ts = _where(spec, columns), self._in_window(), self.engine.ts_ms()
        step = _double(DURATION_RESOLUTION)
        sql = (
            f"WITH closed AS (SELECT socket_id FROM beacons WHERE {where} AND {window}), "
            f"opened AS (SELECT variant, socket_id, {ts} AS ts_ms FROM beacons "
            f"WHERE type = '{OPEN}' AND socket_id IS NOT NULL AND {window}), "
            f"lifetimes AS (SELECT variant, CAST({spec.column} AS DOUBLE) * {_double(spec.scale)} "
            f"AS duration, TRUE AS observed, {ts} AS ts_ms FROM beacons WHERE {where} "
            f"AND {spec.column} IS NOT NULL AND {window} "
            "UNION ALL "
            f"SELECT variant, ({self.end_ms} - ts_ms) / 1000.0 AS duration, FALSE AS observed, "
            f"{self.end_ms} AS ts_ms FROM opened WHERE NOT EXISTS "
            "(SELECT 1 FROM closed WHERE closed.socket_id = opened.socket_id)) "
            f"SELECT variant, CEIL(duration / {step}) * {step} AS duration, observed, "
            # the age at which a connection opened before the window came under watch (left
            # truncation; 0 for one opened in it), floored: "entered before t" is unchanged
            # for every whole second t, as "lasted at most t" is for the rounded duration
            f"FLOOR(GREATEST(0.0, ({self.start_ms} - ts_ms) / 1000.0 + duration) / {step}) "
            f"* {step} AS entry, "
            "COUNT(*) AS weight FROM lifetimes WHERE duration >= 0 GROUP BY 1, 2, 3, 4"
        )
        frame = self._run(sql).select(
            pl.col("variant").cast(pl.Utf8),
            pl.col("duration").cast(pl.Float64),
            pl.col("observed").cast(pl.Boolean),
            pl.col("weight").cast(pl.Int64),
            pl.min_horizontal(pl.col("entry").cast(pl.Float64), pl.col("duration")).alias("entry"),
        )
        return measures.Durations(frame.sort("variant", "duration")) if frame.height else None

    def sessions_per_variant(self, variants: tuple[str, ...]) -> dict[str, int]:
        """Distinct sessions per variant, counted in the engine (exact).

        One DISTINCT per named variant: the hash table is keyed on the session alone
        (a quarter faster than on (variant, session) at 10 M beacons), and a folder
        partitioned by variant is read only where that variant is."""
        if not variants:
            return {}
        sql = " UNION ALL ".join(
            f"SELECT {_literal(name)} AS variant, COUNT(*) AS n FROM (SELECT DISTINCT "
            f"session_id FROM beacons WHERE variant = {_literal(name)} AND {self._in_window()} "
            f"AND session_id IS NOT NULL) AS sessions_{i}"
            for i, name in enumerate(variants)
        )
        found = {str(v): int(n) for v, n in self._run(sql).iter_rows()}
        return {name: found[name] for name in variants if found.get(name)}

    def span(self) -> tuple[int, int] | None:
        footers = getattr(self.engine, "span_ms", None)  # Parquet statistics: no scan
        found = footers() if footers else None
        if found is None:
            lo, hi = self.engine.ts_ms("MIN(ts)"), self.engine.ts_ms("MAX(ts)")
            frame = self.engine.query(f"SELECT {lo} AS lo, {hi} AS hi FROM beacons")
            lo, hi = frame.row(0)
            found = None if lo is None else (int(lo), int(hi))
        self.shared.span = found
        return found


@dataclass
class EngineValues:
    """One variant's selected values, left in the engine: `stats.quantiles.RankedValues`.

    What leaves the engine: N; a window of ranks around the quantile, found by a
    bracketing pass (a histogram of log(value) in 0.5% steps: cumulative counts name
    the bins holding the window's first and last ranks and how many values lie below,
    so the window's values are fetched once and the order statistics are exact); and
    per engine-hashed session bucket its values and values above the estimate, pooled
    by that pair (so at most clusters rows, in practice a few hundred).
    """

    aggregates: RumAggregates
    relation: str  # the variant's staged selection: value, cluster
    n: int
    _histogram: tuple[np.ndarray, np.ndarray] | None = None

    def count(self) -> int:
        return self.n

    def _query(self, select: str, condition: str = "TRUE", group: str = "") -> pl.DataFrame:
        return self.aggregates._run(
            f"SELECT {select} FROM {self.relation} WHERE {condition}"
            + (f" GROUP BY {group}" if group else "")
        )

    def _bins(self) -> tuple[np.ndarray, np.ndarray]:
        """(bin, values up to and including it): the bracketing pass, a histogram of
        log(value) in steps of 1/`LOG_BINS` (relative width 0.5%); non-positive values
        share the lowest bin."""
        if self._histogram is None:
            frame = self._query(f"{_log_bin()} AS bin, COUNT(*) AS n", group="1")
            frame = frame.with_columns(pl.col("bin").cast(pl.Float64).fill_null(-math.inf))
            frame = frame.sort("bin")
            self._histogram = (frame["bin"].to_numpy(), np.cumsum(frame["n"].to_numpy()))
        return self._histogram

    def ranked(self, first: int, last: int) -> np.ndarray:
        bins, upto = self._bins()
        lo, hi = (int(np.searchsorted(upto, rank, side="right")) for rank in (first, last))
        below = int(upto[lo - 1]) if lo > 0 else 0
        inside = f"{_log_bin()} <= {_double(bins[hi])}" if math.isfinite(bins[hi]) else "FALSE"
        if math.isfinite(bins[lo]):
            inside = f"{_log_bin()} >= {_double(bins[lo])} AND {inside}"
        else:
            inside = f"(value <= 0 OR {inside})"
        values = np.sort(self._query("value", inside)["value"].to_numpy())
        return values[first - below : last - below + 1]

    def cluster_counts(self, estimate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sql = (
            "SELECT n_s, above_s, COUNT(*) AS clusters FROM ("
            "SELECT cluster, COUNT(*) AS n_s, "
            f"SUM(CASE WHEN value > {_double(estimate)} THEN 1 ELSE 0 END) AS above_s "
            f"FROM {self.relation} GROUP BY 1) GROUP BY 1, 2"
        )
        frame = self.aggregates._run(sql)
        return (
            frame["n_s"].cast(pl.Float64).to_numpy(),
            frame["above_s"].cast(pl.Float64).to_numpy(),
            frame["clusters"].cast(pl.Float64).to_numpy(),
        )


#: bins per unit of log(value) in the bracketing histogram (`EngineValues._bins`)
LOG_BINS = 200


def _log_bin() -> str:
    """SQL: the value's bin, NULL for non-positive values (both dialects)."""
    return f"CASE WHEN value > 0 THEN FLOOR(LN(value) * {LOG_BINS}) END"


def _at(ms: int) -> datetime:
    return pl.Series([ms]).cast(pl.Int64).cast(TIMESTAMP).item()


def _ms(moment: datetime) -> int:
    return int(pl.Series([moment]).cast(TIMESTAMP).cast(pl.Int64).item())


class EngineMeasures:
    """`frames.measures` for the judge, with RUM figures from an engine.

    Same names and arguments as the functions of `frames.measures`, so the judge asks
    it as it asks that module; server series still come from the samples frame.
    """

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

    def sessions_per_variant(
        self, beacons: pl.DataFrame | None, variants: tuple[str, ...]
    ) -> dict[str, int]:
        """What the sample-ratio check counts, as `measures.sessions_per_variant`."""
        return self.aggregates.sessions_per_variant(variants)


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


@dataclass
class EngineInput:
    """What the judge takes from an engine: its measures (sessions per variant included)
    and the beacons' span."""

    measures: EngineMeasures
    span: tuple[datetime, datetime] | None


def engine_input(
    engine: Engine, path: str | Path, start: datetime | None, end: datetime | None
) -> EngineInput:
    """Open `path` on `engine`; the window is narrowed to [start, end] when given."""
    sql_engine = open_engine(engine, Path(path))
    aggregates = RumAggregates(sql_engine)
    span = aggregates.span()
    if span is None:
        return EngineInput(EngineMeasures(aggregates), None)
    lo = max(span[0], _ms(start)) if start else span[0]
    hi = min(span[1], _ms(end)) if end else span[1]
    aggregates = RumAggregates(sql_engine, lo, hi, shared=aggregates.shared)
    return EngineInput(EngineMeasures(aggregates), (_at(lo), _at(hi)))


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
