"""What an analyst sees when a cell evaluates a result: readable reprs, HTML tables with
every label escaped, and polars frames to dig into (issue 18)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl
import pytest

from tests.incident.conftest import analysed
from tests.notebooks.conftest import REPO
from wsanalysis.canary.details import SprtDetails
from wsanalysis.canary.verdict import GateEvidence, GateResult, Verdict
from wsanalysis.incident.findings import Finding
from wsanalysis.stats.quantiles import QuantileComparison
from wsanalysis.stats.rates import RateComparison, compare_rates

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def verdict() -> Verdict:
    import wsanalysis

    return wsanalysis.judge(data=str(REPO / "data" / "sample"), canary_share=0.1)


def test_verdict_reads_as_its_decision_and_gates(verdict: Verdict):
    text = repr(verdict)
    assert text.startswith(f"Verdict({verdict.overall}: ")
    for gate in verdict.gates:
        assert f"{gate.name}={gate.decision}" in text
    html = verdict._repr_html_()
    assert verdict.overall in html and "<table" in html
    assert all(g.name in html for g in verdict.gates)


def test_gate_evidence_displays_and_converts_to_polars(verdict: Verdict):
    gate = verdict.gates[0]
    assert repr(gate).startswith(f"GateResult({gate.name}: {gate.decision}")
    assert repr(gate.evidence).startswith("GateEvidence(canary=")
    assert "<table" in gate._repr_html_() and "p harm" in gate.evidence._repr_html_()
    frame = verdict.evidence_frame()
    assert isinstance(frame, pl.DataFrame) and frame.height == len(verdict.gates)
    assert frame["gate"].to_list() == [g.name for g in verdict.gates]
    assert frame["decision"].to_list() == [g.decision for g in verdict.gates]
    one = gate.evidence.to_polars()
    assert one.height == 1 and one["limit"][0] == pytest.approx(gate.evidence.limit)


def test_missing_evidence_says_so():
    evidence = GateEvidence.no_data(1.1, "no canary samples")
    assert repr(evidence) == "GateEvidence(no data: no canary samples)"


def test_comparisons_read_like_scipy_results_including_subclasses():
    result = compare_rates([30, 40], [1000, 1000], [300, 280], [10000, 9000])
    text = repr(result)
    ci = result.confidence_interval()
    assert text.startswith("RateComparison(ratio ×")
    assert f"{ci.low:.4g}" in text and f"{ci.high:.4g}" in text
    assert "dispersion" in result._repr_html_()
    assert QuantileComparison.__repr__ is RateComparison.__repr__  # every subclass


def test_labels_and_rum_strings_are_escaped():
    finding = Finding("close_code_spike", datetime(2026, 11, 2, 9, tzinfo=UTC),
                      datetime(2026, 11, 2, 9, 1, tzinfo=UTC), HOSTILE, "high",
                      f"reason {HOSTILE}", {"reason": HOSTILE, "closes": 3.0})  # fmt: skip
    html = finding._repr_html_()
    assert HOSTILE not in html and "&lt;script&gt;" in html
    looks = SprtDetails(1.0, 1.0, first_rejecting_look=HOSTILE, looks=1)
    evidence = replace(GateEvidence.no_data(1.0, HOSTILE), sequence=looks)
    gate = GateResult(HOSTILE, HOSTILE, True, "rate", "", "control", "increase", evidence,
                      math.nan, "no_data", HOSTILE)  # fmt: skip
    verdict = Verdict("INCONCLUSIVE", HOSTILE, (gate,), HOSTILE, "wsanalysis")
    for html in (gate._repr_html_(), evidence._repr_html_(), verdict._repr_html_()):
        assert HOSTILE not in html and "&lt;script&gt;" in html


def test_findings_and_episodes_display_and_convert():
    analysis = analysed("network_outage")
    finding = analysis.findings[0]
    assert repr(finding).startswith(f"Finding({finding.kind} on {finding.variant}, ")
    frame = finding.to_polars()
    assert frame.height == 1 and frame["kind"][0] == finding.kind
    assert set(finding.numbers) <= set(frame.columns)
    (episode,) = analysis.episodes
    assert repr(episode).startswith("Episode(fleet, high, 2026-11-02 09:00")
    html = episode._repr_html_()
    assert "fleet" in html and all(f.kind in html for f in episode.findings)
    assert episode.to_polars().height == len(episode.findings)
