"""settle_in_s: in the verdict, verdict.json, the CLI line and the report's settle chart."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.canary.sentences import format_duration, verdict_line
from wsanalysis.canary.synthetic import CanaryCase, synthesize
from wsanalysis.canary.verdict import Verdict
from wsanalysis.cli import main
from wsanalysis.frames.measures import Window
from wsanalysis.report import canary, figures
from wsanalysis.stats.settle import settle_factor

CANARY = load_gate_file().profile("canary")


def _verdict(scenario: CanaryCase, seed: int) -> Verdict:
    samples, beacons = synthesize(scenario, seed)
    window = Window(scenario.start, scenario.start + timedelta(hours=scenario.hours))
    return judge(CANARY, JudgeInput(samples, beacons, window, canary_share=0.1))


@pytest.fixture(scope="module")
def unsettled() -> Verdict:
    """A healthy canary at low traffic: the error-rate gate cannot settle in 1 h."""
    for seed in range(10):
        verdict = _verdict(CanaryCase(connections_per_hour=12_000), seed)
        if verdict.overall == "INCONCLUSIVE" and verdict.settle_in_s:
            return verdict
    raise AssertionError("no unsettled canary among the seeds")


def test_settle_in_s_on_the_verdict_its_json_and_the_cli_line(unsettled):
    verdict = unsettled
    unsettled_gates = [g for g in verdict.gates if g.decision == "inconclusive"]
    assert unsettled_gates and all(g.settle_in_s > 0 for g in unsettled_gates)
    assert verdict.settle_in_s == max(g.settle_in_s for g in unsettled_gates)
    document = verdict.to_json()
    assert document["settle_in_s"] == verdict.settle_in_s
    assert [g["settle_in_s"] for g in document["gates"]] == [g.settle_in_s for g in verdict.gates]
    slowest = max(unsettled_gates, key=lambda g: g.settle_in_s)
    line = verdict_line(verdict)
    assert line.startswith("INCONCLUSIVE: about ") and line.count(slowest.name) == 1
    assert "more at this traffic would settle" in line
    assert "more at this traffic would settle it" in slowest.sentence


def test_settled_verdicts_have_no_settle_time():
    verdict = _verdict(CanaryCase(connections_per_hour=200_000), 1)
    assert verdict.overall == "GO" and verdict.settle_in_s is None
    assert verdict.to_json()["settle_in_s"] is None
    assert all(g.settle_in_s is None for g in verdict.gates)
    assert verdict_line(verdict).startswith("GO: ")


def test_settle_factor_is_the_square_law_for_a_fixed_interval():
    # 1 standard error inside the tolerance now, 1.96 needed: (1.96 / 1)^2 the data
    k = settle_factor(-1.0, 1.0, alpha_fail=0.025, alpha_pass=0.025)
    assert k == pytest.approx(1.959964**2, rel=1e-3)
    # an anytime-valid sequence narrows more slowly: it needs more
    assert settle_factor(-1.0, 1.0, alpha_fail=0.025, alpha_pass=0.025, anytime=True) > k
    assert settle_factor(-1.0, -1.0, alpha_fail=0.025, alpha_pass=0.025) is None
    # a Holm-corrected level needs more than the gate's own
    assert settle_factor(-1.0, 1.0, alpha_fail=0.025, alpha_pass=0.00625) > k


def test_format_duration():
    assert format_duration(6000) == "about 1 h 40 min"
    assert format_duration(20) == "about 1 min"
    assert format_duration(3 * 86400 + 7200) == "about 3 d 2 h"


def test_settle_chart_shows_the_interval_narrowing_toward_its_lines(unsettled):
    paths = canary.settle_paths(unsettled, points=4)
    error = paths.filter(paths["gate"] == "error_rate")
    observed = error.filter(error["kind"] == "observed").sort("hours")
    assert observed.height == 4
    widths = (observed["high"] - observed["low"]).to_list()
    assert widths[-1] < widths[0]  # more data, narrower
    projection = error.filter(error["kind"] == "projection").sort("hours")
    gate = next(g for g in unsettled.gates if g.name == "error_rate")
    if gate.decision == "inconclusive":
        last = projection.row(-1, named=True)
        total = 1 + gate.settle_in_s / 3600
        assert last["hours"] == pytest.approx(max(total, 2.0))
        # at the settle time the projected band has reached one of its lines
        assert last["high"] <= last["tolerance"] * 1.02 or last["low"] >= last["bound"] * 0.98
    figure = figures.settle_figure(paths)
    titles = [a.text for a in figure.layout.annotations]
    assert titles == list(dict.fromkeys(paths["gate"].to_list()))
    names = {t.name for t in figure.data}
    assert {"bound", "tolerance", "interval (observed)", "interval (projection)"} <= names


def test_cli_prints_the_settle_line(sample_dataset: Path, tmp_path: Path, capsys):
    out = tmp_path / "v.json"
    code = main(["judge", "--data", str(sample_dataset), "--out", str(out)])
    printed = capsys.readouterr().out.splitlines()[0]
    document = json.loads(out.read_text())
    assert printed.startswith(f"{document['verdict']}: ")
    assert "settle_in_s" in document and code == document["exit_code"]
