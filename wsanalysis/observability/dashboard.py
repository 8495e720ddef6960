"""The "WebSocket Health" Grafana dashboard, generated from the metric contract and the gates.

Panels follow the production runbook: close codes over time, 4401 and 1011 rates,
connection duration p50/p95, reconnect rate, reconnect backoff (client-side: a text
panel pointing to the RUM query, since Prometheus holds no backoff series), p95
assistant time-to-first-byte, frames sent by event, active connections; canary and
control are overlaid, with the canary's limit (control plus the gate's margin) drawn
as a dashed series. Thresholds are read from the gate file, so the dashboard and the
judge never disagree about a target.

The JSON uses Grafana's current schema (39): a `datasource` template variable (type
datasource, so it imports through the UI and through provisioning alike) that every
panel and target refers to, and a multi-value `variant` variable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from wsanalysis.canary.gates import GateFile, Series, load_gate_file
from wsanalysis.observability import promql, runbook
from wsanalysis.observability.promql import CANARY, CONTROL, GateFigure, only, variant_matcher
from wsanalysis.sources import metric_names as names
from wsanalysis.sources.promql_text import (
    Spelling,
    translate_promql,
    translate_prose,
    translate_template,
)
from wsanalysis.sources.telemetry import REFERENCE, Telemetry

SCHEMA_VERSION = 39
UID = "wsanalysis-websocket-health"
TITLE = "WebSocket Health"
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = {"type": "prometheus", "uid": "${" + DATASOURCE_VARIABLE + "}"}
VARIANT_QUERY = f"label_values({names.CONNECTIONS_TOTAL}, variant)"
SELECTED = variant_matcher("$variant")  # panels follow the `variant` variable
COLORS = {CANARY: "orange", CONTROL: "blue"}


@dataclass
class Target:
    expr: str
    legend: str
    spelled: bool = False  # already in the service's names (a series gate's own PromQL)


@dataclass
class Panel:
    """A panel before layout; `kind` is the Grafana panel type."""

    title: str
    description: str
    targets: list[Target] = field(default_factory=list)
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    thresholds: list[dict[str, Any]] | None = None
    stacked: bool = False
    limit_ref: str | None = None  # refId of the dashed "canary limit" series
    content: str = ""  # markdown, for text panels


#: Grafana unit ids for the gate file's `unit:` values.
GATE_UNITS = {"s": "s", "ms": "ms", "per connection": "percentunit", "share": "percentunit"}


def grafana_unit(figure: GateFigure) -> str:
    """The Grafana unit of a gate's figure (`short` for a unit Grafana does not know)."""
    return GATE_UNITS.get(figure.gate.unit, "short")


def _threshold_steps(bound: float, worse: str) -> list[dict[str, Any]]:
    """Red on the bad side of `bound`, green on the good side."""
    if worse == "increase":
        return [{"color": "green", "value": None}, {"color": "red", "value": bound}]
    return [{"color": "red", "value": None}, {"color": "green", "value": bound}]


def _gate_note(figure: GateFigure) -> str:
    gate = figure.gate
    return f"Gate `{gate.name}` (profile `{figure.profile}`): {gate.description}"


def _limit_target(figure: GateFigure, label: str, *, inline: bool) -> Target:
    control = figure.expr(only(CONTROL), inline=inline)
    spelled = figure.kind == "series"
    return Target(promql.limit_expr(figure.gate.compare, control), label, spelled)


def _gate_panel(figure: GateFigure, *, inline: bool) -> Panel:
    """A panel for a gate the runbook does not name: its figure per variant, the canary's
    limit from control (against control) or the bound in red (against a bound)."""
    gate = figure.gate
    targets = [Target(figure.expr(SELECTED, inline=inline), "{{variant}}", figure.kind == "series")]
    thresholds, limit_ref = None, None
    if gate.compare.against == "control":
        targets.append(
            _limit_target(figure, f"canary limit ({_limit_text(figure)})", inline=inline)
        )
        limit_ref = "B"
    elif figure.bound is not None:
        thresholds = _threshold_steps(figure.bound, gate.worse)
    return Panel(
        gate.title, _gate_note(figure), targets, unit=grafana_unit(figure), thresholds=thresholds,
        limit_ref=limit_ref,
    )  # fmt: skip


def panels(
    gate_file: GateFile, *, inline: bool = False, telemetry: Telemetry = REFERENCE
) -> list[tuple[str, list[Panel]]]:
    """The dashboard's rows of panels, thresholds and limits from `gate_file` (a runbook
    panel whose gate the file lacks is left out; the file's other gates get a row)."""

    figures = runbook.figures(gate_file, telemetry)
    auth, auth_canary = figures.auth_spike, figures.auth_against_control
    errors, reconnect = figures.error_rate, figures.reconnect_rate
    duration_p95, duration_p50 = figures.duration_p95, figures.duration_p50
    ttfb, ttfb_p95, internal = figures.ttfb, figures.ttfb_target, figures.internal_errors

    def rate(metric: str, by: tuple[str, ...]) -> str:
        return promql.counter_rate(Series(metric), by=by, matchers=SELECTED, inline=inline)

    connections = Panel(
        "Active connections",
        f"Open WebSocket connections per variant (gauge `{names.CONNECTIONS_ACTIVE}`).",
        [
            Target(
                f"sum by (variant) ({promql.selector(names.CONNECTIONS_ACTIVE, SELECTED)})",
                "{{variant}}",
            )
        ],
        unit="short",
    )
    opened = Panel(
        "Connections opened",
        f"New connections per second per variant (`{names.CONNECTIONS_TOTAL}`, rate over 5m). "
        "Canary against control shows the traffic split the canary share should match.",
        [Target(rate(names.CONNECTIONS_TOTAL, ("variant",)), "{{variant}}")],
        unit="cps",
    )
    close_codes = Panel(
        "Close codes over time (stacked)",
        "Closes per second by WebSocket close code, for the selected variants, stacked "
        f"(`{names.CLOSES_TOTAL}`, rate over 5m). 1000/1001 are normal; 1006 abnormal (network), "
        "1011 internal error, 1012 service restart, 1013 try again later, 4401 "
        "unauthenticated.",
        [Target(rate(names.CLOSES_TOTAL, ("code",)), "{{code}}")],
        unit="cps",
        stacked=True,
    )
    auth_panel = auth and Panel(
        "4401 closes per connection",
        f"4401 (unauthenticated) closes per connection opened, over {auth.window}, canary "
        f"against control. Red above {auth.bound:.0%}: the bound of alert "
        f"WebSocketAuthFailureSpike. {_gate_note(auth)}"
        + (
            f" The dashed line is the canary's limit from control. {_gate_note(auth_canary)}"
            if auth_canary
            else ""
        ),
        [
            Target(auth.expr(SELECTED, inline=inline), "{{variant}}"),
            *(
                [
                    _limit_target(
                        auth_canary, f"canary limit ({_limit_text(auth_canary)})", inline=inline
                    )
                ]
                if auth_canary
                else []
            ),
        ],
        unit=grafana_unit(auth),
        thresholds=_threshold_steps(auth.bound or 0.0, auth.gate.worse),
        limit_ref="B" if auth_canary else None,
    )
    internal_panel = Panel(
        "1011 closes per connection",
        f"1011 (internal error) closes per connection opened, over {internal.window}, canary "
        f"against control. Red above {runbook.INTERNAL_ERROR_SPIKE_BOUND:.0%}: the bound of "
        "alert WebSocketInternalErrorSpike (a wsanalysis default: the gate file has no 1011 "
        "gate).",
        [Target(internal.expr(SELECTED, inline=inline), "{{variant}}")],
        unit=grafana_unit(internal),
        thresholds=_threshold_steps(runbook.INTERNAL_ERROR_SPIKE_BOUND, internal.gate.worse),
    )
    error_panel = errors and Panel(
        "Error rate: canary against control",
        f"{_gate_note(errors)} The dashed line is the canary's limit "
        f"({_limit_text(errors)}); alert WebSocketCanaryErrorRateWorse fires above it.",
        [
            Target(errors.expr(SELECTED, inline=inline), "{{variant}}"),
            _limit_target(errors, f"canary limit ({_limit_text(errors)})", inline=inline),
        ],
        unit=grafana_unit(errors),
        limit_ref="B",
    )

    def duration_panel(fig: GateFigure | None, title: str) -> Panel | None:
        if fig is None or fig.bound is None:
            return None
        return Panel(
            title,
            f"{_gate_note(fig)} Here from the server histogram "
            f"`{names.CONNECTION_DURATION}` (closed connections, over {fig.window}); the "
            f"judge's Kaplan-Meier estimate also counts the open ones. Red below "
            f"{fig.bound / 3600:g} h.",
            [Target(fig.expr(SELECTED, inline=inline), "{{variant}}")],
            unit=grafana_unit(fig),
            thresholds=_threshold_steps(fig.bound, fig.gate.worse),
        )

    reconnect_panel = reconnect and Panel(
        "Reconnect rate (per connection, over 1 h)",
        f"{_gate_note(reconnect)} Server view: closes with a code a client reconnects "
        f"after, per connection opened, over {reconnect.window}; the gate prefers the "
        f"clients' own `ws.reconnect_scheduled` beacons (RUM). Red above "
        f"{reconnect.bound:.0%}: alert WebSocketReconnectRateHigh.",
        [Target(reconnect.expr(SELECTED, inline=inline), "{{variant}}")],
        unit=grafana_unit(reconnect),
        thresholds=_threshold_steps(reconnect.bound or 0.0, reconnect.gate.worse),
    )
    backoff_panel = Panel(
        "Reconnect backoff (client-side, RUM only)",
        "Average client reconnect backoff is measured by the clients, not the server: "
        "Prometheus holds no backoff series. Read it from RUM beacons.",
        kind="text",
        content=_backoff_text(telemetry),
    )
    advice = Panel(
        "Reconnect advice sent",
        "Reconnect advice frames the server sent per second, by reason and variant "
        f"(`{names.RECONNECT_ADVICE_TOTAL}`, rate over 5m): a restart or drain announces itself "
        "here before the reconnect wave.",
        [Target(rate(names.RECONNECT_ADVICE_TOTAL, ("variant", "why")), "{{variant}} {{why}}")],
        unit="cps",
    )
    ttfb_targets = (
        [Target(ttfb_p95.expr(SELECTED, inline=inline), "{{variant}}")] if ttfb_p95 else []
    )
    if ttfb is not None and ttfb.gate.compare.against == "control":
        ttfb_targets.append(
            _limit_target(ttfb, f"canary limit ({_limit_text(ttfb)})", inline=inline)
        )
    ttfb_panel = (
        ttfb
        and ttfb_p95
        and Panel(
            "p95 assistant time-to-first-byte",
            "95th percentile of the time from a user message to the first assistant frame "
            f"(`{names.ASSISTANT_TTFB}`, over 5m), canary against control. Red above the "
            f"runbook's {runbook.TTFB_P95_TARGET_SECONDS:g} s target (alert "
            f"WebSocketAssistantTtfbP95High). {_gate_note(ttfb)}"
            + (
                " The dashed line is the canary's limit from control."
                if len(ttfb_targets) > 1
                else ""
            ),
            ttfb_targets,
            unit=grafana_unit(ttfb),
            thresholds=_threshold_steps(runbook.TTFB_P95_TARGET_SECONDS, "increase"),
            limit_ref="B" if len(ttfb_targets) > 1 else None,
        )
    )
    frames = Panel(
        "Frames sent by event",
        f"Frames the server sent per second by event type (`{names.FRAMES_SENT_TOTAL}`, rate "
        "over 5m), for the selected variants.",
        [Target(rate(names.FRAMES_SENT_TOTAL, ("event",)), "{{event}}")],
        unit="cps",
    )
    rows: list[tuple[str, list[Panel | None]]] = [
        ("Connections", [connections, opened]),
        ("Close codes", [close_codes, auth_panel, internal_panel, error_panel]),
        (
            "Connection lifetime and reconnects",
            [
                duration_panel(duration_p95, "p95 connection duration"),
                duration_panel(duration_p50, "p50 connection duration"),
                reconnect_panel,
                backoff_panel,
                advice,
            ],
        ),
        ("Assistant", [ttfb_panel, frames]),
        ("Other gates", [_gate_panel(figure, inline=inline) for figure in figures.others]),
    ]
    kept = [(title, [p for p in row if p]) for title, row in rows]
    return [(title, row) for title, row in kept if row]


def _limit_text(figure: GateFigure) -> str:
    compare = figure.gate.compare
    if compare.margin_type == "relative":
        return f"control × {1 + compare.margin:g}, gate {figure.gate.name}"
    margin = compare.margin * 1000 if figure.gate.unit == "s" else compare.margin
    unit = " ms" if figure.gate.unit == "s" else ""
    return f"control + {margin:g}{unit}, gate {figure.gate.name}"


def _backoff_text(telemetry: Telemetry = REFERENCE) -> str:
    """The backoff panel's text: the beacons in the service's names; the notebook code
    reads them through the telemetry file, so it keeps the contract's."""
    bound = runbook.RECONNECT_BACKOFF_ALERT_SECONDS
    read = f'"rum.ndjson.gz", telemetry="{telemetry.path}"' if telemetry.path else '"rum.ndjson.gz"'
    prose, code = _BACKOFF.format(bound=bound, read=read).split("```python", 1)
    return translate_prose(prose, telemetry) + "```python" + code


_BACKOFF = """### Reconnect backoff is a client-side figure

The server never sees how long a client waits before it reconnects, so the metric
contract has **no backoff series** and this dashboard does not invent one. The runbook
alerts when the **average backoff exceeds {bound:g} s**; that check runs on RUM beacons:

* `ws.reconnect_scheduled` beacons carry `backoff_ms` (one per scheduled reconnect);
* `ws.summary` beacons carry each client's average reconnect backoff.

**Query it** with the incident notebook (backoff over time per variant):
`wsanalysis report incident --param rum=<RUM export> --param start=<start> --param end=<end>`
(the canary notebook, `wsanalysis report canary --param rum=...`, draws the same figure
for canary against control)

or in a notebook cell:

```python
import polars as pl
from wsanalysis.sources.rum import read_rum
rum = read_rum({read}).frame
(rum.filter(pl.col("type") == "ws.reconnect_scheduled")
    .sort("ts")
    .group_by_dynamic("ts", every="5m", group_by="variant")
    .agg(avg_backoff_s=pl.col("backoff_ms").mean() / 1000)
    .filter(pl.col("avg_backoff_s") > {bound:g}))
```
"""


def _panel_json(
    panel: Panel, panel_id: int, x: int, y: int, telemetry: Telemetry = REFERENCE
) -> dict[str, Any]:
    """One panel's JSON, its queries, legends and descriptions in `telemetry`'s names."""
    spelling = Spelling(telemetry)

    def expr(target: Target) -> str:
        if target.spelled or telemetry.is_reference:
            return target.expr
        return translate_promql(target.expr, telemetry)

    body: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": translate_prose(panel.description, telemetry),
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
    }
    if panel.kind == "text":
        body["options"] = {"mode": "markdown", "content": panel.content}
        return body
    steps = panel.thresholds or [{"color": "green", "value": None}]
    custom: dict[str, Any] = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 60 if panel.stacked else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line+area" if panel.thresholds else "off"},
    }
    overrides: list[dict[str, Any]] = [
        {
            "matcher": {"id": "byName", "options": spelling.role_value(variant) or variant},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
        }
        for variant, color in COLORS.items()
        if any(t.legend == "{{variant}}" for t in panel.targets)
    ]
    if panel.limit_ref:
        overrides.append(
            {
                "matcher": {"id": "byFrameRefID", "options": panel.limit_ref},
                "properties": [
                    {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                    {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                    {"id": "custom.fillOpacity", "value": 0},
                ],
            }
        )
    body.update(
        {
            "datasource": DATASOURCE,
            "fieldConfig": {
                "defaults": {
                    "unit": panel.unit,
                    "min": 0,
                    "color": {"mode": "palette-classic"},
                    "custom": custom,
                    "thresholds": {"mode": "absolute", "steps": steps},
                },
                "overrides": overrides,
            },
            "options": {
                "legend": {
                    "displayMode": "table",
                    "placement": "bottom",
                    "showLegend": True,
                    "calcs": ["mean", "max"],
                },
                "tooltip": {"mode": "multi", "sort": "desc"},
            },
            "targets": [
                {
                    "refId": chr(ord("A") + index),
                    "datasource": DATASOURCE,
                    "editorMode": "code",
                    "expr": expr(target),
                    "legendFormat": translate_template(target.legend, telemetry),
                    "range": True,
                }
                for index, target in enumerate(panel.targets)
            ],
        }
    )
    return body


def _templating(telemetry: Telemetry = REFERENCE) -> dict[str, Any]:
    spelling = Spelling(telemetry)
    query = (
        f"label_values({spelling.series(names.CONNECTIONS_TOTAL)}, "
        f"{spelling.one_label('the variant variable')})"
    )
    return {
        "list": [
            {
                "name": DATASOURCE_VARIABLE,
                "label": "Prometheus",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "refresh": 1,
                "regex": "",
                "options": [],
            },
            {
                "name": "variant",
                "label": "Variant",
                "type": "query",
                "datasource": DATASOURCE,
                "definition": query,
                "query": {"query": query, "refId": "variant", "qryType": 1},
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "hide": 0,
                "refresh": 2,
                "regex": "",
                "sort": 1,
                "options": [],
            },
        ]
    }


def build_dashboard(
    gate_file: GateFile | None = None, *, inline: bool = False, telemetry: Telemetry = REFERENCE
) -> dict[str, Any]:
    """The dashboard as a JSON-ready dict (`inline`: raw series, no recording rules needed),
    in `telemetry`'s names."""
    gate_file = gate_file or load_gate_file()
    body: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row_title, row_panels in panels(gate_file, inline=inline, telemetry=telemetry):
        body.append(
            {
                "id": next_id,
                "type": "row",
                "title": row_title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            }
        )
        next_id, y, x, row_height = next_id + 1, y + 1, 0, 0
        for panel in row_panels:
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            body.append(_panel_json(panel, next_id, x, y, telemetry))
            next_id, x, row_height = next_id + 1, x + panel.width, max(row_height, panel.height)
        y += row_height
    source = "raw series" if inline else "the recording rules of `wsanalysis export rules`"
    return {
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "text", "name": "Text", "version": ""},
        ],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": f"WebSocket socket stack health, canary against control; queries read "
        f"{source}. Generated by `wsanalysis export dashboard`; thresholds from the gate file. "
        "An alert fires only when the data show a bound is crossed (confidence bound at the "
        "gate's level, enough events), so a quiet window's blip into the red may be noise.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": body,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["websocket", "wsanalysis", "canary"],
        "templating": _templating(telemetry),
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": TITLE,
        "uid": UID,
        "version": 1,
        "weekStart": "",
    }


def render_dashboard(
    gate_file: GateFile | None = None, *, inline: bool = False, telemetry: Telemetry = REFERENCE
) -> str:
    dashboard = build_dashboard(gate_file, inline=inline, telemetry=telemetry)
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"
