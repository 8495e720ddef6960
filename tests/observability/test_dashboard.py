"""The dashboard JSON has what Grafana needs to import it, and the gates' thresholds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from wsanalysis.canary.gates import GateFile, load_gate_file
from wsanalysis.observability import runbook as rules_module
from wsanalysis.observability.dashboard import DATASOURCE_VARIABLE, build_dashboard
from wsanalysis.observability.rules import rules_document

#: Grafana unit ids the dashboard may use (Grafana's `valueFormats` registry).
GRAFANA_UNITS = {"short", "s", "ms", "percentunit", "percent", "reqps", "cps", "ops"}
CONTRACT_METRICS = {
    "ws_connections_active",
    "ws_connections_total",
    "ws_closes_total",
    "ws_connection_duration_seconds_bucket",
    "ws_frames_sent_total",
    "ws_reconnect_advice_total",
    "ws_assistant_ttfb_seconds_bucket",
}
PROMQL_WORDS = {
    "sum", "by", "rate", "or", "and", "on", "histogram_quantile", "le", "variant", "code",
    "event", "why", "group_left", "ignoring",
}  # fmt: skip


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in dashboard["panels"] if p["title"] == title)


def _steps(panel: dict[str, Any]) -> list[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [s["value"] for s in steps if s["value"] is not None]


def _datasource_refs(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            found.append(node["datasource"])
        for value in node.values():
            found += _datasource_refs(value)
    elif isinstance(node, list):
        for value in node:
            found += _datasource_refs(value)
    return found


def test_schema_and_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40 and dashboard["title"]
    assert dashboard["id"] is None  # Grafana assigns it on import
    json.loads(json.dumps(dashboard))  # plain JSON, nothing Python-only


def test_panel_ids_unique_and_grid_positions_do_not_overlap(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_datasource_reference_resolves(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    source = variables[DATASOURCE_VARIABLE]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    refs = _datasource_refs(dashboard["panels"]) + _datasource_refs(dashboard["templating"])
    assert refs
    for ref in refs:
        match = re.fullmatch(r"\$\{(\w+)\}", ref["uid"])
        assert match and match.group(1) in variables, f"unresolved datasource {ref}"
        assert variables[match.group(1)]["type"] == "datasource" and ref["type"] == "prometheus"
    for annotation in dashboard["annotations"]["list"]:
        assert annotation["datasource"]["uid"] == "-- Grafana --"  # Grafana's built-in


def test_variant_variable(dashboard: dict[str, Any]) -> None:
    variant = next(v for v in dashboard["templating"]["list"] if v["name"] == "variant")
    assert variant["type"] == "query" and variant["multi"] and variant["includeAll"]
    assert variant["query"]["query"] == "label_values(ws_connections_total, variant)"
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            if target["legendFormat"] == "{{variant}}" or "ws_" in target["expr"]:
                assert '"$variant"' in target["expr"] or "canary limit" in target["legendFormat"], (
                    f"{panel['title']}: ignores the variant variable"
                )


def test_every_query_panel_has_targets_and_a_unit(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        assert panel["description"], panel["title"]
        if panel["type"] == "text":
            assert panel["options"]["content"]
            continue
        assert panel["targets"], f"{panel['title']} has no query"
        assert all(t["expr"] and t["refId"] for t in panel["targets"]), panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        assert panel["fieldConfig"]["defaults"]["unit"] in GRAFANA_UNITS, panel["title"]


def test_runbook_panels_are_there(dashboard: dict[str, Any]) -> None:
    titles = {p["title"] for p in _panels(dashboard)}
    for needed in (
        "Close codes over time (stacked)",
        "4401 closes per connection",
        "1011 closes per connection",
        "p95 connection duration",
        "p50 connection duration",
        "Reconnect rate (per connection, over 1 h)",
        "Reconnect backoff (client-side, RUM only)",
        "p95 assistant time-to-first-byte",
        "Frames sent by event",
        "Active connections",
        "Error rate: canary against control",
    ):
        assert needed in titles
    stacked = _panel(dashboard, "Close codes over time (stacked)")
    assert stacked["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"


def test_thresholds_come_from_the_gate_file(dashboard: dict[str, Any], gate_file: GateFile):
    staging, canary = gate_file.profile("staging"), gate_file.profile("canary")
    assert _steps(_panel(dashboard, "p95 connection duration")) == [
        staging.gate("duration_p95").compare.bound
    ]
    assert _steps(_panel(dashboard, "p50 connection duration")) == [1800]
    assert _steps(_panel(dashboard, "Reconnect rate (per connection, over 1 h)")) == [
        canary.gate("reconnect_rate").compare.bound
    ]
    assert _steps(_panel(dashboard, "4401 closes per connection")) == [0.05]
    ttfb = _panel(dashboard, "p95 assistant time-to-first-byte")
    assert _steps(ttfb) == [rules_module.TTFB_P95_TARGET_SECONDS]
    assert ttfb["targets"][1]["expr"].endswith("+ 0.1")  # control + the gate's 100 ms
    errors = _panel(dashboard, "Error rate: canary against control")
    assert errors["targets"][1]["expr"].startswith("1.1 * ")  # control × (1 + 10%)
    # the bad side is red: below the bound for durations, above it for rates
    p95 = _panel(dashboard, "p95 connection duration")["fieldConfig"]["defaults"]["thresholds"]
    assert p95["steps"][0]["color"] == "red" and p95["steps"][1]["color"] == "green"


def test_changed_gate_bounds_change_the_dashboard(gate_file: GateFile, tmp_path: Path) -> None:
    document = yaml.safe_load(gate_file.path.read_text())
    for gate in document["profiles"]["staging"]["gates"]:
        if gate["name"] == "duration_p95":
            gate["compare"]["bound"] = 5400
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(document))
    changed = build_dashboard(load_gate_file(path))
    assert _steps(_panel(changed, "p95 connection duration")) == [5400]


def test_backoff_is_rum_only_and_points_to_the_notebook(dashboard: dict[str, Any]) -> None:
    panel = _panel(dashboard, "Reconnect backoff (client-side, RUM only)")
    assert panel["type"] == "text" and "targets" not in panel
    text = panel["options"]["content"]
    for needed in ("ws.reconnect_scheduled", "backoff_ms", "ws.summary", "wsanalysis report"):
        assert needed in text
    assert f"{rules_module.RECONNECT_BACKOFF_ALERT_SECONDS:g} s" in text
    exprs = " ".join(t["expr"] for p in _panels(dashboard) for t in p.get("targets", []))
    assert "backoff" not in exprs  # no invented server metric


def _metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    return words - PROMQL_WORDS


@pytest.mark.parametrize("inline", [False, True], ids=["recorded", "inline"])
def test_queries_read_only_contract_series_or_exported_recording_rules(inline: bool) -> None:
    gate_file = load_gate_file()
    recorded = {r["record"] for r in rules_document(gate_file)["groups"][0]["rules"]}
    dashboard = build_dashboard(gate_file, inline=inline)
    used = set()
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            used |= _metric_names(target["expr"])
    allowed = CONTRACT_METRICS | (set() if inline else recorded)
    assert used <= allowed, f"unknown series: {used - allowed}"
    assert any(":" in name for name in used) != inline
