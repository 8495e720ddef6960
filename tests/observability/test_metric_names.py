"""One place for the telemetry contract's metric names: what reads them agrees with it."""

from __future__ import annotations

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.observability import promql
from wsanalysis.reference.server import ServerMetrics
from wsanalysis.sources import metric_names as names


def contract_series() -> set[str]:
    """Every series name the contract exposes (histograms as _bucket, _count, _sum)."""
    series = {names.CONNECTIONS_ACTIVE, *names.COUNTERS}
    for family in names.HISTOGRAMS:
        series |= {f"{family}_bucket", f"{family}_count", f"{family}_sum"}
    return series


def test_the_reference_server_exposes_exactly_the_contract() -> None:
    metrics = ServerMetrics()
    metrics.opened(0.0, 1)
    metrics.closed(1.0, 1, 1006, "abnormal")
    metrics.frame_sent("typing")
    metrics.advice("restart")
    assert {name for name, _, _ in metrics.samples()} == contract_series()
    assert set(names.COUNTER_LABELS) == set(names.COUNTERS)


def test_every_series_the_default_gates_read_is_in_the_contract() -> None:
    read = set()
    for profile in load_gate_file().profiles.values():
        for gate in profile.gates:
            for source in (gate.events, gate.exposure, gate.samples):
                if source is None:
                    continue
                read |= {series.metric for series in source.prometheus}
                if source.histogram:
                    read.add(f"{source.histogram}_bucket")
    assert read, "the default gate file reads no server series?"
    assert read <= contract_series(), read - contract_series()


def test_recorded_rates_cover_every_counter_of_the_contract() -> None:
    assert set(promql.COUNTERS) == set(names.COUNTERS)
    assert set(promql.RECORDED["5m"]) == set(names.COUNTERS)
