"""Each rule of OpenMetrics 1.0 and of the Prometheus text format: a valid and a broken case.

The cases are our own, written from the specification's text (prometheus/docs,
docs/specs/om/open_metrics_spec.md; the Prometheus exposition format 0.0.4). A broken
case must raise a DataError naming the line and the rule; lenient mode drops the line
and counts it under the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.om_rules import RULES
from wsanalysis.sources.openmetrics import load_openmetrics, read_openmetrics

SCRAPE = datetime(2026, 1, 1, tzinfo=UTC)


def _read(text: str, format: str = "openmetrics", **options):
    return read_openmetrics(text, format=format, timestamp=SCRAPE, **options)


def _broken(text: str, rule: str, line: int, format: str = "openmetrics") -> None:
    with pytest.raises(DataError) as raised:
        _read(text, format)
    message = str(raised.value)
    assert f"[rule {rule}]" in message, message
    assert f"line {line}:" in message, message


HISTOGRAM = """\
# TYPE h histogram
h_bucket{le="0.5"} 1
h_bucket{le="1.0"} 3
h_bucket{le="+Inf"} 4
h_count 4
h_sum 2.5
# EOF
"""

SUMMARY_POINTS = """\
# TYPE foo_seconds summary
# UNIT foo_seconds seconds
foo_seconds_count{a="bb"} 0 123
foo_seconds_sum{a="bb"} 0 123
foo_seconds_count{a="bb"} 0 456
foo_seconds_sum{a="bb"} 0 456
foo_seconds_count{a="ccc"} 0 123
foo_seconds_sum{a="ccc"} 0 123
foo_seconds_count{a="ccc"} 0 456
foo_seconds_sum{a="ccc"} 0 456
# EOF
"""
SUMMARY_POINTS_INTERLEAVED = """\
# TYPE foo_seconds summary
# UNIT foo_seconds seconds
foo_seconds_count{a="bb"} 0 123
foo_seconds_count{a="ccc"} 0 123
foo_seconds_count{a="bb"} 0 456
foo_seconds_count{a="ccc"} 0 456
# EOF
"""
# each series forward in time, the Metric's points not: 456 then 123 (line 4)
SUMMARY_POINTS_BACKWARDS = """\
# TYPE foo_seconds summary
foo_seconds_count{a="bb"} 0 123
foo_seconds_count{a="bb"} 0 456
foo_seconds_sum{a="bb"} 0 123
foo_seconds_sum{a="bb"} 0 456
foo_seconds_count{a="bb"} 0 789
foo_seconds_sum{a="bb"} 0 789
# EOF
"""

# rule -> (valid text, broken text, line of the broken case)
OPENMETRICS_CASES: dict[str, tuple[str, str, int]] = {
    "families-contiguous": (
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 2\n# EOF\n",
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 2\na 3\n# EOF\n",
        5,
    ),
    "metadata-repeated": (
        "# TYPE a gauge\n# HELP a x\na 1\n# EOF\n",
        "# TYPE a gauge\n# TYPE a gauge\na 1\n# EOF\n",
        2,
    ),
    "metadata-after-samples": (
        "# TYPE a gauge\n# HELP a early\na 1\n# EOF\n",
        "# TYPE a gauge\na 1\n# HELP a late\n# EOF\n",
        3,
    ),
    "type-unknown": ("# TYPE a unknown\na 1\n# EOF\n", "# TYPE a untyped\na 1\n# EOF\n", 1),
    "unit-suffix": (
        "# TYPE foo_seconds counter\n# UNIT foo_seconds seconds\nfoo_seconds_total 1\n# EOF\n",
        "# TYPE foo counter\n# UNIT foo seconds\nfoo_total 1\n# EOF\n",
        2,
    ),
    "unit-type": (
        '# TYPE s stateset\ns{s="a"} 1\n# EOF\n',
        '# TYPE s_x stateset\n# UNIT s_x x\ns_x{s_x="a"} 1\n# EOF\n',
        1,
    ),
    "help-escape": (
        '# TYPE a gauge\n# HELP a Some text and \\n some \\" escaping \\\\ here\na 1\n# EOF\n',
        "# TYPE a gauge\n# HELP a a bad \\q escape\na 1\n# EOF\n",
        2,
    ),
    "metadata-syntax": ("# TYPE a_b:c gauge\na_b:c 1\n# EOF\n", "# TYPE 9a gauge\n# EOF\n", 1),
    "comment": (
        "# TYPE a gauge\na 1\n# EOF\n",
        "# TYPE a gauge\n# a plain comment\na 1\n# EOF\n",
        2,
    ),
    "blank-line": ("a 1\nb 2\n# EOF\n", "a 1\n\nb 2\n# EOF\n", 2),
    "sample-name": (
        "# TYPE a counter\na_total 1\na_created 1700000000\n# EOF\n",
        "# TYPE a counter\na 1\n# EOF\n",
        2,
    ),
    "family-clash": (
        "# TYPE a counter\na_total 1\n# TYPE b gauge\nb 2\n# EOF\n",
        "# TYPE a counter\na_total 1\n# TYPE a_total gauge\na_total 2\n# EOF\n",
        3,
    ),
    "counter-value": (
        "# TYPE a counter\na_total 0\na_total 1.5e3 1\n# EOF\n",
        "# TYPE a counter\na_total -1\n# EOF\n",
        2,
    ),
    "histogram-le": (HISTOGRAM, HISTOGRAM.replace('le="1.0"', 'le="one"'), 3),
    "histogram-value": (
        HISTOGRAM,
        HISTOGRAM.replace('h_bucket{le="0.5"} 1', 'h_bucket{le="0.5"} -1'),
        2,
    ),
    "histogram-inf": (
        HISTOGRAM,
        HISTOGRAM.replace('h_bucket{le="+Inf"} 4\n', "").replace("h_count 4\nh_sum 2.5\n", ""),
        2,
    ),
    "histogram-le-order": (
        HISTOGRAM,
        HISTOGRAM.replace('le="0.5"} 1\nh_bucket{le="1.0"} 3', 'le="1.0"} 3\nh_bucket{le="0.5"} 1'),
        3,
    ),
    "histogram-cumulative": (HISTOGRAM, HISTOGRAM.replace('le="1.0"} 3', 'le="1.0"} 0'), 3),
    "histogram-count": (HISTOGRAM, HISTOGRAM.replace("h_count 4", "h_count 5"), 2),
    "histogram-sum": (HISTOGRAM, HISTOGRAM.replace("h_count 4\n", ""), 2),
    "summary-quantile": (
        '# TYPE s summary\ns{quantile="0.95"} 1.5\ns_count 3\ns_sum 4\n# EOF\n',
        '# TYPE s summary\ns{quantile="1.5"} 1.5\n# EOF\n',
        2,
    ),
    "summary-value": (
        '# TYPE s summary\ns{quantile="0.5"} NaN\ns_count 0\n# EOF\n',
        '# TYPE s summary\ns{quantile="0.5"} -2\n# EOF\n',
        2,
    ),
    "stateset-label": (
        '# TYPE s stateset\ns{s="a"} 0\ns{s="b"} 1\n# EOF\n',
        '# TYPE s stateset\ns{state="a"} 1\n# EOF\n',
        2,
    ),
    "stateset-value": (
        '# TYPE s stateset\ns{s="a"} 1.0\n# EOF\n',
        '# TYPE s stateset\ns{s="a"} 2\n# EOF\n',
        2,
    ),
    "info-value": (
        '# TYPE i info\ni_info{version="8.2.7"} 1\n# EOF\n',
        '# TYPE i info\ni_info{version="8.2.7"} 2\n# EOF\n',
        2,
    ),
    "exemplar-place": (
        '# TYPE a counter\na_total 1 # {trace_id="KOO5S4vxi0o"} 0.67 1520879607.789\n# EOF\n',
        '# TYPE a gauge\na 1 # {trace_id="KOO5S4vxi0o"} 0.67\n# EOF\n',
        2,
    ),
    "exemplar-syntax": (
        HISTOGRAM.replace('le="0.5"} 1', 'le="0.5"} 1 # {} 0.054'),
        "# TYPE a counter\na_total 1 # {trace_id=x} 0.67\n# EOF\n",
        2,
    ),
    "timestamp-finite": ("a 1 1700000000.5\n# EOF\n", "a 1 NaN\n# EOF\n", 1),
    "timestamp-order": ("a 1 10\na 2 20\n# EOF\n", "a 1 20\na 2 10\n# EOF\n", 2),
    # om[metric.nointerleave]: the specification's correct and incorrect examples
    "metric-interleaved": (SUMMARY_POINTS, SUMMARY_POINTS_INTERLEAVED, 5),
    "metricpoint-order": (SUMMARY_POINTS, SUMMARY_POINTS_BACKWARDS, 4),
    "duplicate-sample": (
        'a{x="1"} 1 10\na{x="2"} 2 10\n# EOF\n',
        'a{x="1"} 1 10\na{x="1"} 2 10\n# EOF\n',
        2,
    ),
    "after-eof": ("a 1\n# EOF\n", "a 1\n# EOF\nb 2\n", 3),
    "eof-missing": ("a 1\n# EOF", "a 1\n", 2),
    "sample-syntax": ("a 1\n# EOF\n", "a 1 2 3\n# EOF\n", 1),
    "value-number": ("a 1\n# EOF\n", "a one\n# EOF\n", 1),
    "timestamp-number": ("a 1 10\n# EOF\n", "a 1 ten\n# EOF\n", 1),
    "label-syntax": ('a{x="1",y="2"} 1\n# EOF\n', 'a{x="1",x="2"} 1\n# EOF\n', 1),
}


def test_every_rule_has_a_case() -> None:
    covered = set(OPENMETRICS_CASES) | {"timestamp-missing"}
    assert covered == set(RULES)


@pytest.mark.parametrize("rule", sorted(OPENMETRICS_CASES))
def test_openmetrics_rule(rule: str) -> None:
    valid, broken, line = OPENMETRICS_CASES[rule]
    _read(valid)  # the valid case reads
    _broken(broken, rule, line)


def test_a_sample_without_timestamp_needs_the_scrape_time() -> None:
    with pytest.raises(DataError, match=r"line 1: .*\[rule timestamp-missing\]"):
        read_openmetrics("a 1\n# EOF\n")


@pytest.mark.parametrize(
    "kind", ["counter", "gauge", "histogram", "gaugehistogram", "summary", "unknown"]
)
def test_every_openmetrics_type_is_a_type(kind: str) -> None:
    _read(f"# TYPE a {kind}\n# EOF\n")


def test_gaugehistogram_and_spec_example_read() -> None:
    text = """\
# TYPE foo gaugehistogram
foo_bucket{le="0.01"} 20.0
foo_bucket{le="0.1"} 25.0
foo_bucket{le="1"} 34.0
foo_bucket{le="10"} 34.0
foo_bucket{le="+Inf"} 42.0
foo_gcount 42.0
foo_gsum 3289.3
# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
# EOF
"""
    frame = _read(text)
    assert frame.filter(frame["metric"] == "foo_gcount")["value"].to_list() == [42.0]


def test_the_backfill_layout_keeps_each_point_whole() -> None:
    """Series together in time order (promtool's backfill layout): points checked wherever
    their lines are, so a decrease between two points' buckets is still found."""
    good = """\
# TYPE h histogram
h_bucket{le="+Inf"} 4 10
h_bucket{le="+Inf"} 6 20
h_bucket{le="1.0"} 3 10
h_bucket{le="1.0"} 5 20
h_count 4 10
h_count 6 20
h_sum 2 10
h_sum 3 20
# EOF
"""
    assert _read(good).height == 8
    _broken(good.replace('le="1.0"} 5 20', 'le="1.0"} 7 20'), "histogram-cumulative", 3)


def test_interleaved_scrapes_of_a_counter_are_refused_and_dropped_when_lenient() -> None:
    """Two scrapes concatenated: each Metric's second point comes after the other Metric's."""
    text = (
        "# TYPE a counter\n"
        'a_total{v="1"} 1 10\n'
        'a_total{v="2"} 5 10\n'
        'a_total{v="1"} 2 20\n'
        'a_total{v="2"} 6 20\n'
        "# EOF\n"
    )
    _broken(text, "metric-interleaved", 4)
    load = load_openmetrics(text, lenient=True)
    assert load.dropped == {"metric-interleaved": 2}
    assert load.frame["value"].to_list() == [1.0, 5.0]
    # the same samples series by series (the backfill layout) read whole
    ordered = "".join(sorted(text.splitlines(keepends=True)[1:5], key=lambda t: t[:12]))
    assert _read("# TYPE a counter\n" + ordered + "# EOF\n").height == 4


def test_the_spec_example_of_interleaved_points_is_the_backfill_layout_and_reads() -> None:
    """The allowance, on purpose: `_count` t1, `_count` t2, `_sum` t1, `_sum` t2."""
    text = SUMMARY_POINTS_BACKWARDS.rsplit("foo_seconds_count", 1)[0] + "# EOF\n"
    assert _read(text).height == 4


DATASETS = sorted((Path(__file__).parents[2] / "data").glob("*/metrics.om*"))


@pytest.mark.parametrize("path", DATASETS, ids=lambda p: p.parent.name)
def test_every_bundled_dataset_keeps_every_rule(path: Path) -> None:
    load = load_openmetrics(path)
    assert load.frame.height > 0 and not load.dropped


PROMETHEUS_CASES: dict[str, tuple[str, str, int]] = {
    "families-contiguous": (
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 2\n",
        "# TYPE a gauge\na 1\nb 2\na 3\n",
        4,
    ),
    "metadata-repeated": ("# TYPE a gauge\na 1\n", "# HELP a x\n# HELP a y\na 1\n", 2),
    "metadata-after-samples": ("# TYPE a gauge\na 1\n", "a 1\n# TYPE a gauge\n", 2),
    "type-unknown": ("# TYPE a untyped\na 1\n", "# TYPE a stateset\na 1\n", 1),
    "help-escape": ("# HELP a back \\\\ slash\na 1\n", '# HELP a not \\" here\na 1\n', 1),
    "counter-value": (
        "# TYPE a_total counter\na_total 3\n",
        "# TYPE a_total counter\na_total NaN\n",
        2,
    ),
    "histogram-inf": (
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 1\n',
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\nh_sum 1\n',
        2,
    ),
    "histogram-count": (
        '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 2\nh_sum 1\n',
        '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\nh_sum 1\n',
        2,
    ),
    "exemplar-place": ("a 1 1700000000000\n", "a 1 1700000000000 # a comment\n", 1),
    "timestamp-order": ("a 1 10\na 2 20\n", "a 1 20\na 2 10\n", 2),
    "duplicate-sample": ("a 1\nb 1\n", "a 1\na 2\n", 2),
}


@pytest.mark.parametrize("rule", sorted(PROMETHEUS_CASES))
def test_prometheus_rule(rule: str) -> None:
    valid, broken, line = PROMETHEUS_CASES[rule]
    _read(valid, "prometheus")
    _broken(broken, rule, line, "prometheus")


def test_prometheus_allows_comments_and_blank_lines() -> None:
    text = "# a comment\n\n# TYPE a counter\n# HELP a things \\\\ done\na 1 1700000000000\n\n"
    assert _read(text, "prometheus")["value"].to_list() == [1.0]


def test_lenient_mode_drops_broken_lines_and_counts_them_by_rule() -> None:
    text = (
        "# TYPE a counter\n"
        "a_total 1 10\n"
        "a_total -1 20\n"  # counter-value
        "a_total 3 15\n"  # timestamp-order
        "# TYPE b gauge\n"
        "b one 10\n"  # value-number
        "b 2 10\n"
        "# a comment\n"  # comment
        "# EOF\n"
    )
    with pytest.raises(DataError, match=r"line 3: .*\[rule counter-value\]"):
        read_openmetrics(text)
    load = load_openmetrics(text, lenient=True)
    assert load.frame["value"].to_list() == [1.0, 2.0]
    assert dict(load.dropped) == {
        "counter-value": 1,
        "timestamp-order": 1,
        "value-number": 1,
        "comment": 1,
    }
    assert load.dropped_lines == 4
    assert "counter-value" in load.summary() and "line 3" in load.summary()
    assert read_openmetrics(text, lenient=True).equals(load.frame)


def test_lenient_mode_drops_a_broken_histogram_point_whole() -> None:
    text = HISTOGRAM.replace("h_count 4", "h_count 5").replace("# EOF\n", "g 1\n# EOF\n")
    load = load_openmetrics(text, lenient=True, timestamp=SCRAPE)
    assert load.frame["metric"].to_list() == ["g"]
    assert load.dropped == {"histogram-count": 5}


def test_text_or_path_never_a_guess(tmp_path: Path) -> None:
    assert read_openmetrics("").is_empty()  # an empty text, not the folder `.`
    with pytest.raises(DataError, match=r"\[rule eof-missing\]"):
        read_openmetrics("", format="openmetrics")
    with pytest.raises(DataError, match=r"\[rule sample-syntax\]"):
        read_openmetrics("metrics.om")  # a str is text: no file is opened
    path = tmp_path / "metrics.om"
    path.write_text("a 1 10\n# EOF\n")
    assert read_openmetrics(path)["value"].to_list() == [1.0]
    assert read_openmetrics(path.read_bytes()).equals(read_openmetrics(path))
    with pytest.raises(DataError, match="does not exist"):
        read_openmetrics(tmp_path)  # a folder is no metrics file
    with pytest.raises(UsageError, match="pathlib.Path"):
        read_openmetrics(42)  # type: ignore[arg-type]
