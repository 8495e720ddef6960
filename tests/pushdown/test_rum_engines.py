"""polars, DuckDB and Spark give the same RUM gate inputs, decisions and intervals.

Tolerance: the engines hand the statistics the same numbers (counts are integers,
values and durations are read as doubles and scaled the same way, clusters are hashed
by the same polars expression), so intervals must agree to 1e-9 relative; decisions
must be identical.
"""

from __future__ import annotations

import math
import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.prometheus.fixtures import REPO
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import gate_metric_names, gate_rum_columns, load_judge_input
from wsanalysis.canary.judge import judge
from wsanalysis.frames.selection import RumFilter
from wsanalysis.pushdown.engines import DuckDBEngine
from wsanalysis.pushdown.rum import RumAggregates
from wsanalysis.sources.rum import read_rum

GATES = load_gate_file(None)
TOLERANCE = 1e-9


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
            for field in ("canary", "control", "effect", "ci_low", "ci_high", "p_harm"):
                x, y = getattr(a.evidence, field), getattr(b.evidence, field)
                if x is None or (isinstance(x, float) and math.isnan(x)):
                    assert y is None or math.isnan(y), (engine, a.name, field)
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
