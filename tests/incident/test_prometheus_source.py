"""The incident command against a real Prometheus holding the bundled sample dataset."""

from __future__ import annotations

import json

from tests.incident.conftest import DATA
from wsanalysis.cli import main
from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.inputs import load_prometheus

START, END = "2026-11-02T06:00:00Z", "2026-11-02T12:00:00Z"


def test_restart_found_from_prometheus_alone(sample_prometheus):
    data = load_prometheus(sample_prometheus.url, START, END)
    assert data.has_server and not data.has_rum
    result = analyze(data)
    restarts = [f for f in result.of_kind("server_restart") if f.variant == "canary"]
    assert restarts and restarts[0].start.strftime("%H:%M") in ("09:59", "10:00")
    assert "herd" in {n.detector for n in result.not_run}


def test_incident_command_with_prometheus_and_rum(sample_prometheus, tmp_path):
    out = tmp_path / "findings.json"
    code = main([
        "incident", "--prometheus", sample_prometheus.url, "--start", START, "--end", END,
        "--rum", str(DATA / "sample" / "rum.ndjson.gz"), "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    document = json.loads(out.read_text())
    assert document["inputs"]["prometheus"] == sample_prometheus.url
    assert "server_restart" in {f["kind"] for f in document["findings"]}
    assert "herd" not in {n["detector"] for n in document["not_run"]}


def test_prometheus_needs_a_window(tmp_path):
    assert main(["incident", "--prometheus", "http://127.0.0.1:9", "--out",
                 str(tmp_path / "f.json")]) == 3  # fmt: skip
