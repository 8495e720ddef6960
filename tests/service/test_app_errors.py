"""Failures answer as errors, never as verdicts: a dead Prometheus is 503, a bug inside the
judge is 500 with `verdict: null`, and neither makes Flagger's rollback hook answer 200."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from wsanalysis.loading import Inputs, Loaded
from wsanalysis.service import canary_looks
from wsanalysis.service.app import create_app
from wsanalysis.sources.schema import empty_samples

TOKEN = "unit-test-token-0123456789"
LOOK = {"id": "c1", "start": "2026-11-02T06:00:00Z", "end": "2026-11-02T07:00:00Z"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client(tmp_path: Path, prometheus: str = "http://127.0.0.1:9") -> TestClient:
    app = create_app(prometheus=prometheus, state=tmp_path / "s.sqlite", token=TOKEN)
    return TestClient(app)


def test_an_unreachable_prometheus_is_503_not_a_verdict(tmp_path: Path):
    with client(tmp_path) as http:
        answer = http.post("/v1/judge", json=LOOK, headers=AUTH)
        assert answer.status_code == 503 and answer.json()["verdict"] is None
        assert "127.0.0.1:9" in answer.json()["error"]
        payload = {"name": "c", "namespace": "n", "phase": "Progressing", "checksum": "x",
                   "metadata": {**LOOK, "token": TOKEN}}  # fmt: skip
        assert http.post("/v1/flagger/rollback", json=payload).status_code == 503
        assert http.get("/healthz").json()["status"] == "ok"
        assert 'wsanalysis_judge_errors_total{kind="prometheus"} 2.0' in http.get("/metrics").text


def nothing_read(source, reads) -> Loaded:
    """A server that holds no series (what the judge then sees: no data)."""
    return Loaded(empty_samples(), None, None, Inputs(source.origin()))


def test_a_bug_inside_the_judge_is_500_and_the_canary_keeps_no_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("injected inside the judge")

    monkeypatch.setattr(canary_looks, "load", nothing_read)
    monkeypatch.setattr(canary_looks, "judge", broken)
    with client(tmp_path) as http:
        answer = http.post("/v1/judge", json=LOOK, headers=AUTH)
        assert answer.status_code == 500 and answer.json()["verdict"] is None
        assert "ZeroDivisionError" in answer.json()["error"]
        monkeypatch.undo()
        monkeypatch.setattr(canary_looks, "load", nothing_read)
        answer = http.post("/v1/judge", json=LOOK, headers=AUTH)  # nothing was half-stored
        assert answer.status_code == 200 and answer.json()["looks"] == 1
        assert answer.json()["verdict"] == "INCONCLUSIVE"  # no data is never a GO
