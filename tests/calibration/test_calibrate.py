"""`wsanalysis calibrate` on the bundled histories: one with pods, one without, one with a
bad pod. Every replay is a healthy canary; what each history holds decides what can be
replayed, and a pod unlike the others must show."""

from __future__ import annotations

import json

from wsanalysis.calibration.splits import distinct_pod_splits
from wsanalysis.canary.gates import load_gate_file

from .conftest import DATA, run_calibrate

DECISIONS = ("pass", "fail", "inconclusive", "no_data")


def _consistent(document: dict) -> None:
    """The document's counts add up: every replay has a verdict and a decision per gate."""
    replays = document["replays"]
    assert replays == document["history"]["windows"] * document["settings"]["seeds"]
    assert sum(document["verdicts"].values()) == replays
    replayed = document["settings"]["gates_replayed"]
    for name, gate in document["gates"].items():
        counted = sum(gate[d] for d in DECISIONS)
        assert counted == (replays if name in replayed else 0), name
        assert (gate["not_replayable"] is None) == (name in replayed), name
        assert name in document["plan"] and "settle_in_s" in document["plan"][name]
    f = document["false_no_go"]
    assert f["rate"] == document["verdicts"]["NO_GO"] / replays
    assert f["low"] <= f["rate"] <= f["high"]
    assert document["history"]["windows"] <= f["effective_replays"] <= replays + 1e-9


def test_a_history_with_pods_replays_server_gates_on_pod_splits(calibrated) -> None:
    code, document = calibrated("aa_baseline")
    assert code == 0
    _consistent(document)
    assert document["history"]["windows"] == 12  # 12 h of history in 1 h windows
    gates = document["gates"]
    assert gates["error_rate"]["replayed_on"] == "pods"
    assert gates["auth_spike"]["replayed_on"] == "pods"
    assert gates["ttfb_p95"]["replayed_on"] == "sessions"
    assert gates["error_rate"]["dispersion"] > 1.0  # clustered errors, measured per replay
    pods = document["pods"]
    assert pods["label"] == "pod" and set(pods["by_pod"]) == {f"control-{i}" for i in range(4)}
    assert pods["distinct_splits"] == distinct_pod_splits(4, 0.1) == 4  # one pod of four
    assert 0.2 < pods["canary_share"] < 0.3  # a pod carries a quarter of the connections
    assert document["srm"]["checked"]  # RUM sessions split at the declared share
    # a healthy canary at 10% needs longer than at the pod split's 25%: the plan says so
    assert document["plan"]["error_rate"]["settle_in_s"] > 3600
    assert document["settings"]["gate_file_sha256"]


def test_a_history_without_pods_replays_only_rum_gates(calibrated) -> None:
    code, document = calibrated("sample")
    assert code == 0
    _consistent(document)
    gates = document["gates"]
    for name in ("error_rate", "auth_spike"):  # server series only, and no pod label
        assert "no pod or instance label" in gates[name]["not_replayable"]
    assert gates["ttfb_p95"]["replayed_on"] == "sessions"
    assert document["pods"] is None
    assert document["settings"]["gates_replayed"] == ["ttfb_p95", "reconnect_rate"]
    assert any("Not replayed: error_rate and auth_spike" in s for s in document["sentences"])


def test_a_bad_control_pod_is_named_and_breaks_the_level(calibrated) -> None:
    code, document = calibrated("one_bad_pod")
    assert code == 0
    _consistent(document)
    by_pod = document["pods"]["by_pod"]
    bad = by_pod["control-3"]
    assert bad["in_canary"] > 0 and bad["no_go"] == bad["in_canary"]
    assert all(p["no_go"] == 0 for name, p in by_pod.items() if name != "control-3")
    assert document["gates"]["error_rate"]["fail"] == bad["no_go"]
    assert document["false_no_go"]["within_level"] is False
    named = [s for s in document["sentences"] if "control-3 is not like the others" in s]
    assert len(named) == 1


def test_the_cli_prints_the_table_and_the_sentences(tmp_path, capsys) -> None:
    out = tmp_path / "calibration.json"
    code, document, printed = run_calibrate(
        ["--data", str(DATA / "one_bad_pod"), "--window", "2h", "--seeds", "3"], out, capsys
    )
    assert code == 0
    assert document["history"]["windows"] == 2 and document["replays"] == 6
    lines = printed.splitlines()
    assert lines[0].split()[:3] == ["gate", "replayed", "on"]
    assert any(line.startswith("error_rate") and "pods" in line for line in lines)
    for sentence in document["sentences"]:
        assert sentence in printed
    assert "the judge's 2.5% level" in printed


def test_another_profile_and_gate_file_are_named_in_the_document(tmp_path) -> None:
    out = tmp_path / "calibration.json"
    code, document, _ = run_calibrate(
        ["--data", str(DATA / "one_bad_pod"), "--profile", "staging", "--window", "2h"], out
    )
    assert code == 0
    assert document["settings"]["profile"] == "staging"
    staging = load_gate_file(None).profile("staging")
    assert list(document["gates"]) == [g.name for g in staging.gates]
    assert document["settings"]["gate_file"].endswith("default_gates.yaml")
    assert json.loads(out.read_text()) == document
