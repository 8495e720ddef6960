"""Partial or empty data: the detectors that can run, run; the others say why not."""

from __future__ import annotations

from datetime import timedelta

from tests.incident.conftest import DATA, loaded
from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.inputs import from_frames, load_dataset


def test_server_metrics_only():
    full = loaded("deploy_restart")
    result = analyze(from_frames(full.samples, None))
    skipped = {n.detector for n in result.not_run}
    assert {"herd", "delivery", "survival", "ttfb"} <= skipped
    assert all(n.reason for n in result.not_run)
    assert {f.variant for f in result.of_kind("server_restart")} == {"canary", "control"}


def test_rum_only():
    full = loaded("reconnect_storm")
    result = analyze(from_frames(None, full.beacons))
    storms = result.of_kind("reconnect_storm")
    assert storms and storms[0].numbers["source"] == "rum"


def test_server_only_outage_from_active_connections():
    full = loaded("network_outage")
    outages = analyze(from_frames(full.samples, None)).of_kind("network_outage")
    assert {f.variant for f in outages} >= {"control"}


def test_empty_window():
    result = load_dataset(DATA / "sample", start="2030-01-01T00:00:00Z", end="2030-01-02T00:00:00Z")
    analysis = analyze(result)
    assert analysis.findings == []
    assert analysis.not_run and "no server samples" in analysis.not_run[0].reason


def test_narrowed_window_keeps_only_what_is_inside():
    full = loaded("network_outage")
    start = full.window.start
    data = load_dataset(
        DATA / "network_outage",
        start=start.isoformat(),
        end=(start + timedelta(hours=2)).isoformat(),
    )
    assert analyze(data).of_kind("network_outage") == []
