"""polars, DuckDB and Spark give the same RUM gate inputs, decisions and intervals.

Tolerance: the engines hand the statistics the same numbers (counts are integers,
values are read as doubles and scaled the same way; up to `BOOTSTRAP_MAX_SAMPLES` the
values leave the engine with their session and are hashed by the same polars
expression), so rate and quantile intervals agree to 1e-9 relative and decisions are
identical. Two stated exceptions:
- survival gates: durations leave the engine rounded up to the second
  (`DURATION_RESOLUTION`), so estimates and interval ends agree to 1 s and p-values
  to 1e-3 (the rounding moves censored connections within their second only);
- Woodruff (above `BOOTSTRAP_MAX_SAMPLES`): the engine hashes sessions into the same
  2^20 buckets with its own hash, so different sessions share a bucket than in polars;
  the estimate is exact and the standard error agrees to `WOODRUFF_SE` relative. Why
  not closer: the clustered share's SE moves a little (other sessions share a bucket;
  their cross term has mean 0), which can move the interval's end ranks by one, and at
  a few thousand samples one rank is a visible step (measured with Woodruff forced:
  `ttfb_p95_plus150` 0.0, `sample` 3.8% on 5k samples per variant); at the millions
  where Woodruff is the default a rank step is negligible. With the engine's own
  buckets the interval is exact (1e-12, `test_woodruff_statistics_...`).
"""

from __future__ import annotations

import math
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.prometheus.fixtures import REPO
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import load_judge_input
from wsanalysis.canary.judge import judge
from wsanalysis.canary.reads import gate_metric_names, gate_rum_columns
from wsanalysis.frames import measures
from wsanalysis.frames.selection import RumFilter
from wsanalysis.pushdown import rum
from wsanalysis.pushdown.engines import DuckDBEngine
from wsanalysis.pushdown.rum import DURATION_RESOLUTION, RumAggregates
from wsanalysis.sources.rum import read_rum
from wsanalysis.stats import quantiles as qs

GATES = load_gate_file(None)
GATES_BY_NAME = {g.name: g for p in ("canary", "staging") for g in GATES.profile(p).gates}
TOLERANCE = 1e-9
SURVIVAL_P = 1e-3
WOODRUFF_SE = 0.05


def _dataset(name: str, folder: Path, layout: str) -> Path:
    """A copy of a bundled dataset with its beacons as NDJSON or hive-partitioned Parquet."""
    source = REPO / "data" / name
    folder.mkdir(parents=True, exist_ok=True)
    for metrics in source.glob("metrics.om*"):
        shutil.copy(metrics, folder / metrics.name)
    if layout == "ndjson":
        shutil.copy(source / "rum.ndjson.gz", folder / "rum.ndjson.gz")
    else:
        frame = read_rum(source / "rum.ndjson.gz").frame
        frame.write_parquet(folder / "rum.parquet", partition_by="variant")
    return folder


def _verdicts(folder: Path, engine: str) -> dict:
    found = {}
    for name in ("canary", "staging"):
        profile = GATES.profile(name)
        data = load_judge_input(
            profile,
            data=folder,
            canary_share=0.1,
            engine=engine,
            rum_columns=gate_rum_columns(profile),
            metric_names=gate_metric_names(profile),
        )
        found[name] = judge(profile, data)
    return found


def _assert_same(expected: dict, got: dict, engine: str) -> None:
    for profile, verdict in expected.items():
        other = got[profile]
        assert other.overall == verdict.overall, (engine, profile)
        for a, b in zip(verdict.gates, other.gates, strict=True):
            assert (a.name, a.decision, a.evidence.source) == (
                b.name,
                b.decision,
                b.evidence.source,
            )
            survival = GATES_BY_NAME[a.name].statistic == "survival_quantile"
            for field in ("canary", "control", "effect", "ci_low", "ci_high", "p_harm"):
                x, y = getattr(a.evidence, field), getattr(b.evidence, field)
                if x is None or (isinstance(x, float) and math.isnan(x)):
                    assert y is None or math.isnan(y), (engine, a.name, field)
                elif survival and field == "p_harm":
                    assert y == pytest.approx(x, abs=SURVIVAL_P), (engine, a.name, field)
                elif survival:  # durations leave the engine rounded up to the second
                    assert y == pytest.approx(x, abs=DURATION_RESOLUTION), (engine, a.name, field)
                else:
                    assert y == pytest.approx(x, rel=TOLERANCE, abs=1e-12), (engine, a.name, field)
        assert any(g.evidence.source == "rum" for g in other.gates)  # the engine was used


@pytest.mark.parametrize(
    ("name", "layout"),
    [("sample", "ndjson"), ("ttfb_p95_plus150", "parquet")],
)
def test_duckdb_gives_the_polars_verdicts(name, layout, tmp_path):
    folder = _dataset(name, tmp_path / name, layout)
    _assert_same(_verdicts(folder, "polars"), _verdicts(folder, "duckdb"), "duckdb")


def test_rate_counts_leave_the_engine_as_buckets_not_beacons(tmp_path):

    folder = _dataset("sample", tmp_path / "s", "parquet")
    engine = DuckDBEngine(folder / "rum.parquet")
    beacons = read_rum(folder / "rum.parquet").frame
    lo, hi = beacons["ts"].min(), beacons["ts"].max()
    aggregates = RumAggregates(engine).at(
        __import__("wsanalysis.frames.measures").frames.measures.Window(lo, hi)
    )
    counts = aggregates.counts(RumFilter("ws.open"), timedelta(minutes=1))
    buckets = math.ceil((hi - lo) / timedelta(minutes=1))
    assert counts.height <= 2 * buckets < beacons.height
    assert counts["n"].sum() == beacons.filter(pl.col("type") == "ws.open").height
    engine.close()


@pytest.mark.slow
def test_spark_gives_the_polars_verdicts(tmp_path):
    import pyspark  # noqa: F401  (`make install` installs the spark extra: never skipped)

    if shutil.which("java") is None:
        pytest.fail("java is missing: run `apt-get install -y openjdk-17-jre-headless`")
    folder = _dataset("sample", tmp_path / "sample", "parquet")
    _assert_same(_verdicts(folder, "polars"), _verdicts(folder, "spark"), "spark")


def _window(beacons: pl.DataFrame) -> measures.Window:
    return measures.Window(beacons["ts"].min(), beacons["ts"].max())


@pytest.mark.parametrize("layout", ["parquet", "ndjson"])
def test_a_beacon_at_the_windows_end_counts_in_the_last_bucket(layout, tmp_path):
    # The window ends on a beacon, a whole number of buckets after its start: that
    # beacon's bucket number is one past the last, and the engine clips it into the
    # last bucket as `measures.bucket_of` does (after grouping, not per beacon).
    folder = _dataset("sample", tmp_path / "s", layout)
    path = folder / ("rum.parquet" if layout == "parquet" else "rum.ndjson.gz")
    beacons = read_rum(path).frame
    gate = GATES_BY_NAME["reconnect_rate"]
    end = beacons.filter(pl.col("type") == gate.events.rum.type)["ts"].max()
    window = measures.Window(end - timedelta(minutes=30), end)
    bucket = timedelta(minutes=1)
    inside = beacons.filter(pl.col("ts").is_between(window.start, window.end))  # as read
    expected = measures.counts(
        gate.events, gate.exposure, pl.DataFrame(), inside, window, bucket, "rum"
    )
    engine = DuckDBEngine(path)
    pushed = rum.EngineMeasures(RumAggregates(engine))
    got = pushed.counts(gate.events, gate.exposure, pl.DataFrame(), None, window, bucket, "rum")
    assert got is not None and expected is not None
    assert got.frame.equals(expected.frame.select(got.frame.columns))
    engine.close()


def test_woodruff_statistics_from_the_engine_equal_the_rows(tmp_path, monkeypatch):
    # Forced past the bootstrap's size: N, windows of order statistics and pooled
    # cluster counts from DuckDB give exactly the interval its rows give.
    folder = _dataset("ttfb_p95_plus150", tmp_path / "t", "parquet")
    engine = DuckDBEngine(folder / "rum.parquet")
    beacons = read_rum(folder / "rum.parquet").frame
    spec = GATES_BY_NAME["ttfb_p95"].samples.rum
    monkeypatch.setattr(rum, "BOOTSTRAP_MAX_SAMPLES", 0)
    aggregates = RumAggregates(engine).at(_window(beacons))
    found = aggregates.samples(spec)
    polars_rows = measures.rum_samples(spec, beacons)
    assert found is not None and found.ranked and polars_rows is not None
    for name, values in found.ranked.items():
        rows = engine.query(f"SELECT value, cluster FROM {values.relation}")
        ordered = np.sort(rows["value"].to_numpy())
        np.testing.assert_array_equal(ordered, np.sort(polars_rows.variants[name]["value"]))
        n = len(ordered)
        assert values.count() == n
        for first, last in [(0, 5), (n // 2, n // 2 + 99), (n - 40, n - 1), (0, n - 1)]:
            np.testing.assert_array_equal(values.ranked(first, last), ordered[first : last + 1])
        prepared = qs._prepare(rows["value"].to_numpy(), rows["cluster"].to_numpy())
        for q in (0.5, 0.95, 0.99):
            got, want = qs.woodruff(values, q, 1.96), qs.woodruff(prepared, q, 1.96)
            assert (got.estimate, got.n, got.clusters) == (want.estimate, want.n, want.clusters)
            assert got.standard_error == pytest.approx(want.standard_error, rel=1e-12)
        sizes, _, multiplicity = values.cluster_counts(float(ordered[n // 2]))
        assert len(sizes) < n / 10 and multiplicity.sum() == prepared.n_sessions
    engine.close()


@pytest.mark.parametrize(
    ("name", "layout"),
    [("ttfb_p95_plus150", "parquet"), ("sample", "parquet"), ("sample", "ndjson")],
)
def test_duckdb_woodruff_gives_the_polars_woodruff_verdicts(name, layout, tmp_path, monkeypatch):
    folder = _dataset(name, tmp_path / name, layout)
    monkeypatch.setattr(rum, "BOOTSTRAP_MAX_SAMPLES", 0)
    monkeypatch.setattr(qs, "BOOTSTRAP_MAX_SAMPLES", 0)
    expected, got = _verdicts(folder, "polars")["canary"], _verdicts(folder, "duckdb")["canary"]
    assert got.overall == expected.overall
    for a, b in zip(expected.gates, got.gates, strict=True):
        assert (a.name, a.decision) == (b.name, b.decision)
        if a.name != "ttfb_p95":
            continue
        assert "Woodruff" in a.evidence.method and "Woodruff" in b.evidence.method
        assert (b.evidence.canary, b.evidence.control) == (a.evidence.canary, a.evidence.control)
        assert b.evidence.se == pytest.approx(a.evidence.se, rel=WOODRUFF_SE)
        width = a.evidence.ci_high - a.evidence.ci_low
        for end in ("ci_low", "ci_high"):
            assert getattr(b.evidence, end) == pytest.approx(
                getattr(a.evidence, end), abs=WOODRUFF_SE * width
            )


def test_durations_leave_the_engine_as_counts_per_second(tmp_path):
    folder = _dataset("sample", tmp_path / "s", "parquet")
    engine = DuckDBEngine(folder / "rum.parquet")
    beacons = read_rum(folder / "rum.parquet").frame
    window = _window(beacons)
    spec = GATES_BY_NAME["duration_p95"].samples.rum
    pushed = RumAggregates(engine).at(window).durations(spec)
    rows = measures.connection_durations(spec, beacons, window)
    assert pushed is not None and rows is not None
    expected = (
        rows.frame.with_columns(pl.col("duration").ceil())
        .group_by("variant", "duration", "observed")
        .agg(pl.len().cast(pl.Int64).alias("weight"))
        .sort("variant", "duration", "observed")
    )
    got = pushed.frame.sort("variant", "duration", "observed")
    assert got.equals(expected.select(got.columns))
    assert got.height < rows.frame.height and got["weight"].sum() == rows.frame.height
    engine.close()


def test_sessions_per_variant_are_counted_in_the_engine(tmp_path):
    folder = _dataset("sample", tmp_path / "s", "ndjson")
    engine = DuckDBEngine(folder / "rum.ndjson.gz")
    beacons = read_rum(folder / "rum.ndjson.gz").frame
    aggregates = RumAggregates(engine).at(_window(beacons))
    variants = ("canary", "control")
    assert aggregates.sessions_per_variant(variants) == measures.sessions_per_variant(
        beacons, variants
    )
    assert "SELECT DISTINCT session_id FROM beacons" in aggregates.queries[-1]
    engine.close()


def test_a_partitioned_folder_is_read_once_whichever_folder_is_named(tmp_path):
    folder = _dataset("sample", tmp_path / "s", "parquet")
    beacons = read_rum(folder / "rum.parquet").frame
    for named in (folder, folder / "rum.parquet"):  # the dataset, or its Parquet folder
        engine = DuckDBEngine(named)
        assert engine.query("SELECT COUNT(*) AS n FROM beacons")["n"].item() == beacons.height
        engine.close()


def test_duckdb_reads_whole_milliseconds_cheaply_and_the_same(tmp_path):
    """Whole-millisecond Parquet: epoch_us // 1000 (cheaper) gives epoch_ms exactly; a
    microsecond file keeps epoch_ms."""
    folder = _dataset("sample", tmp_path / "s", "parquet")
    engine = DuckDBEngine(folder / "rum.parquet")
    assert "epoch_us" in engine.ts_ms()
    got = engine.query(f"SELECT {engine.ts_ms()} AS a, epoch_ms(ts) AS b FROM beacons")
    assert got["a"].equals(got["b"], check_names=False)
    engine.close()
    micros = tmp_path / "micros.parquet"
    read_rum(folder / "rum.parquet").frame.with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC"))
    ).write_parquet(micros)
    engine = DuckDBEngine(micros)
    assert engine.ts_ms() == "epoch_ms(ts)"
    engine.close()


@pytest.mark.slow
def test_spark_woodruff_gives_the_polars_woodruff_verdicts(tmp_path, monkeypatch):
    import pyspark  # noqa: F401

    folder = _dataset("ttfb_p95_plus150", tmp_path / "t", "parquet")
    monkeypatch.setattr(rum, "BOOTSTRAP_MAX_SAMPLES", 0)
    monkeypatch.setattr(qs, "BOOTSTRAP_MAX_SAMPLES", 0)
    expected, got = _verdicts(folder, "polars")["canary"], _verdicts(folder, "spark")["canary"]
    assert got.overall == expected.overall
    for a, b in zip(expected.gates, got.gates, strict=True):
        assert (a.name, a.decision) == (b.name, b.decision)
        if a.name == "ttfb_p95":
            assert "Woodruff" in b.evidence.method
            assert (b.evidence.canary, b.evidence.control) == (
                a.evidence.canary,
                a.evidence.control,
            )
            assert b.evidence.se == pytest.approx(a.evidence.se, rel=WOODRUFF_SE)


def test_duckdb_reads_the_span_from_parquet_footers_exactly(tmp_path):
    folder = _dataset("sample", tmp_path / "s", "parquet")
    engine = DuckDBEngine(folder / "rum.parquet")
    ts = read_rum(folder / "rum.parquet").frame["ts"].dt.epoch("ms")
    assert engine.span_ms() == (ts.min(), ts.max())
    scanned = engine.query("SELECT epoch_ms(MIN(ts)) AS lo, epoch_ms(MAX(ts)) AS hi FROM beacons")
    assert engine.span_ms() == scanned.row(0)
    engine.close()
