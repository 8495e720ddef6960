"""`wsanalysis export dashboard|rules`: output, files, and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from wsanalysis.canary.gates import DEFAULT_GATE_FILE
from wsanalysis.cli import main


def _gates_with(tmp_path: Path, change) -> Path:
    document = yaml.safe_load(DEFAULT_GATE_FILE.read_text())
    change(document)
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _gate(document: dict, profile: str, name: str) -> dict:
    return next(g for g in document["profiles"][profile]["gates"] if g["name"] == name)


def test_dashboard_to_stdout_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "dashboard"]) == 0
    dashboard = json.loads(capsys.readouterr().out)
    assert dashboard["title"] == "WebSocket Health"


def test_rules_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "websocket.rules.yml"
    assert main(["export", "rules", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    groups = yaml.safe_load(out.read_text())["groups"]
    assert [g["name"] for g in groups] == [
        "wsanalysis-websocket-recording",
        "wsanalysis-websocket-alerts",
    ]


def test_inline_dashboard_reads_no_recording_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "dashboard", "--inline"]) == 0
    exprs = [
        t["expr"]
        for p in json.loads(capsys.readouterr().out)["panels"]
        for t in p.get("targets", [])
    ]
    assert exprs and not any(":ws_" in e for e in exprs)


def test_custom_gate_file_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gates = _gates_with(
        tmp_path, lambda d: _gate(d, "canary", "reconnect_rate")["compare"].update(bound=0.07)
    )
    assert main(["export", "rules", "--gates", str(gates)]) == 0
    text = capsys.readouterr().out
    rules = yaml.safe_load(text)["groups"][1]["rules"]
    reconnect = next(r for r in rules if r["alert"] == "WebSocketReconnectRateHigh")
    assert "> 0.07\n" in reconnect["expr"] and str(gates) in text


@pytest.mark.parametrize("what", ["dashboard", "rules"])
def test_unknown_gate_file(what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-gates.yaml"
    assert main(["export", what, "--gates", str(missing)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"gate file {missing} does not exist" in captured.err and "fix:" in captured.err


def _rum_only(document: dict) -> None:
    gate = _gate(document, "canary", "reconnect_rate")
    gate["events"].pop("prometheus")
    gate["exposure"].pop("prometheus")
    gate.pop("promql")


@pytest.mark.parametrize("what", ["dashboard", "rules"])
def test_gate_without_a_promql_form_is_left_out_and_named(
    what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gates = _gates_with(tmp_path, _rum_only)
    assert main(["export", what, "--gates", str(gates)]) == 0
    out, err = capsys.readouterr()
    assert "gate 'reconnect_rate' (profile 'canary') has no PromQL form" in err
    assert "WebSocketReconnectRateHigh" not in out
    if what == "rules":  # the file says it too, where the next reader looks
        assert "# The reconnect-rate panel and alert left out: gate 'reconnect_rate'" in out


def test_gate_with_only_a_promql_text_is_used_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def promql_only(document: dict) -> None:
        gate = _gate(document, "canary", "reconnect_rate")
        gate["events"].pop("prometheus")
        gate["exposure"].pop("prometheus")

    gates = str(_gates_with(tmp_path, promql_only))
    assert main(["export", "rules", "--gates", gates]) == 0
    rules = yaml.safe_load(capsys.readouterr().out)["groups"][1]["rules"]
    reconnect = next(r for r in rules if r["alert"] == "WebSocketReconnectRateHigh")
    assert "increase(ws_closes_total" in reconnect["expr"]  # the gate file's own text
    assert main(["export", "dashboard", "--gates", gates]) == 0
    panels = json.loads(capsys.readouterr().out)["panels"]
    panel = next(p for p in panels if p["title"].startswith("Reconnect rate"))
    assert "increase(ws_closes_total" in panel["targets"][0]["expr"]


def test_missing_gate_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def drop(document: dict) -> None:
        gates = document["profiles"]["staging"]["gates"]
        gates[:] = [g for g in gates if g["name"] != "duration_p95"]

    assert main(["export", "dashboard", "--gates", str(_gates_with(tmp_path, drop))]) == 0
    out, err = capsys.readouterr()
    assert "profile 'staging' has no gate 'duration_p95'" in err
    assert "p95 connection duration panel left out" in err
    titles = [p["title"] for p in json.loads(out)["panels"]]
    assert "p95 connection duration" not in titles and "p50 connection duration" in titles


def test_a_renamed_or_extra_gate_is_exported_as_a_gate_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def rename(document: dict) -> None:
        _gate(document, "canary", "ttfb_p95")["name"] = "ttfb_p95_v2"

    gates = str(_gates_with(tmp_path, rename))
    assert main(["export", "rules", "--gates", gates]) == 0
    out, err = capsys.readouterr()
    assert "has no gate 'ttfb_p95'" in err
    alerts = {r["alert"]: r for r in yaml.safe_load(out)["groups"][1]["rules"]}
    assert "WebSocketAssistantTtfbP95High" not in alerts
    renamed = alerts["WsanalysisGateCanaryTtfbP95V2"]
    assert renamed["labels"]["gate"] == "ttfb_p95_v2"
    assert "histogram_quantile(0.95" in out and "> on () group_left ()" in renamed["expr"]
    assert main(["export", "dashboard", "--gates", gates]) == 0
    titles = [p["title"] for p in json.loads(capsys.readouterr().out)["panels"]]
    assert "Other gates" in titles


def test_out_in_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nowhere" / "rules.yml"
    assert main(["export", "rules", "--out", str(out)]) == 3
    assert "no such folder" in capsys.readouterr().err


def test_export_needs_a_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export"]) == 3
