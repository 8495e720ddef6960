"""OpenMetrics / Prometheus text source: what real exporters write, and bad lines named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from wsanalysis.errors import DataError
from wsanalysis.sources.openmetrics import read_openmetrics, write_openmetrics
from wsanalysis.sources.variants import VariantMapping

STRICT = """\
# HELP ws_connections Connections opened.
# TYPE ws_connections counter
# UNIT ws_connections connections
ws_connections_total{variant="canary",pod="a"} 5 1700000000
ws_connections_created{variant="canary",pod="a"} 1699990000 1700000000
ws_connections_total{variant="canary",pod="a"} 7 1700000015.5 # {trace_id="abc"} 1.0 1700000010
# TYPE ws_ttfb_seconds histogram
ws_ttfb_seconds_bucket{variant="control",le="0.5"} 3 1700000000
ws_ttfb_seconds_bucket{variant="control",le="+Inf"} 4 1700000000
ws_ttfb_seconds_sum{variant="control"} 1.75 1700000000
ws_ttfb_seconds_count{variant="control"} 4 1700000000
# EOF
"""


def test_strict_openmetrics_reads_counters_histograms_and_drops_created():
    frame = read_openmetrics(STRICT)
    assert frame.schema["timestamp"] == pl.Datetime("ms", "UTC")
    assert set(frame["metric"]) == {
        "ws_connections_total",
        "ws_ttfb_seconds_bucket",
        "ws_ttfb_seconds_sum",
        "ws_ttfb_seconds_count",
    }
    counter = frame.filter(pl.col("metric") == "ws_connections_total")
    assert counter["value"].to_list() == [5.0, 7.0]
    assert counter["timestamp"].to_list() == [
        datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        datetime(2023, 11, 14, 22, 13, 35, 500000, tzinfo=UTC),
    ]
    assert counter["pod"].to_list() == ["a", "a"] and counter["variant"].unique().to_list() == [
        "canary"
    ]
    assert "variant" in frame.columns and frame.columns[:4] == [
        "timestamp",
        "metric",
        "variant",
        "value",
    ]
    inf_bucket = frame.filter(pl.col("le") == "+Inf")
    assert inf_bucket["value"].item() == 4.0


def test_created_samples_kept_on_request():
    frame = read_openmetrics(STRICT, keep_created=True)
    assert "ws_connections_created" in set(frame["metric"])


def test_prometheus_text_format_uses_milliseconds_and_special_values():
    text = (
        '# TYPE up gauge\nup{variant="control",job="x"} 1 1700000000000\n'
        'temp{variant="canary"} NaN 1700000001000\n'
        'temp{variant="canary"} +Inf 1700000002000\n'
        'temp{variant="canary"} -Inf 1700000003000\n'
    )
    frame = read_openmetrics(text)
    up = frame.filter(pl.col("metric") == "up")
    assert up["timestamp"].item() == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    temp = frame.filter(pl.col("metric") == "temp")["value"].to_list()
    assert temp[0] != temp[0] and temp[1] == float("inf") and temp[2] == float("-inf")


def test_escaped_label_values_and_braces_inside_quotes():
    text = 'm{variant="a",reason="say \\"hi\\" {x}\\nbye",path="C:\\\\tmp"} 1 10\n# EOF\n'
    frame = read_openmetrics(text)
    assert frame["reason"].item() == 'say "hi" {x}\nbye'
    assert frame["path"].item() == "C:\\tmp"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ws_x{variant=canary} 1 10", "cannot read labels"),
        ('ws_x{variant="a"} one 10', "value is not a number"),
        ('ws_x{variant="a"} 1 noon', "timestamp is not a number"),
        ('ws_x{variant="a" 1 10', "not a sample line"),
        ('ws_x{variant="a"} 1', "no timestamp"),
        ('ws_x{a="1",a="2"} 1 10', "appears twice"),
    ],
)
def test_malformed_line_names_line_number_and_problem(line, message):
    text = f'# TYPE ok gauge\nok{{variant="a"}} 1 10\n{line}\n# EOF\n'
    with pytest.raises(DataError) as raised:
        read_openmetrics(text)
    assert "line 3" in str(raised.value) and message in str(raised.value)
    assert raised.value.fix  # says what to do


def test_text_after_eof_is_an_error():
    with pytest.raises(DataError, match="after # EOF"):
        read_openmetrics('a{variant="x"} 1 10\n# EOF\nb 2 3\n')


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        read_openmetrics(tmp_path / "nope.om")


def test_scrape_without_timestamps_takes_the_scrape_time():
    when = datetime(2026, 1, 1, tzinfo=UTC)
    frame = read_openmetrics("ws_connections_active 3\n", timestamp=when, format="prometheus")
    assert frame["timestamp"].item() == when and frame["variant"].item() is None


def test_round_trip_write_then_read_is_identical(tmp_path: Path):
    frame = read_openmetrics(STRICT)
    path = tmp_path / "metrics.om"
    write_openmetrics(frame, path)
    text = path.read_text()
    assert text.endswith("# EOF\n")
    assert "# TYPE ws_ttfb_seconds histogram" in text
    assert "# TYPE ws_connections counter" in text
    assert read_openmetrics(path).equals(frame)


def test_round_trip_gzip(tmp_path: Path):
    frame = read_openmetrics(STRICT)
    write_openmetrics(frame, tmp_path / "metrics.om.gz")
    assert read_openmetrics(tmp_path / "metrics.om.gz").equals(frame)


def test_window_and_metric_filters_are_inclusive():
    text = "".join(f'm{{variant="a"}} {i} {i}\n' for i in range(10)) + "# EOF\n"
    frame = read_openmetrics(
        text,
        start=datetime.fromtimestamp(3, UTC),
        end=datetime.fromtimestamp(6, UTC),
        metrics=["m"],
    )
    assert frame["value"].to_list() == [3.0, 4.0, 5.0, 6.0]
    assert read_openmetrics(text, metrics=["other"]).is_empty()


def test_variants_by_selector_and_by_renamed_label():
    text = 'm{track="canary"} 1 1\nm{track="stable"} 2 1\nm{track="beta"} 3 1\n# EOF\n'
    by_selector = read_openmetrics(
        text,
        variants=VariantMapping.by_selectors(
            {"canary": 'track="canary"', "control": '{track=~"stable"}'}
        ),
    )
    assert dict(zip(by_selector["value"], by_selector["variant"], strict=True)) == {
        1.0: "canary",
        2.0: "control",
        3.0: None,
    }
    by_label = read_openmetrics(
        text, variants=VariantMapping(label="track", rename={"stable": "control"})
    )
    assert "track" not in by_label.columns
    assert sorted(by_label["variant"].to_list()) == ["beta", "canary", "control"]
