"""The engines RUM push-down runs on: DuckDB (embedded, out-of-core) and Spark.

Each exposes the beacons as a relation named `beacons` and says how to get a
timestamp's epoch milliseconds (`ts` is epoch ms in NDJSON, a timestamp in Parquet).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Literal

import polars as pl

from wsanalysis.errors import UsageError
from wsanalysis.frames.measures import SESSION_BUCKET_BITS
from wsanalysis.sources.rum.files import rum_files
from wsanalysis.sources.schema import RUM_SCHEMA

Engine = Literal["polars", "duckdb", "spark"]
ENGINES: tuple[str, ...] = ("polars", "duckdb", "spark")

#: The beacon fields the gates can read, typed as the RUM contract types them (`ts` is
#: epoch ms in NDJSON); other fields are not read.
_JSON_COLUMNS = {
    name: {pl.Utf8: "VARCHAR", pl.Int64: "BIGINT", pl.Float64: "DOUBLE", pl.Boolean: "BOOLEAN"}[
        type(dtype) if not isinstance(dtype, pl.Datetime) else pl.Int64
    ]
    for name, dtype in RUM_SCHEMA.items()
    if name != "extra"
}

#: DuckDB spills to disk beyond this: files larger than memory still aggregate.
DUCKDB_MEMORY_LIMIT = "2GB"


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, path: Path, memory_limit: str = DUCKDB_MEMORY_LIMIT) -> None:
        try:
            import duckdb
        except ImportError:
            raise UsageError(
                "the duckdb engine needs the duckdb package", "pip install duckdb"
            ) from None
        kind, files = engine_files(Path(path), self.name)
        self._spill = tempfile.TemporaryDirectory(prefix="wsanalysis-duckdb-")
        self.connection = duckdb.connect(
            config={"memory_limit": memory_limit, "temp_directory": self._spill.name}
        )
        listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
        self._parquet = listed if kind == "parquet" else None
        if kind == "parquet":  # scanned per query: only the columns and row groups it needs
            source = f"read_parquet({listed}, hive_partitioning = true, union_by_name = true)"
            self.connection.execute(f"CREATE VIEW beacons AS SELECT * FROM {source}")
        else:  # text is parsed once, into a columnar table that spills to disk past the limit
            columns = ", ".join(
                f"'{name}': '{sql_type}'" for name, sql_type in _JSON_COLUMNS.items()
            )
            source = (
                f"read_json({listed}, format = 'newline_delimited', ignore_errors = true, "
                f"columns = {{{columns}}})"
            )
            self.connection.execute(f"CREATE TABLE beacons AS SELECT * FROM {source}")
        described = self.connection.execute("DESCRIBE beacons").fetchall()
        self._types = {row[0]: str(row[1]).upper() for row in described}
        self._lock = threading.Lock()  # one DuckDB connection: one query at a time
        self._staged = 0
        self._millis = self._parquet is not None and self._ts_in_millis()

    def _ts_in_millis(self) -> bool:
        """Whether every file stores `ts` in whole milliseconds (from the footers)."""
        sql = (
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE logical_type LIKE '%MILLIS=MilliSeconds%' "
            "OR converted_type = 'TIMESTAMP_MILLIS') "
            f"FROM parquet_schema({self._parquet}) WHERE name = 'ts'"
        )
        files, millis = self.connection.execute(sql).fetchall()[0]
        return files > 0 and files == millis

    def columns(self) -> set[str]:
        return set(self._types)

    def ts_ms(self, column: str = "ts") -> str:
        kind = self._types.get("ts", "")
        if "TIMESTAMP" not in kind:
            return f"CAST({column} AS BIGINT)"
        if self._millis:  # whole milliseconds: the same number, a third cheaper per beacon
            return f"(epoch_us({column}) // 1000)"
        return f"epoch_ms({column})"

    def span_ms(self) -> tuple[int, int] | None:
        """The first and last `ts` from the Parquet footers' statistics (no scan); None
        when a row group has none (then the caller scans)."""
        if self._parquet is None or "TIMESTAMP" not in self._types.get("ts", ""):
            return None
        sql = (
            "SELECT 2 * COUNT(*) - COUNT(stats_min_value) - COUNT(stats_max_value) AS missing, "
            "epoch_ms(MIN(CAST(stats_min_value AS TIMESTAMPTZ))) AS lo, "
            "epoch_ms(MAX(CAST(stats_max_value AS TIMESTAMPTZ))) AS hi "
            f"FROM parquet_metadata({self._parquet}) WHERE path_in_schema = 'ts'"
        )
        with self._lock:
            missing, lo, hi = self.connection.execute(sql).fetchall()[0]
        return None if missing or lo is None else (int(lo), int(hi))

    def int_div(self, a: str, b: int) -> str:
        return f"({a}) // {b}"

    def stage(self, sql: str) -> str:
        with self._lock:
            self._staged += 1
            name = f"staged_{self._staged}"
            # a staged relation is only aggregated or sorted: its row order is not
            # kept, which lets both threads insert (a fifth faster at 3 M rows)
            self.connection.execute("SET preserve_insertion_order = false")
            try:
                self.connection.execute(f"CREATE TEMP TABLE {name} AS {sql}")
            finally:
                self.connection.execute("RESET preserve_insertion_order")
        return name

    def cluster(self) -> str:
        return f"CAST(hash(session_id) % {1 << SESSION_BUCKET_BITS} AS BIGINT)"

    def query(self, sql: str) -> pl.DataFrame:
        with self._lock:
            return pl.from_arrow(self.connection.sql(sql).to_arrow_table())  # type: ignore[return-value]

    def close(self) -> None:
        self.connection.close()
        self._spill.cleanup()


def engine_files(path: Path, engine: str) -> tuple[str, list[str]]:
    """What an engine scans: Parquet or NDJSON files (the format from their content)."""
    kind, files = rum_files(path)
    if kind not in ("parquet", "ndjson"):
        raise UsageError(
            f"{path} is a {kind} RUM export; the {engine} engine reads Parquet or NDJSON",
            "convert it (wsanalysis reads it with --engine polars), or export NDJSON/Parquet",
        )
    return kind, files


def open_engine(engine: Engine, path: Path) -> DuckDBEngine | SparkEngine:
    """The engine that computes the RUM gates' sums over the beacons at `path`."""
    if engine == "duckdb":
        return DuckDBEngine(path)
    if engine == "spark":
        return SparkEngine(path)
    raise UsageError(f"unknown engine {engine!r}", f"choose one of {', '.join(ENGINES[1:])}")


_FROM_BEACONS = re.compile(r"\bFROM beacons\b")

#: a cluster's master URL (spark://..., yarn, k8s://...); local mode on 2 cores if unset
SPARK_MASTER_ENV = "WSANALYSIS_SPARK_MASTER"
_SPARK = None
_SPARK_LOCK = threading.Lock()


def spark_session():
    """One SparkSession per process (the JVM takes seconds to start): local mode, or the
    cluster named by `$WSANALYSIS_SPARK_MASTER`."""
    global _SPARK
    with _SPARK_LOCK:
        if _SPARK is None:
            try:
                from pyspark.sql import SparkSession
            except ImportError:
                raise UsageError(
                    "the spark engine needs pyspark and Java 17",
                    "pip install 'wsanalysis[spark]' and apt-get install openjdk-17-jre-headless",
                ) from None
            master = os.environ.get(SPARK_MASTER_ENV, "local[2]")
            builder = (
                SparkSession.builder.master(master)
                .appName("wsanalysis")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .config("spark.sql.session.timeZone", "UTC")
            )
            if master.startswith("local"):  # loopback only, few partitions, no web UI
                builder = (
                    builder.config("spark.ui.enabled", "false")
                    .config("spark.sql.shuffle.partitions", "4")
                    .config("spark.driver.bindAddress", "127.0.0.1")
                    .config("spark.driver.host", "127.0.0.1")
                )
            _SPARK = builder.getOrCreate()
            _SPARK.sparkContext.setLogLevel("ERROR")
        return _SPARK


class SparkEngine:
    name = "spark"

    def __init__(self, path: Path) -> None:
        kind, files = engine_files(Path(path), self.name)
        self.spark = spark_session()
        if kind == "parquet":  # scanned per query: only the columns it needs, nothing cached
            root = Path(path)
            frame = self.spark.read.option("mergeSchema", "true").parquet(
                str(root) if root.is_dir() else files[0]
            )
        else:  # the contract's fields, typed, parsed once (cached, spilling to disk)
            frame = self.spark.read.schema(_spark_schema()).json(files).cache()
        self.frame = frame
        self.view = f"beacons_{id(self)}"
        frame.createOrReplaceTempView(self.view)
        self._types = {f.name: f.dataType.simpleString().upper() for f in frame.schema.fields}
        self._lock = threading.Lock()
        self._staged: list = []

    def columns(self) -> set[str]:
        return set(self._types)

    def ts_ms(self, column: str = "ts") -> str:
        kind = self._types.get("ts", "")
        return f"unix_millis({column})" if "TIMESTAMP" in kind else f"CAST({column} AS BIGINT)"

    def int_div(self, a: str, b: int) -> str:
        return f"({a}) div {b}"

    def stage(self, sql: str) -> str:
        with self._lock:
            frame = self.spark.sql(_FROM_BEACONS.sub(f"FROM {self.view}", sql)).cache()
            self._staged.append(frame)
            name = f"staged_{id(self)}_{len(self._staged)}"
            frame.createOrReplaceTempView(name)
        return name

    def cluster(self) -> str:
        return f"pmod(xxhash64(session_id), {1 << SESSION_BUCKET_BITS})"

    def query(self, sql: str) -> pl.DataFrame:
        text = _FROM_BEACONS.sub(f"FROM {self.view}", sql)
        with self._lock:
            result = self.spark.sql(text)
            return pl.from_arrow(result.toArrow())  # type: ignore[return-value]

    def close(self) -> None:
        self.spark.catalog.dropTempView(self.view)
        for staged in self._staged:
            staged.unpersist()
        self.frame.unpersist()


def _spark_schema() -> str:
    """The NDJSON fields as a Spark DDL schema (`ts` as epoch ms)."""
    spark = {"VARCHAR": "STRING"}
    return ", ".join(f"`{n}` {spark.get(t, t)}" for n, t in _JSON_COLUMNS.items())
