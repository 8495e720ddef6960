"""Before/after table, timeline, findings.json and the two commands."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import polars as pl

from tests.incident.conftest import DATA, analysed, loaded
from wsanalysis.cli import main
from wsanalysis.incident.before_after import before_after, render
from wsanalysis.incident.timeline import figure, timeline


def test_before_after_shows_the_fix():
    rows = {r.measure: r for r in before_after(loaded("before_after_before"),
                                               loaded("before_after_after"))}  # fmt: skip
    auth = rows["auth errors (4401/403)"]
    assert auth.before > 50 and auth.after == 0 and auth.ci_high < 1
    dups = rows["duplicate messages"]
    assert dups.before > 0 and dups.after == 0
    reconnects = rows["reconnect attempts"]
    assert reconnects.change < 0.5 and reconnects.ci_high < 1
    assert "p95 connection duration" in rows
    assert "| measure |" in render(list(rows.values()))


def test_rum_counts_are_scaled_by_the_sampling_rate():
    after = loaded("before_after_after")
    halved = replace(after, rum_sample=0.5)
    full = {r.measure: r for r in before_after(after, after)}
    scaled = {r.measure: r for r in before_after(after, halved)}
    measure = "reconnect attempts"
    assert scaled[measure].after == 2 * full[measure].after
    assert math.isclose(full[measure].change, 1.0)


def test_timeline_joins_closes_attempts_restarts_and_findings():
    data = loaded("herd_no_jitter")
    frame = timeline(data, analysed("herd_no_jitter").findings)
    events = set(frame["event"].to_list())
    assert {"close 1000", "reconnect attempt", "server_restart", "thundering_herd"} <= events
    assert frame["time"].is_sorted()
    restart = frame.filter(pl.col("source") == "restart")
    assert restart.height == 2
    fig = figure(frame)
    assert len(fig.data) >= 3


def test_incident_command_writes_findings(tmp_path, capsys):
    out = tmp_path / "findings.json"
    plot = tmp_path / "timeline.html"
    code = main(["incident", "--data", str(DATA / "reconnect_storm"), "--out", str(out),
                 "--plot", str(plot)])  # fmt: skip
    assert code == 0
    document = json.loads(out.read_text())
    kinds = {f["kind"] for f in document["findings"]}
    assert "reconnect_storm" in kinds
    assert document["window"]["start"].startswith("2026-11-02T06:00")
    assert "<html>" in plot.read_text() and "plotly" in plot.read_text()
    assert "reconnect_storm" in capsys.readouterr().out


def test_incident_command_bad_input(tmp_path):
    assert main(["incident", "--data", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "f.json")]) == 3  # fmt: skip
    assert main(["incident", "--prometheus", "http://127.0.0.1:1", "--out",
                 str(tmp_path / "f.json")]) == 3  # fmt: skip


def test_compare_command(tmp_path, capsys):
    table = tmp_path / "rows.json"
    code = main(["compare", str(DATA / "before_after_before"), str(DATA / "before_after_after"),
                 "--json", str(table)])  # fmt: skip
    assert code == 0
    assert "manual refreshes" in capsys.readouterr().out
    assert len(json.loads(table.read_text())) >= 5
