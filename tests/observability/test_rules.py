"""Generated rules: promtool accepts them, and its unit tests prove every alert fires and stays silent."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from promtool_cases import alerts_covered, unit_test_file

from wsanalysis.canary.gates import CompareSpec, GateFile
from wsanalysis.observability import promql
from wsanalysis.observability.rules import alert_rules, rules_document

RUNBOOK_ALERTS = {
    "WebSocketAuthFailureSpike",
    "WebSocketInternalErrorSpike",
    "WebSocketConnectionDurationP95Low",
    "WebSocketReconnectRateHigh",
    "WebSocketAssistantTtfbP95High",
    "WebSocketCanaryErrorRateWorse",
}


def test_promtool_check_rules_accepts_the_generated_file(rules_path: Path, promtool) -> None:
    done = promtool("check", "rules", str(rules_path))
    assert done.returncode == 0, done.stdout + done.stderr
    count = len([r for g in yaml.safe_load(rules_path.read_text())["groups"] for r in g["rules"]])
    assert f"SUCCESS: {count} rules found" in done.stdout


def test_every_runbook_alert_is_there_with_for_severity_and_annotations(
    gate_file: GateFile,
) -> None:
    rules = alert_rules(gate_file)
    assert {rule.name for rule in rules} == RUNBOOK_ALERTS
    for rule in rules:
        body = rule.as_dict()
        assert body["for"] and body["labels"]["severity"] in ("critical", "warning"), rule.name
        description = body["annotations"]["description"]
        assert "wsanalysis report " in description and "--param " in description, rule.name
        assert "notebook" in description, rule.name
        assert "http" not in str(body["annotations"]).lower(), f"{rule.name} has a link"
        assert (
            "{{ $labels.variant }}" in body["annotations"]["summary"]
            or "canary" in (body["annotations"]["summary"])
        ), rule.name


def test_recording_rule_names_follow_level_metric_operations(gate_file: GateFile) -> None:
    groups = rules_document(gate_file)["groups"]
    recorded = [rule["record"] for rule in groups[0]["rules"]]
    assert len(recorded) == len(set(recorded))
    for name in recorded:
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name), name
        level, metric, operations = name.split(":")
        assert level.startswith("variant") and metric.startswith("ws_") and operations, name
        assert not metric.endswith("_total"), f"{name}: drop _total once rated"


def test_promtool_unit_tests_fire_and_stay_silent_for_every_alert(
    gate_file: GateFile, rules_path: Path, tmp_path: Path, promtool
) -> None:
    document = unit_test_file(gate_file, str(rules_path))
    firing, silent = alerts_covered(document)
    assert firing == RUNBOOK_ALERTS, f"alerts without a firing case: {RUNBOOK_ALERTS - firing}"
    assert silent == RUNBOOK_ALERTS, f"alerts without a silent case: {RUNBOOK_ALERTS - silent}"
    path = tmp_path / "websocket.rules.test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=1000))
    done = promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "SUCCESS" in done.stdout


def test_the_unit_tests_can_fail(
    gate_file: GateFile, rules_path: Path, tmp_path: Path, promtool
) -> None:
    """Expecting an alert in a silent case, or a wrong summary, makes promtool fail."""
    document = unit_test_file(gate_file, str(rules_path))
    firing_test = next(t for t in document["tests"] if t["alert_rule_test"][0]["exp_alerts"])
    silent_test = next(t for t in document["tests"] if not t["alert_rule_test"][0]["exp_alerts"])
    wrong_summary = copy.deepcopy(firing_test)
    wrong_summary["alert_rule_test"][0]["exp_alerts"][0]["exp_annotations"]["summary"] += "!"
    wrong_silence = copy.deepcopy(silent_test)
    wrong_silence["alert_rule_test"][0]["exp_alerts"] = copy.deepcopy(
        firing_test["alert_rule_test"][0]["exp_alerts"]
    )
    wrong_silence["alert_rule_test"][0]["alertname"] = firing_test["alert_rule_test"][0][
        "alertname"
    ]
    for broken in (wrong_summary, wrong_silence):
        path = tmp_path / "broken.test.yml"
        path.write_text(yaml.safe_dump({**document, "tests": [broken]}, width=1000))
        done = promtool("test", "rules", str(path))
        assert done.returncode != 0, f"promtool accepted a wrong expectation: {broken['name']}"


def _with_bounds(gate_file: GateFile, tmp_path: Path, **bounds: float) -> GateFile:
    """A copy of the default gate file with some `compare.bound` values changed."""
    from wsanalysis.canary.gates import load_gate_file

    document = yaml.safe_load(gate_file.path.read_text())
    for profile in document["profiles"].values():
        for gate in profile["gates"]:
            if gate["name"] in bounds:
                gate["compare"]["bound"] = bounds[gate["name"]]
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_gate_file(path)


def test_thresholds_follow_the_gate_file(gate_file: GateFile, tmp_path: Path) -> None:
    default = {rule.name: rule.expr for rule in alert_rules(gate_file)}
    assert "p95_rate5m < 7200 and on (variant)" in default["WebSocketConnectionDurationP95Low"]
    assert "> 0.05 and on (variant)" in default["WebSocketReconnectRateHigh"]
    changed = _with_bounds(
        gate_file, tmp_path, duration_p95=5400, reconnect_rate=0.08, auth_spike_after_login=0.02
    )
    rules = {rule.name: rule for rule in alert_rules(changed)}
    assert "p95_rate5m < 5400 and on (variant)" in rules["WebSocketConnectionDurationP95Low"].expr
    assert "1.5 h bound" in rules["WebSocketConnectionDurationP95Low"].summary
    assert "> 0.08 and on (variant)" in rules["WebSocketReconnectRateHigh"].expr
    assert "> 0.02 and on (variant)" in rules["WebSocketAuthFailureSpike"].expr
    assert "--param gates=" in rules["WebSocketCanaryErrorRateWorse"].description


@pytest.mark.parametrize(
    "compare",
    [
        CompareSpec(against="control", margin=0.10, margin_type="relative"),
        CompareSpec(against="control", margin=0.100, margin_type="absolute"),
        CompareSpec(against="bound", bound=7200),
    ],
    ids=["relative", "absolute", "bound"],
)
def test_limit_expr_computes_what_the_judge_computes(
    compare: CompareSpec, sample_with_rules
) -> None:
    control = 0.37
    limit = promql.limit_expr(compare, f"vector({control})")
    (result,) = sample_with_rules.instant(f"({limit}) + 0 * vector(0)")  # a vector, not a scalar
    assert float(result["value"][1]) == pytest.approx(compare.limit(control))


def test_first_steps_name_real_notebook_parameters(gate_file: GateFile, tmp_path: Path) -> None:
    """Every `--param NAME=` an alert tells on-call to pass exists in that notebook."""
    read_spec = pytest.importorskip("wsanalysis.report.parameters").read_spec
    custom = _with_bounds(gate_file, tmp_path)  # a custom file adds `--param gates=`
    checked = set()
    for rule in alert_rules(gate_file) + alert_rules(custom):
        for kind, command in re.findall(r"`wsanalysis report (\w+) ([^`]*)`", rule.description):
            notebook = Path(__file__).parents[2] / "notebooks" / f"{NOTEBOOKS[kind]}.ipynb"
            if not notebook.is_file():
                continue  # that notebook is not written yet
            names = set(read_spec(notebook).by_name())
            for name in re.findall(r"--param (\w+)=", command):
                assert name in names, f"{rule.name}: {kind} notebook has no parameter {name!r}"
                checked.add((kind, name))
    assert ("canary", "prometheus") in checked and ("canary", "gates") in checked


NOTEBOOKS = {"canary": "canary_evaluation", "incident": "incident_analysis"}
