"""Thanos/Mimir behaviour, through a fault-injecting proxy in front of a real Prometheus."""

from __future__ import annotations

import polars as pl
import pytest

from tests.prometheus.fixtures import SAMPLE_DATASET
from tests.pushdown.fault_proxy import FaultProxy, Faults
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import load_judge_input
from wsanalysis.canary.judge import judge
from wsanalysis.canary.reads import gate_metric_names
from wsanalysis.sources.openmetrics import read_openmetrics
from wsanalysis.sources.prometheus import PrometheusSource

PROFILE = load_gate_file(None).profile("canary")
FAMILY = "ws_assistant_ttfb_seconds_bucket"  # the p95 TTFB gate passes on the sample


@pytest.fixture(scope="module")
def window() -> tuple[str, str]:
    stamps = read_openmetrics(SAMPLE_DATASET / "metrics.om")["timestamp"]
    return stamps.min().isoformat(), stamps.max().isoformat()


def _judge(url: str, window: tuple[str, str], raw: bool = False):
    data = load_judge_input(
        PROFILE,
        prometheus=url,
        start=window[0],
        end=window[1],
        raw=raw,
        metric_names=gate_metric_names(PROFILE),
    )
    return judge(PROFILE, data)


@pytest.mark.prometheus
@pytest.mark.parametrize("raw", [False, True])
def test_a_warning_makes_the_gates_it_touches_inconclusive(sample_prometheus, window, raw):
    clean = _judge(sample_prometheus.url, window, raw)
    faults = Faults(warn_when=FAMILY)
    with FaultProxy(sample_prometheus.url, faults) as proxy:
        warned = _judge(proxy.url, window, raw)
    assert faults.seen and all(p.get("partial_response") == "false" for p in faults.seen)
    touched = {g.name for g in PROFILE.gates if FAMILY in g.server_series}
    assert touched
    for before, after in zip(clean.gates, warned.gates, strict=True):
        uses_server = before.evidence.source in ("prometheus", "histogram")
        if (before.name in touched or raw) and uses_server and before.decision != "no_data":
            assert after.decision == "inconclusive", after.name
            assert faults.warning in after.sentence
        else:
            assert after.decision == before.decision, after.name
    assert any(g.decision == "pass" for g in clean.gates if g.name in touched)  # no silent pass
    assert warned.overall != "GO"


@pytest.mark.prometheus
def test_too_many_samples_splits_the_range_and_gets_the_same_answer(sample_prometheus, window):
    query = "sum by (variant, code) (increase(ws_closes_total[5m]))"
    with PrometheusSource(sample_prometheus.url) as direct:
        expected = direct.query_range(query, window[0], window[1], "60s")
    faults = Faults(max_steps=100)
    with FaultProxy(sample_prometheus.url, faults) as proxy, PrometheusSource(proxy.url) as source:
        got = source.query_range(query, window[0], window[1], "60s")
    assert faults.refused >= 1 and len(faults.seen) > faults.refused + 1
    assert got.height == expected.height > 0
    assert got.sort(pl.all()).equals(expected.sort(pl.all()))


@pytest.mark.prometheus
def test_a_raw_read_over_the_limit_is_split_by_the_same_rule(sample_prometheus, window):
    """`--raw` reads chunks with range-vector instant queries: a chunk refused for "too
    many samples" is read in halves, and every sample still comes back exactly once."""
    selector = '{__name__=~"' + "|".join(gate_metric_names(PROFILE)) + '"}'
    with PrometheusSource(sample_prometheus.url) as direct:
        expected = direct.read_samples(selector, window[0], window[1])
    faults = Faults(max_range_ms=20 * 60_000)  # chunks are 2 h: each needs 3 halvings
    with FaultProxy(sample_prometheus.url, faults) as proxy, PrometheusSource(proxy.url) as source:
        got = source.read_samples(selector, window[0], window[1])
    assert faults.refused >= 7 and len(faults.seen) > faults.refused + 8
    assert expected.height > 0
    assert got.equals(expected)
