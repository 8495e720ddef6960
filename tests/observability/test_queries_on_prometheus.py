"""Every PromQL expression of the dashboard and the rules, evaluated on a real Prometheus.

The Prometheus holds data/sample backfilled with promtool, plus the generated recording
rules backfilled over the same window (conftest). A query that returns nothing fails
with the panel's title or the rule's name.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.observability import promql
from wsanalysis.observability.dashboard import build_dashboard
from wsanalysis.observability.rules import alert_rules, rules_document

GATES = load_gate_file()
ALL_VARIANTS = ".*"  # what Grafana's "All" puts in $variant


def _dashboard_targets(inline: bool) -> list[tuple[str, str]]:
    targets = []
    for panel in build_dashboard(GATES, inline=inline)["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$variant", ALL_VARIANTS)
            targets.append((f"panel {panel['title']!r} target {target['refId']}", expr))
    return targets


DASHBOARD = _dashboard_targets(inline=False)
DASHBOARD_INLINE = dict(_dashboard_targets(inline=True))
RECORDING = [
    (f"recording rule {rule['record']}", rule["expr"])
    for rule in rules_document(GATES)["groups"][0]["rules"]
]
ALERTS = alert_rules(GATES)


def _labels(metric: dict[str, str]) -> tuple:
    return tuple(sorted((k, v) for k, v in metric.items() if k != "__name__"))


def _values(result: list[dict]) -> dict[tuple, float]:
    """Value by label set; NaN (a quantile over an empty window) dropped, as the recording
    rules backfilled by promtool do not store it."""
    values = {_labels(r["metric"]): float(r["value"][1]) for r in result}
    return {labels: value for labels, value in values.items() if not math.isnan(value)}


@pytest.mark.parametrize(("where", "expr"), DASHBOARD, ids=[w for w, _ in DASHBOARD])
def test_dashboard_query_returns_data(where: str, expr: str, sample_with_rules) -> None:
    result = sample_with_rules.instant(expr)
    assert result, f"{where} returned no data at the query time: {expr}"


@pytest.fixture(scope="module")
def evaluated_at(sample_with_rules) -> str:
    """When promtool last evaluated the rules before the query time (not on the minute)."""
    (result,) = sample_with_rules.instant(
        'max(timestamp(variant:ws_connections:rate5m{variant="control"}))'
    )
    return result["value"][1]


@pytest.mark.parametrize(("where", "expr"), DASHBOARD, ids=[w for w, _ in DASHBOARD])
def test_recorded_and_inline_dashboard_queries_agree(
    where: str, expr: str, sample_with_rules, evaluated_at: str
) -> None:
    """The recording rules compute exactly what the raw-series (--inline) dashboard shows."""
    recorded = _values(sample_with_rules.instant(expr, at=evaluated_at))
    inline = _values(sample_with_rules.instant(DASHBOARD_INLINE[where], at=evaluated_at))
    assert recorded.keys() == inline.keys(), where
    for labels, value in recorded.items():
        assert value == pytest.approx(inline[labels], rel=1e-9), (where, labels)


@pytest.mark.parametrize(("where", "expr"), RECORDING, ids=[w for w, _ in RECORDING])
def test_recording_rule_returns_data(where: str, expr: str, sample_with_rules) -> None:
    assert sample_with_rules.instant(expr), f"{where} returned no data: {expr}"


@pytest.mark.parametrize("rule", ALERTS, ids=[rule.name for rule in ALERTS])
def test_alert_signal_returns_data_and_expression_evaluates(rule, sample_with_rules) -> None:
    """The figure an alert watches has data; the full condition is valid PromQL there."""
    assert sample_with_rules.instant(rule.signal), f"alert {rule.name}: its figure has no data"
    sample_with_rules.instant(rule.expr)  # raises on a PromQL error; may be empty (not firing)


def test_the_canary_restart_shows_in_the_reconnect_rate(sample_with_rules) -> None:
    """data/sample restarts the canary at 10:00 (1012 closes): the figure must see it."""
    reconnect = promql.gate_figure(GATES, "canary", "reconnect_rate", used_by="test")
    before = _values(sample_with_rules.instant(reconnect.expr(), at="2026-11-02T09:55:00Z"))
    after = _values(sample_with_rules.instant(reconnect.expr(), at="2026-11-02T10:30:00Z"))
    key = (("variant", "canary"),)
    assert after[key] > before[key]


GATE_FIGURES = [
    (profile.name, gate)
    for profile in GATES.profiles.values()
    for gate in profile.gates
    if gate.promql
]


@pytest.mark.parametrize(
    ("profile", "gate"), GATE_FIGURES, ids=[f"{p}.{g.name}" for p, g in GATE_FIGURES]
)
def test_generated_figure_equals_the_gate_files_promql(
    profile, gate, sample_with_rules, evaluated_at
) -> None:
    """The dashboard's and alerts' figure of a gate is the gate file's own `promql:`."""
    figure = promql.figure_of(gate, profile)
    ours = _values(sample_with_rules.instant(figure.expr(), at=evaluated_at))
    theirs = _values(sample_with_rules.instant(gate.promql, at=evaluated_at))
    assert theirs, f"gate {gate.name}: its promql returned no number at {evaluated_at}"
    assert ours.keys() == theirs.keys(), gate.name
    for labels, value in theirs.items():
        assert ours[labels] == pytest.approx(value, rel=1e-9), (gate.name, labels)


def test_a_verbatim_gate_figure_keeps_only_the_variant_asked_for(sample_with_rules) -> None:
    """A gate known only by its `promql:` text is restricted to one variant by a join."""
    gate = GATES.profile("canary").gate("error_rate")
    figure = promql.GateFigure(gate, "canary", "verbatim", "5m")
    both = _values(sample_with_rules.instant(figure.expr()))
    canary = _values(sample_with_rules.instant(figure.expr(promql.only("canary"))))
    assert len(both) == 2 and list(canary) == [(("variant", "canary"),)]
    assert canary[(("variant", "canary"),)] == both[(("variant", "canary"),)]


def _firing(rule, queries) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per variant, the spans in which `rule` would fire, evaluated every minute.

    Prometheus's `for:` rule: the condition must hold at consecutive evaluations
    spanning `for` before the alert fires; it fires until the condition stops holding.
    """
    hold = timedelta(minutes=int(rule.for_[:-1])) if rule.for_.endswith("m") else None
    assert hold is not None, f"{rule.name}: the test reads `for:` in minutes"
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for series in queries.range(rule.expr):
        times = [datetime.fromtimestamp(float(t), UTC) for t, _ in series["values"]]
        runs, first = [], times[0]
        for previous, current in zip(times, [*times[1:], None], strict=True):
            if current is None or current - previous > timedelta(minutes=1):
                if previous - first >= hold:
                    runs.append((first + hold, previous))
                first = current
        if runs:
            spans[series["metric"].get("variant", "")] = runs
    return spans


def test_alerts_on_the_sample_match_its_labels(sample_with_rules) -> None:
    """data/sample's only incident is a canary restart at 10:00 (labels.json): over its
    six hours the only alert that fires is the reconnect rate, for the canary, after it."""
    incident = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    fired = {rule.name: _firing(rule, sample_with_rules) for rule in ALERTS}
    fired = {name: spans for name, spans in fired.items() if spans}
    assert set(fired) == {"WebSocketReconnectRateHigh"}, fired
    assert list(fired["WebSocketReconnectRateHigh"]) == ["canary"]
    (start, end), *later = fired["WebSocketReconnectRateHigh"]["canary"]
    assert not later
    assert incident < start <= incident + timedelta(minutes=30)
    assert end <= incident + timedelta(hours=1, minutes=1)  # the 1 h window moves past it
