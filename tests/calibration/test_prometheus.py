"""`wsanalysis calibrate --prometheus`: a real Prometheus backfilled with a history whose
control runs on pods. Raw samples keep the pod label the splits need, so the calibration
is the one the dataset folder gives."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.prometheus.fixtures import require_prometheus
from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill

from .conftest import DATA, run_calibrate

HISTORY = DATA / "one_bad_pod"


@pytest.fixture(scope="module")
def pods_prometheus(tmp_path_factory) -> Iterator[LocalPrometheus]:
    require_prometheus()
    tsdb = tmp_path_factory.mktemp("one-bad-pod-tsdb")
    backfill(HISTORY, tsdb, replace=True)
    with LocalPrometheus(tsdb) as prometheus:
        yield prometheus


def _same_calibration(a: dict, b: dict) -> None:
    for key in ("replays", "verdicts", "gates", "plan", "false_no_go", "srm", "pods"):
        assert a[key] == b[key], key
    assert a["sentences"] == b["sentences"]


def test_calibrate_from_prometheus_is_calibrate_from_the_folder(pods_prometheus, tmp_path) -> None:
    window = json.loads((HISTORY / "labels.json").read_text())["window"]
    code, served, _ = run_calibrate(
        [
            "--prometheus", pods_prometheus.url, "--start", window["start"],
            "--end", window["end"], "--rum", str(HISTORY / "rum.ndjson.gz"), "--seeds", "3",
        ],
        tmp_path / "served.json",
    )  # fmt: skip
    assert code == 0
    assert served["history"]["inputs"]["prometheus"] == pods_prometheus.url
    assert served["pods"]["label"] == "pod"
    assert served["pods"]["by_pod"]["control-3"]["no_go"] > 0  # the bad pod, seen through it
    code, folder, _ = run_calibrate(
        ["--data", str(HISTORY), "--seeds", "3"], tmp_path / "folder.json"
    )
    assert code == 0
    _same_calibration(served, folder)


def test_an_unreachable_prometheus_exits_3(tmp_path, capsys) -> None:
    code, document, _ = run_calibrate(
        [
            "--prometheus", "http://127.0.0.1:9", "--start", "2026-11-02T08:00:00Z",
            "--end", "2026-11-02T12:00:00Z",
        ],
        tmp_path / "calibration.json",
    )  # fmt: skip
    assert code == 3 and document is None
    assert "127.0.0.1:9" in capsys.readouterr().err
