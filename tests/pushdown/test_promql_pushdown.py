"""Push-down through a real Prometheus gives the raw path's gate inputs and verdicts."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from tests.prometheus.fixtures import (
    REPO,
    SYNTHETIC_END,
    SYNTHETIC_START,
    require_prometheus,
    synthetic_samples,
)
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import gate_metric_names, load_judge_input
from wsanalysis.canary.judge import judge
from wsanalysis.frames import measures
from wsanalysis.pushdown.promql import counter_queries, increase_expr, step_for
from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill, tsdb_window
from wsanalysis.sources.openmetrics import write_openmetrics

#: resets (restart), a spike gate's bursts, a histogram shift, and the A/A baseline
DATASETS = ["deploy_restart", "auth_spike_token_change", "ttfb_p95_plus150", "sample"]
PROFILE = load_gate_file(None).profile("canary")


def _restarted(frame: pl.DataFrame) -> pl.DataFrame:
    """The synthetic series plus connection counters, with the canary's counters reset
    (a restarted pod) halfway, scraped every 15 s (one series 250 ms off the grid)."""
    opened = frame.filter(pl.col("metric") == "ws_closes_total", pl.col("code") == "1000")
    frame = pl.concat(
        [frame, opened.with_columns(metric=pl.lit("ws_connections_total"), code=pl.lit(None))]
    )
    half = SYNTHETIC_START + (SYNTHETIC_END - SYNTHETIC_START) / 2
    counter = pl.col("metric").str.ends_with("_total") | pl.col("metric").str.ends_with("_bucket")
    after = (pl.col("variant") == "canary") & counter & (pl.col("timestamp") >= half)
    base = (
        pl.col("value")
        .filter(pl.col("timestamp") < half)
        .max()
        .over("metric", "variant", "code", "le", "event")
    )
    return frame.with_columns(
        value=pl.when(after).then(pl.col("value") - base + 1).otherwise(pl.col("value"))
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def test_the_step_divides_every_bucket_and_the_query_reads_resets():
    assert step_for(PROFILE).total_seconds() == 15
    families = {q.metric: q for q in counter_queries(PROFILE)}
    assert families["ws_closes_total"].by == ("code",)  # several gates, several codes
    assert families["ws_closes_total"].matchers == ()
    assert "le" in families["ws_assistant_ttfb_seconds_bucket"].by
    text = increase_expr("x", ["variant"], 1, 15001)
    assert "x offset 1ms - x offset 15001ms" in text and "< 0" in text


@pytest.mark.prometheus
def test_counter_resets_and_off_grid_scrapes_give_the_raw_gate_inputs(tmp_path):
    require_prometheus()
    frame = _restarted(synthetic_samples())
    resets = frame.sort("timestamp").filter(
        pl.col("value") < pl.col("value").shift(1).over("metric", "variant", "code", "le", "event")
    )
    assert resets.height > 5  # the data does reset
    write_openmetrics(frame, tmp_path / "metrics.om")
    _compare_paths(tmp_path, files=False)


@pytest.mark.prometheus
@pytest.mark.parametrize("name", DATASETS)
def test_pushdown_gives_the_raw_gate_inputs_and_verdict(name, tmp_path):
    _compare_paths(REPO / "data" / name, tmp_path)


def _compare_paths(folder, tmp_path=None, files: bool = True) -> None:
    require_prometheus()
    tmp_path = tmp_path if tmp_path is not None else folder
    backfill(folder, tmp_path / "tsdb")
    window = tsdb_window(tmp_path / "tsdb")
    assert window is not None
    start, end = _iso(window[0]), _iso(window[1])
    names = gate_metric_names(PROFILE)
    with LocalPrometheus(tmp_path / "tsdb") as prometheus:
        loaded = {
            raw: load_judge_input(
                PROFILE,
                prometheus=prometheus.url,
                start=start,
                end=end,
                raw=raw,
                metric_names=names,
            )
            for raw in (True, False)
        }
    raw, pushed = loaded[True], loaded[False]
    assert pushed.samples.height <= raw.samples.height  # what crossed the network
    win = raw.resolved_window()
    for gate in PROFILE.gates:
        if gate.events is not None:
            bucket = gate.bucket or measures.RATE_BUCKET
            a, b = (
                measures.counts(gate.events, gate.exposure, d.samples, None, win, bucket)
                for d in (raw, pushed)
            )
            assert (a is None) == (b is None), gate.name
            if a is not None:
                assert a.frame.equals(b.frame), gate.name
        if gate.samples is not None and gate.samples.histogram:
            a, b = (
                measures.histogram_counts(gate.samples.histogram, d.samples) for d in (raw, pushed)
            )
            assert a is not None and b is not None
            assert a.frame.equals(b.frame), gate.name
    by_raw, by_push = judge(PROFILE, raw), judge(PROFILE, pushed)
    decisions = [[g.decision for g in v.gates] for v in (by_raw, by_push)]
    assert decisions[0] == decisions[1]
    assert by_raw.overall == by_push.overall
    if not files:
        return
    from_files = judge(PROFILE, load_judge_input(PROFILE, data=folder, start=start, end=end))
    server_gates = {g.name for g in PROFILE.gates if g.prefer != "rum"}
    on_file = {g.name: g.decision for g in from_files.gates if g.name in server_gates}
    pushed_decisions = {g.name: g.decision for g in by_push.gates if g.name in on_file}
    assert pushed_decisions == on_file
