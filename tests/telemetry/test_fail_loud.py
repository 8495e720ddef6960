"""Every path that used to go quiet on another service's names: an exit 3 with one line
(what was expected, what the data hold, the fix) or a sentence the verdict carries and
the CLI prints."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.telemetry.dialect import make_dialect
from wsanalysis.canary.gates import DEFAULT_GATE_FILE
from wsanalysis.cli import main
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.openmetrics import write_openmetrics

REPO = Path(__file__).resolve().parents[2]
X2 = REPO / "data" / "error_rate_x2"


@pytest.fixture(scope="module")
def dialect(tmp_path_factory: pytest.TempPathFactory):
    return make_dialect(X2, tmp_path_factory.mktemp("dialect") / "x2", seed=3)


def _lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as handle:
        return [json.loads(line) for line in handle]


def _folder(tmp: Path, metrics: pl.DataFrame | None, beacons: list[dict] | None) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    if metrics is not None:
        write_openmetrics(metrics, tmp / "metrics.om")
    if beacons is not None:
        text = "".join(json.dumps(b) + "\n" for b in beacons)
        (tmp / "rum.ndjson.gz").write_bytes(gzip.compress(text.encode()))
    return tmp


def _gates(tmp: Path, change) -> str:
    document = yaml.safe_load(DEFAULT_GATE_FILE.read_text())
    change(document)
    path = tmp / "gates.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


def _gate(document: dict, name: str) -> dict:
    return next(g for g in document["profiles"]["canary"]["gates"] if g["name"] == name)


def judge(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["judge", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_metrics_in_other_names_without_a_mapping(dialect, tmp_path, capsys):
    folder = tmp_path / "metrics-only"
    folder.mkdir()
    shutil.copy(dialect.folder / "metrics.om", folder)
    code, _, err = judge(capsys, "--data", str(folder), "--out", str(tmp_path / "v.json"))
    assert code == 3
    assert "holds none of the series read here (ws_assistant_ttfb_seconds_bucket, ws_closes" in err
    assert dialect.metrics["ws_closes_total"] in err  # what it does hold
    assert "--telemetry FILE" in err
    assert not (tmp_path / "v.json").exists()


def test_beacons_all_rejected(dialect, tmp_path, capsys):
    code, _, err = judge(capsys, "--data", str(dialect.folder), "--out", str(tmp_path / "v.json"))
    assert code == 3
    assert "was rejected: missing required field: v, ts, type, session_id, variant" in err
    assert "their fields: " + sorted(dialect.fields.values())[1] in err  # what they carry
    assert "--telemetry FILE" in err


def test_more_than_half_the_beacons_rejected_is_said(tmp_path, capsys):
    beacons = _lines(X2 / "rum.ndjson.gz")
    broken = [{k: v for k, v in b.items() if k != "session_id"} if i % 3 else b
              for i, b in enumerate(beacons)]  # fmt: skip
    folder = _folder(tmp_path / "half", Dataset.open(X2).metrics(), broken)
    code, out, _ = judge(capsys, "--data", str(folder), "--out", str(tmp_path / "v.json"))
    assert code in (0, 1, 2)
    bad = sum(1 for b in broken if "session_id" not in b)
    assert f"{bad:,} of the {len(broken):,} beacons" in out
    assert "were rejected (missing required field: session_id)" in out
    assert "were rejected" in json.loads((tmp_path / "v.json").read_text())["reason"]


def test_a_beacon_field_the_beacons_lack(tmp_path, capsys):
    def typo(document):
        _gate(document, "ttfb_p95")["samples"]["rum"]["field"] = "ttfb"

    gates = _gates(tmp_path, typo)
    code, _, err = judge(capsys, "--data", str(X2), "--gates", gates, "--out", str(tmp_path / "v"))
    assert code == 3
    assert "gate 'ttfb_p95' reads the beacon field 'ttfb', which beacons do not have" in err
    assert "(did you mean 'ttfb_ms'?)" in err


def test_a_gate_series_the_data_hold_nowhere(tmp_path, capsys):
    def typo(document):
        gate = _gate(document, "error_rate")
        gate["events"]["prometheus"][0] = 'ws_frames_sent_totl{event="error"}'
        gate.pop("promql")

    gates = _gates(tmp_path, typo)
    out_file = tmp_path / "v.json"
    code, out, _ = judge(capsys, "--data", str(X2), "--gates", gates, "--out", str(out_file))
    assert code == 2  # not NO_GO on data it does not have, not a pass either
    sentence = (
        "Gate error_rate reads ws_frames_sent_totl (did you mean 'ws_frames_sent_total'?), "
        "which the data hold nowhere."
    )
    assert sentence in out
    document = json.loads(out_file.read_text())
    gate = next(g for g in document["gates"] if g["name"] == "error_rate")
    assert gate["decision"] == "no_data" and "hold nowhere" in gate["sentence"]
    assert document["absent_series"] == {"error_rate": ["ws_frames_sent_totl"]}


def test_the_sample_ratio_check_skipped_is_said(tmp_path, capsys):
    metrics = Dataset.open(X2).metrics().filter(pl.col("metric") != "ws_connections_total")
    folder = _folder(tmp_path / "no-connections", metrics, None)
    code, out, _ = judge(
        capsys, "--data", str(folder), "--canary-share", "0.1", "--out", str(tmp_path / "v")
    )
    assert code == 2
    assert "The sample-ratio check was skipped: neither RUM sessions nor" in out


def test_a_gate_that_read_its_other_source_is_said(tmp_path, capsys):
    beacons = [b for b in _lines(X2 / "rum.ndjson.gz") if b["type"] != "ws.ttfb"]
    folder = _folder(tmp_path / "no-ttfb", Dataset.open(X2).metrics(), beacons)
    code, out, _ = judge(capsys, "--data", str(folder), "--out", str(tmp_path / "v.json"))
    assert code == 1
    assert "Gate ttfb_p95 read the server series: its preferred source (RUM beacons)" in out


def test_selectors_that_match_no_series(tmp_path, capsys):
    folder = _folder(tmp_path / "metrics", Dataset.open(X2).metrics(), None)
    args = ["--canary-selector", 'track="canary"', "--control-selector", 'track="stable"']
    code, _, err = judge(capsys, "--data", str(folder), *args, "--out", str(tmp_path / "v"))
    assert code == 3
    assert "but no series of them is canary or control by selectors" in err
    assert 'canary: track="canary"' in err


def test_selectors_that_match_no_beacon(tmp_path, capsys):
    folder = tmp_path / "rum-only"
    folder.mkdir()
    shutil.copy(X2 / "rum.ndjson.gz", folder)
    args = ["--canary-selector", 'track="canary"', "--control-selector", 'track="stable"']
    code, _, err = judge(capsys, "--data", str(folder), *args, "--out", str(tmp_path / "v"))
    assert code == 3
    assert "beacons in" in err and "matched the canary or control selector" in err
    assert "rum.fields.variant" in err


def test_incident_on_other_names_without_a_mapping(dialect, tmp_path, capsys):
    """Used to be "[not run] all: the window holds no server samples and no beacons", exit 0."""
    assert main(["incident", "--data", str(dialect.folder), "--out", str(tmp_path / "f")]) == 3
    err = capsys.readouterr().err
    assert "holds none of the series read here" in err and "--telemetry" in err
    rum_only = tmp_path / "rum-only"
    rum_only.mkdir()
    shutil.copy(dialect.folder / "rum.ndjson.gz", rum_only)
    assert main(["incident", "--data", str(rum_only), "--out", str(tmp_path / "f")]) == 3
    assert "was rejected: missing required field" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_incident_on_beacon_types_of_other_names(tmp_path, capsys):
    """Renamed beacon types used to give NO FINDINGS: now the run stops and says why."""
    beacons = [
        dict(b, type=b["type"].replace("ws.", "socket.")) for b in _lines(X2 / "rum.ndjson.gz")
    ]
    folder = _folder(tmp_path / "types", Dataset.open(X2).metrics(), beacons)
    assert main(["incident", "--data", str(folder), "--out", str(tmp_path / "f")]) == 3
    err = capsys.readouterr().err
    assert "hold none of the types read here (ws.close, ws.dedup_drop" in err
    assert "did you mean: ws.close -> socket.close" in err


def test_incident_rum_sample_applies_to_a_folder(tmp_path, capsys):
    out = tmp_path / "findings.json"
    assert main(["incident", "--data", str(X2), "--rum-sample", "0.25", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["rum_sample"] == 0.25


def test_a_series_gate_on_a_folder_without_prometheus(tmp_path):
    gates = tmp_path / "series.yaml"
    gates.write_text(yaml.safe_dump({"version": 1, "profiles": {"canary": {"gates": [{
        "name": "cpu", "statistic": "series", "promql": "avg(rate(cpu_total{ {variant} }[2m]))",
        "compare": {"against": "control", "margin": 0.2}, "worse": "increase",
        "tolerance": 1.5}]}}}))  # fmt: skip
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no prometheus, no promtool
    run = subprocess.run(
        [Path(sys.executable).parent / "wsanalysis", "judge", "--data", str(X2),
         "--gates", str(gates), "--out", str(tmp_path / "v.json")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert (
        "a series gate runs its PromQL on a server, and this dataset folder has none" in run.stderr
    )
    assert "--prometheus URL" in run.stderr


def test_a_gate_promql_that_does_not_parse(tmp_path, capsys):
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed: run `apt-get install prometheus`")

    def broken(document):
        _gate(document, "auth_spike")["promql"] = "sum by (variant) (rate(ws_closes_total[5m])"

    code, _, err = judge(capsys, "--data", str(X2), "--gates", _gates(tmp_path, broken))
    assert code == 3
    assert "gate 'auth_spike' (profile 'canary')'s promql does not parse" in err
    assert "unclosed left parenthesis" in err


def test_an_engine_refuses_beacons_in_other_names(dialect, tmp_path, capsys):
    args = ["--data", str(dialect.folder), "--telemetry", str(dialect.by_label)]
    code, _, err = judge(capsys, *args, "--engine", "duckdb", "--out", str(tmp_path / "v"))
    assert code == 3
    assert "the duckdb engine reads beacons in the contract's names only" in err
    assert "--engine polars" in err
