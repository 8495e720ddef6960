"""The Prometheus source against a real prometheus: same frame as the file source."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from tests.prometheus.fixtures import (
    OFFSET_SERIES,
    SAMPLE_DATASET,
    SYNTHETIC_END,
    SYNTHETIC_START,
)
from wsanalysis.errors import PromQLError, UsageError
from wsanalysis.sources.local_prometheus import LocalPrometheus
from wsanalysis.sources.openmetrics import read_openmetrics
from wsanalysis.sources.prometheus import PrometheusSettings, PrometheusSource, PrometheusWarning
from wsanalysis.sources.variants import VariantMapping

EVERYTHING = '{__name__=~".+"}'
BY_TRACK = VariantMapping.by_selectors({"canary": 'track="canary"', "control": 'track="stable"'})


def source(prometheus: LocalPrometheus, **settings: object) -> PrometheusSource:
    return PrometheusSource(PrometheusSettings(url=prometheus.url, **settings))  # type: ignore[arg-type]


def test_synthetic_dataset_reads_the_same_from_file_and_prometheus(
    synthetic_prometheus, synthetic_dataset
):
    from_file = read_openmetrics(synthetic_dataset / "metrics.om")
    end = SYNTHETIC_END + timedelta(seconds=1)  # the off-grid series ends 250 ms later
    from_server = source(synthetic_prometheus).read_samples(EVERYTHING, SYNTHETIC_START, end)
    assert from_server.schema == from_file.schema
    assert from_server.height == from_file.height == 20 * 481
    assert from_server.equals(from_file)
    offset = from_server.filter(pl.col("metric") == OFFSET_SERIES)["timestamp"]
    assert offset.dt.millisecond().unique().to_list() == [250]


def test_sample_dataset_reads_the_same_from_file_and_prometheus(sample_prometheus):
    from_file = read_openmetrics(SAMPLE_DATASET / "metrics.om")
    start, end = from_file["timestamp"].min(), from_file["timestamp"].max()
    with source(sample_prometheus) as prom:
        from_server = prom.read_samples(EVERYTHING, start, end)
    assert from_server.height == from_file.height > 0
    assert set(from_server["variant"]) == {"canary", "control"}
    assert from_server.equals(from_file)


@pytest.mark.parametrize("chunk", [timedelta(minutes=10), timedelta(minutes=7, seconds=13)])
def test_every_sample_comes_back_once_across_chunk_boundaries(
    synthetic_prometheus, synthetic_dataset, chunk
):
    # 10 min chunks end exactly on samples (the 2.x duplicate case); 7m13s ones do not.
    with source(synthetic_prometheus, chunk=chunk) as prom:
        frame = prom.read_samples("ws_connections_active", SYNTHETIC_START, SYNTHETIC_END)
    assert frame.height == 2 * 481
    assert frame.select(pl.struct("variant", "timestamp").n_unique()).item() == frame.height
    expected = read_openmetrics(synthetic_dataset / "metrics.om", metrics=["ws_connections_active"])
    assert frame.equals(expected)


def test_window_edges_are_inclusive_like_a_range_selector(synthetic_prometheus, synthetic_dataset):
    start = SYNTHETIC_START + timedelta(minutes=30)
    end = start + timedelta(minutes=5)
    with source(synthetic_prometheus, chunk=timedelta(minutes=1)) as prom:
        frame = prom.read_samples('ws_closes_total{code="1006"}', start, end)
    assert frame["timestamp"].min() == start and frame["timestamp"].max() == end
    assert frame.height == 2 * 21
    expected = read_openmetrics(
        synthetic_dataset / "metrics.om", metrics=["ws_closes_total"], start=start, end=end
    ).filter(pl.col("code") == "1006")
    assert frame.equals(expected)


def test_variants_by_selectors_match_the_file_source(synthetic_prometheus, synthetic_dataset):
    with source(synthetic_prometheus) as prom:
        frame = prom.read_samples(
            '{__name__=~"ws_closes_total|ws_connections_active"}',
            SYNTHETIC_START,
            SYNTHETIC_END,
            variants=BY_TRACK,
        )
    expected = read_openmetrics(
        synthetic_dataset / "metrics.om",
        variants=BY_TRACK,
        metrics=["ws_closes_total", "ws_connections_active"],
    )
    assert set(frame["variant"]) == {"canary", "control"}
    assert "track" in frame.columns
    assert frame.equals(expected)


def test_variant_label_with_rename(synthetic_prometheus, synthetic_dataset):
    mapping = VariantMapping(label="track", rename={"stable": "control"})
    with source(synthetic_prometheus) as prom:
        frame = prom.read_samples(
            "ws_connections_active", SYNTHETIC_START, SYNTHETIC_END, variants=mapping
        )
    expected = read_openmetrics(
        synthetic_dataset / "metrics.om", variants=mapping, metrics=["ws_connections_active"]
    )
    assert "track" not in frame.columns
    assert frame.equals(expected)


def test_series_without_a_variant_are_left_out_with_a_warning(synthetic_prometheus):
    mapping = VariantMapping.by_selectors({"canary": 'track="canary"'})
    with source(synthetic_prometheus) as prom:
        frame = prom.read_samples(
            "ws_connections_active", SYNTHETIC_START, SYNTHETIC_END, variants=mapping
        )
        assert frame["variant"].unique().to_list() == ["canary"]
        by_label = VariantMapping(label="no_such_label")
        with pytest.warns(PrometheusWarning, match="2 series matched .* but no variant"):
            empty = prom.read_samples(
                "ws_connections_active", SYNTHETIC_START, SYNTHETIC_END, variants=by_label
            )
    assert empty.height == 0


def test_labels_argument_keeps_only_the_named_label_columns(synthetic_prometheus):
    with source(synthetic_prometheus) as prom:
        frame = prom.read_samples(
            "ws_closes_total", SYNTHETIC_START, SYNTHETIC_END, labels=["code", "pod"]
        )
    assert frame.columns == ["timestamp", "metric", "variant", "value", "code", "pod"]
    assert sorted(frame["code"].unique()) == ["1000", "1006", "4401"]
    assert frame["pod"].null_count() == frame.height


def test_empty_window_gives_an_empty_frame_and_a_warning(synthetic_prometheus):
    with source(synthetic_prometheus) as prom, pytest.warns(PrometheusWarning, match="no samples"):
        frame = prom.read_samples(
            "ws_connections_active", "2020-01-01T00:00:00Z", "2020-01-01T06:00:00Z"
        )
    assert frame.height == 0
    assert frame.columns == ["timestamp", "metric", "variant", "value"]
    assert frame.schema["timestamp"] == pl.Datetime("ms", "UTC")


def test_query_range_gives_a_tidy_frame(synthetic_prometheus):
    with source(synthetic_prometheus) as prom:
        frame = prom.query_range(
            "sum by (variant, code) (rate(ws_closes_total[5m]))",
            SYNTHETIC_START + timedelta(minutes=10),
            SYNTHETIC_END,
            "1m",
        )
    assert frame.columns == ["timestamp", "value", "code", "variant"]
    assert frame.schema["code"] == pl.Utf8 and frame.schema["timestamp"] == pl.Datetime("ms", "UTC")
    assert frame.height == 6 * 111
    per_series = frame.group_by("variant", "code").len()["len"].unique().to_list()
    assert per_series == [111]
    assert frame["value"].min() > 0  # ~2 closes per 15 s


def test_query_range_longer_than_11000_steps_is_split_without_overlap(synthetic_prometheus):
    start, end = SYNTHETIC_START, SYNTHETIC_START + timedelta(hours=4)  # 14,401 steps of 1 s
    with source(synthetic_prometheus) as prom:
        frame = prom.query_range('ws_connections_active{variant="canary"}', start, end, 1)
    assert frame.height == 2 * 3600 + 300 + 1  # data ends at 2 h; lookback adds 5 min
    assert frame["timestamp"].is_unique().all()
    assert frame["metric"].unique().to_list() == ["ws_connections_active"]


def test_bad_promql_shows_prometheus_message(synthetic_prometheus):
    with source(synthetic_prometheus) as prom:
        with pytest.raises(PromQLError, match="unclosed left parenthesis") as caught:
            prom.query_range("sum(rate(ws_closes_total[5m])", SYNTHETIC_START, SYNTHETIC_END, 60)
        assert "sum(rate(ws_closes_total[5m])" in caught.value.problem
        with pytest.raises(PromQLError, match="at least one non-empty matcher"):
            prom.read_samples('{__name__=~".*"}', SYNTHETIC_START, SYNTHETIC_END)


def test_a_non_selector_is_a_usage_error_before_any_request(synthetic_prometheus):
    with source(synthetic_prometheus) as prom, pytest.raises(UsageError, match="query_range"):
        prom.read_samples("rate(ws_closes_total[5m])", SYNTHETIC_START, SYNTHETIC_END)


def test_a_variant_without_series_simply_has_no_rows(synthetic_prometheus):
    mapping = VariantMapping.by_selectors({"canary": 'track="canary"', "beta": 'track="beta"'})
    with source(synthetic_prometheus) as prom:
        frame = prom.read_samples(
            "ws_closes_total", SYNTHETIC_START, SYNTHETIC_END, variants=mapping
        )
    assert frame["variant"].unique().to_list() == ["canary"]
    assert frame.height == 3 * 481
