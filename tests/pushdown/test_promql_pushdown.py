"""Push-down through a real Prometheus gives the raw path's gate inputs and verdicts."""

from __future__ import annotations

import shutil
import warnings
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
from wsanalysis.canary.inputs import load_judge_input
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.canary.reads import counter_queries, gate_metric_names, judge_reads, step_for
from wsanalysis.frames import measures
from wsanalysis.pushdown import promql
from wsanalysis.pushdown.promql import Grid, increase_expr, pushed_samples, split_matchers
from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill, tsdb_window
from wsanalysis.sources.local_victoriametrics import LocalVictoriaMetrics
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.prometheus import PrometheusSource, PrometheusWarning
from wsanalysis.sources.prometheus.export import export_samples
from wsanalysis.sources.variants import DEFAULT_VARIANTS

#: resets (restart), a spike gate's bursts, a histogram shift, and the A/A baseline
DATASETS = ["deploy_restart", "auth_spike_token_change", "ttfb_p95_plus150", "sample"]
VM_DATASETS = {"ttfb_p95_plus150"}  # VictoriaMetrics too (and the synthetic one)
PROFILE = load_gate_file(None).profile("canary")
TTFB = "ws_assistant_ttfb_seconds"
TTFB_SHARES = {"0.5": 0.4, "2.5": 0.9, "+Inf": 1.0}  # as in `synthetic_samples`


def _restarted(frame: pl.DataFrame) -> pl.DataFrame:
    """The synthetic series plus connection counters, with the canary's counters reset
    (a restarted pod) halfway, scraped every 15 s (one series 250 ms off the grid).

    The histogram restarts as a whole: `_count` and `_sum` drop with the buckets, and the
    buckets are recomputed from the restarted count with the fixture's shares, so each
    point stays a valid OpenMetrics histogram (cumulative buckets, `_count` equal to the
    `+Inf` bucket) that the strict reader accepts.
    """
    opened = frame.filter(pl.col("metric") == "ws_closes_total", pl.col("code") == "1000")
    frame = pl.concat(
        [frame, opened.with_columns(metric=pl.lit("ws_connections_total"), code=pl.lit(None))]
    )
    half = SYNTHETIC_START + (SYNTHETIC_END - SYNTHETIC_START) / 2
    counter = pl.col("metric").str.ends_with("_total") | pl.col("metric").is_in(
        [f"{TTFB}_count", f"{TTFB}_sum"]
    )
    after = (pl.col("variant") == "canary") & (pl.col("timestamp") >= half)
    base = (
        pl.col("value")
        .filter(pl.col("timestamp") < half)
        .max()
        .over("metric", "variant", "code", "le", "event")
    )
    frame = frame.with_columns(
        value=pl.when(after & counter).then(pl.col("value") - base + 1).otherwise(pl.col("value"))
    )
    count = frame.filter(pl.col("metric") == f"{TTFB}_count").select(
        "timestamp", "variant", count=pl.col("value")
    )
    share = pl.col("le").replace_strict(TTFB_SHARES, default=None, return_dtype=pl.Float64)
    bucket = (pl.col("metric") == f"{TTFB}_bucket") & after
    frame = (
        frame.join(count, on=["timestamp", "variant"], how="left")
        .with_columns(
            value=pl.when(bucket).then((pl.col("count") * share).floor()).otherwise("value")
        )
        .drop("count")
    )
    return pl.concat([frame, _late_pod(frame)], how="diagonal")


def _late_pod(frame: pl.DataFrame) -> pl.DataFrame:
    """A control pod's error frames, scraped from a third into the window on, its counter
    at 7 when first seen: neither path may count the 7 (it came before the window saw the
    series). The server's sums would (the series is missing from the earlier sums), so
    push-down must find it and leave it to the exact per-series expression."""
    stamps = frame.filter(
        pl.col("metric") == "ws_connections_total", pl.col("variant") == "control"
    )
    later = stamps.filter(
        pl.col("timestamp") >= SYNTHETIC_START + (SYNTHETIC_END - SYNTHETIC_START) / 3
    ).sort("timestamp")
    return later.select(
        "timestamp",
        "variant",
        "track",
        metric=pl.lit("ws_frames_sent_total"),
        event=pl.lit("error"),
        pod=pl.lit("p-late"),
        value=7.0 + pl.int_range(pl.len()).cast(pl.Float64) // 3,
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


@pytest.mark.parametrize("start_ms", [1_709_251_200_000, 1_709_251_200_001, 1_709_251_237_123])
@pytest.mark.parametrize("buckets", [1, 2, 120])
def test_the_presence_probe_lands_on_the_bucket_points(start_ms, buckets):
    """Subquery points are multiples of B: shifted by the probe's offset they must be
    exactly g_1 .. g_K, whichever range convention the server follows."""
    grid = Grid(start_ms, start_ms + buckets * 60_000 + 7_000, 60_000)
    assert grid.k == buckets
    first = grid.probe_at - grid.probe_range_ms  # the subquery range's lower end
    points = [p for p in range(first - first % 60_000, grid.probe_at + 1, 60_000) if p > first]
    assert [p - grid.probe_shift_ms for p in points] == [
        grid.point(k) for k in range(1, buckets + 1)
    ]
    assert all(p % 60_000 == 0 for p in points)
    assert first % 60_000 != 0  # not on a point: closed and left-open ranges agree


def test_irregular_series_are_singled_out_by_a_process_label_taken_literally():
    irregular = pl.DataFrame(
        {"variant": ["canary", "canary"], "pod": ["web-1.a", "web-(2)"], "code": ["1000", "1006"]}
    )
    inside, outside = split_matchers(irregular)
    assert inside.label == "pod" and outside.op == "!~"
    pods = pl.DataFrame({"pod": ["web-1.a", "web-(2)", "web-1xa", "web-2", "other"]})
    chosen = pods.filter(inside.expr(pods.columns))["pod"].to_list()
    assert chosen == ["web-1.a", "web-(2)"]  # `.` and `(` are not regex syntax here
    assert pods.filter(outside.expr(pods.columns)).height == 3
    # no label on every irregular series: nothing to split on
    assert split_matchers(pl.DataFrame({"pod": ["a", None]})) is None


def require_victoriametrics() -> None:
    if shutil.which("victoria-metrics") is None:
        pytest.skip("victoria-metrics not installed: run `apt-get install -y victoria-metrics`")


@pytest.mark.prometheus
def test_counter_resets_and_off_grid_scrapes_give_the_raw_gate_inputs(tmp_path):
    frame = _restarted(synthetic_samples())
    resets = frame.sort("timestamp").filter(
        pl.col("value") < pl.col("value").shift(1).over("metric", "variant", "code", "le", "event")
    )
    assert resets.height > 5  # the data does reset
    write_openmetrics(frame, tmp_path / "metrics.om")
    # samples from March 2024: months old for both engines' retention
    # the restarted series need the probes; the check sends them there
    assert _compare_paths(tmp_path, tmp_path, files=False, victoriametrics=True) > 0


@pytest.mark.prometheus
@pytest.mark.parametrize("name", DATASETS)
def test_pushdown_gives_the_raw_gate_inputs_and_verdict(name, tmp_path):
    probed = _compare_paths(REPO / "data" / name, tmp_path, victoriametrics=name in VM_DATASETS)
    if name == "sample":  # no pod restarts, starts or stops: no probe at all
        assert probed == 0


def _load(url: str, start: str, end: str, raw: bool) -> JudgeInput:
    names = gate_metric_names(PROFILE)
    return load_judge_input(
        PROFILE, prometheus=url, start=start, end=end, raw=raw, metric_names=names
    )


def _gate_inputs(data: JudgeInput, window) -> dict[str, pl.DataFrame | None]:
    """Every gate's input from the server's series: Counts and HistogramCounts frames."""
    found: dict[str, pl.DataFrame | None] = {}
    for gate in PROFILE.gates:
        if gate.events is not None:
            bucket = gate.bucket or measures.RATE_BUCKET
            counts = measures.counts(gate.events, gate.exposure, data.samples, None, window, bucket)
            found[gate.name] = counts.frame if counts is not None else None
        if gate.samples is not None and gate.samples.histogram:
            histogram = measures.histogram_counts(gate.samples.histogram, data.samples)
            found[gate.name] = histogram.frame if histogram is not None else None
    return found


def _compare_paths(folder, tmp_path, files: bool = True, victoriametrics: bool = False) -> None:
    require_prometheus()
    backfill(folder, tmp_path / "tsdb")
    window = tsdb_window(tmp_path / "tsdb")
    assert window is not None
    start, end = _iso(window[0]), _iso(window[1])
    with LocalPrometheus(tmp_path / "tsdb") as prometheus:
        loaded = {
            f"prometheus raw={raw}": _load(prometheus.url, start, end, raw) for raw in (True, False)
        }
        probed = _same_sums_without_probes(prometheus.url, start, end)
    if victoriametrics:
        require_victoriametrics()
        with LocalVictoriaMetrics(tmp_path / "vm") as vm:
            vm.import_dataset(folder)
            for raw in (True, False):
                loaded[f"victoriametrics raw={raw}"] = _load(vm.url, start, end, raw)
            assert _same_sums_without_probes(vm.url, start, end) == probed
            selector = '{__name__=~"' + "|".join(gate_metric_names(PROFILE)) + '"}'
            with vm.source() as source:  # the raw path used /api/v1/export: same frame
                exported = export_samples(source, selector, start, end, DEFAULT_VARIANTS)
                queried = source.read_samples(selector, start, end)
            assert exported is not None and exported.height > 0
            assert exported.equals(queried)
    raw = loaded["prometheus raw=True"]
    assert loaded["prometheus raw=False"].samples.height <= raw.samples.height
    win = raw.resolved_window()
    reference = _gate_inputs(raw, win)
    assert any(frame is not None for frame in reference.values())
    verdict = judge(PROFILE, raw)
    for name, data in loaded.items():
        inputs = _gate_inputs(data, win)
        assert inputs.keys() == reference.keys()
        for gate, frame in reference.items():
            other = inputs[gate]
            assert (frame is None) == (other is None), (name, gate)
            assert frame is None or frame.equals(other), (name, gate)
        other = judge(PROFILE, data)
        assert [g.decision for g in other.gates] == [g.decision for g in verdict.gates], name
        assert other.overall == verdict.overall, name
    if not files:
        return probed
    from_files = judge(PROFILE, load_judge_input(PROFILE, data=folder, start=start, end=end))
    server_gates = {g.name for g in PROFILE.gates if g.prefer != "rum"}
    on_file = {g.name: g.decision for g in from_files.gates if g.name in server_gates}
    on_server = {g.name: g.decision for g in verdict.gates if g.name in on_file}
    assert on_server == on_file
    return probed


def _same_sums_without_probes(url: str, start: str, end: str) -> int:
    """The sums taken after the regular check equal those after the probes (forced),
    on the whole window and a later part of it; how many families needed the probes."""
    request = judge_reads(PROFILE).pushdown
    assert request is not None
    begin, finish = datetime.fromisoformat(start), datetime.fromisoformat(end)
    probed = 0
    for first in (begin, begin + (finish - begin) / 3):
        with PrometheusSource(url) as source, warnings.catch_warnings():
            warnings.simplefilter("ignore", PrometheusWarning)  # the probes' empty answers
            checked = pushed_samples(source, request, first, finish, DEFAULT_VARIANTS)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(promql._Answers, "sums_if_regular", lambda self, selector: False)
                forced = pushed_samples(source, request, first, finish, DEFAULT_VARIANTS)
        assert forced.probed == len(request.counters)
        assert checked.frame.equals(forced.frame), (url, first)
        probed += checked.probed
    return probed


@pytest.mark.prometheus
def test_variants_by_selectors_push_down_as_well(synthetic_prometheus):
    loaded = [
        load_judge_input(
            PROFILE,
            prometheus=synthetic_prometheus.url,
            start=SYNTHETIC_START.isoformat(),
            end=SYNTHETIC_END.isoformat(),
            canary_selector='track="canary"',
            control_selector='track="stable"',
            raw=raw,
            metric_names=gate_metric_names(PROFILE),
        )
        for raw in (True, False)
    ]
    window = loaded[0].resolved_window()
    raw, pushed = (_gate_inputs(data, window) for data in loaded)
    assert any(frame is not None for frame in raw.values())
    for gate, frame in raw.items():
        assert (frame is None) == (pushed[gate] is None), gate
        assert frame is None or frame.equals(pushed[gate]), gate
