"""Prometheus recording and alerting rules for the socket stack, generated from the gates.

The recording rules are the rates and quantiles the dashboard and the alerts share
(`promql.recording_rules`). The alerting rules are the runbook's: 4401 spike after
login, 1011 spike, p95 connection duration under 2 h, reconnect rate over 5% of
connections per hour, p95 TTFB over 2 s, canary worse than control on error rate.
Where a threshold exists in the gate file it is read from there, so the alert and the
judge agree; the runbook's absolute targets that the gate file lacks are the named
constants of `runbook`. Each alert says what is wrong (summary) and the first diagnostic step:
which notebook to run, with which parameters (description; no links).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from wsanalysis.canary.gates import DEFAULT_GATE_FILE, GateFile, load_gate_file
from wsanalysis.observability import promql, runbook
from wsanalysis.observability.promql import CANARY, CONTROL, GateFigure, only
from wsanalysis.observability.runbook import (
    INTERNAL_ERROR_SPIKE_BOUND,
    RECONNECT_BACKOFF_ALERT_SECONDS,
    TTFB_P95_TARGET_SECONDS,
)
from wsanalysis.sources.promql_text import translate_prose, translate_template
from wsanalysis.sources.telemetry import REFERENCE, Telemetry

GROUP_RECORDING = "wsanalysis-websocket-recording"
GROUP_ALERTS = "wsanalysis-websocket-alerts"
EVALUATION_INTERVAL = "1m"


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule; `signal` is its figure without the condition (it must have data)."""

    name: str
    signal: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    figure: GateFigure | None = field(default=None, compare=False, repr=False)

    def spelled(self) -> AlertRule:
        """The rule in its figure's telemetry names (queries, `$labels`, prose)."""
        figure = self.figure
        if figure is None or figure.telemetry.is_reference:
            return self
        telemetry = figure.telemetry

        def text(value: str) -> str:
            return translate_prose(translate_template(value, telemetry), telemetry)

        read = f" Read this service's names with `--param telemetry={telemetry.path}`."
        return replace(
            self,
            signal=figure.spell(self.signal),
            expr=figure.spell(self.expr),
            summary=text(self.summary),
            description=text(self.description) + (read if telemetry.path else ""),
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "alert": self.name,
            "expr": re.sub(r" and on \(([^()]+)\) ", r"\nand on (\1) ", self.expr),
            "for": self.for_,
            "labels": {"severity": self.severity, **self.labels},
            "annotations": {"summary": self.summary, "description": self.description},
        }


def _severity(figure: GateFigure) -> str:
    return "critical" if figure.gate.critical else "warning"


def _worse(figure: GateFigure) -> str:
    return ">" if figure.gate.worse == "increase" else "<"


def _gates_param(gate_file: GateFile) -> str:
    return "" if gate_file.path == DEFAULT_GATE_FILE else f" --param gates={gate_file.path}"


#: The notebooks' parameters an alert's first step sets (notebooks/*.py `parameters` cells).
PROMETHEUS_PARAM = "--param prometheus=<this Prometheus's URL>"
RUM_PARAM = "--param rum=<RUM export>"


def incident_step(what: str) -> str:
    """The first diagnostic step for a server-side incident, with the parameters to pass."""
    return (
        "First step: run the incident notebook (notebooks/incident_analysis) over the hour "
        f"before the alert: `wsanalysis report incident {PROMETHEUS_PARAM} "
        "--param start=<1 h before the alert fired, RFC 3339> --param end=<now>` (add "
        f"`{RUM_PARAM}` when you have one), then read, for variant {{{{ $labels.variant }}}}, "
        f"{what}."
    )


def canary_step(gate_file: GateFile, profile: str, gate: str) -> str:
    return (
        "First step: judge the variant with the canary notebook (notebooks/canary_evaluation): "
        f"`wsanalysis report canary {PROMETHEUS_PARAM} "
        "--param start=<when the canary started, RFC 3339> --param end=<now> "
        f"--param profile={profile}{_gates_param(gate_file)}` (add `{RUM_PARAM}` for the "
        f"clients' view), then read the `{gate}` gate's row and its evidence."
    )


def beyond_bound(figure: GateFigure) -> str:
    """The figure beyond its absolute bound, with enough evidence to say so.

    For a ratio, the one-sided confidence bound at the gate's level (Poisson variance
    `p / n`, conservative for a proportion) must lie beyond the bound too, so a handful of
    closes in a quiet window does not page anyone; every figure needs the gate's
    `min_events` in the window.
    """
    assert figure.bound is not None
    signal, op, bound = figure.expr(), _worse(figure), f"{figure.bound:g}"
    expr = f"{signal} {op} {bound}"
    if figure.kind == "ratio":
        sign = "-" if op == ">" else "+"
        spread = f"{figure.z:.4g} * sqrt(({signal}) / ({figure.volume()}))"
        expr += f" and on (variant) ({signal}) {sign} {spread} {op} {bound}"
    return expr + figure.enough_events()


def canary_beyond_control(figure: GateFigure) -> str:
    """The canary's figure beyond control's plus the gate's margin, with evidence.

    For a ratio, the confidence bound of the difference (canary minus the limit drawn
    from control, Poisson variances) must lie beyond zero, as the judge's test asks.
    """
    canary, control = figure.expr(only(CANARY)), figure.expr(only(CONTROL))
    compare, op = figure.gate.compare, _worse(figure)
    limit = promql.limit_expr(compare, f"({control})")
    expr = f"{canary} {op} on () group_left () {limit}"
    if figure.kind == "ratio":
        scale = (1 + compare.margin) ** 2 if compare.margin_type == "relative" else 1.0
        variance = (
            f"({canary}) / ({figure.volume(only(CANARY))}) + on () group_left () "
            f"({scale:g} * ({control}) / ({figure.volume(only(CONTROL))}))"
        )
        difference = f"(({canary}) - on () group_left () ({limit}))"
        sign = "-" if op == ">" else "+"
        expr += f" and on (variant) {difference} {sign} {figure.z:.4g} * sqrt({variance}) {op} 0"
    return expr + figure.enough_events(only(CANARY))


def alert_rules(gate_file: GateFile, telemetry: Telemetry = REFERENCE) -> list[AlertRule]:
    """The runbook's alerting rules, thresholds drawn from `gate_file`, then one alert per
    other gate of the file; in `telemetry`'s names. A runbook alert whose gate the file
    lacks is left out (`runbook.figures(...).skipped` says so)."""
    figures = runbook.figures(gate_file, telemetry)
    auth, internal = figures.auth_spike, figures.internal_errors
    duration, reconnect = figures.duration_p95, figures.reconnect_rate
    ttfb, ttfb_p95, errors = figures.ttfb, figures.ttfb_target, figures.error_rate
    rules: list[AlertRule] = []
    if auth is not None:
        rules.append(
            AlertRule(
                name="WebSocketAuthFailureSpike",
                figure=auth,
                signal=auth.expr(),
                expr=beyond_bound(auth),
                for_="5m",
                severity=_severity(auth),
                labels={"gate": auth.gate.name},
                summary=(
                    "{{ $labels.variant }}: {{ $value | humanizePercentage }} of connections "
                    f"closed with 4401 (unauthenticated) over {auth.window}, above the "
                    f"{auth.bound:.0%} bound of gate {auth.gate.name} (a spike after a login or "
                    "token change)"
                ),
                description=incident_step(
                    "the 4401 close-code spike finding and the timeline around the last login, "
                    "token rotation or deploy"
                ),
            )
        )
    rules.append(
        AlertRule(
            name="WebSocketInternalErrorSpike",
            figure=internal,
            signal=internal.expr(),
            expr=beyond_bound(internal),
            for_="5m",
            severity="critical",
            summary=(
                "{{ $labels.variant }}: {{ $value | humanizePercentage }} of connections "
                f"closed with 1011 (internal error) over {internal.window}, above "
                f"{INTERNAL_ERROR_SPIKE_BOUND:.0%}"
            ),
            description=incident_step(
                "the 1011 close-code spike finding (which share of sessions, since when) "
                "and the server logs of that variant for the same minutes"
            ),
        )
    )
    if duration is not None:
        rules.append(
            AlertRule(
                name="WebSocketConnectionDurationP95Low",
                figure=duration,
                signal=duration.expr(),
                expr=beyond_bound(duration),
                for_="30m",
                severity=_severity(duration),
                labels={"gate": duration.gate.name},
                summary=(
                    "{{ $labels.variant }}: p95 connection duration is {{ $value | "
                    f"humanizeDuration }}}}, under the {duration.bound / 3600:g} h bound of gate "
                    f"{duration.gate.name} (connections are being cut short)"
                ),
                description=canary_step(gate_file, duration.profile, duration.gate.name)
                + " Its Kaplan-Meier estimate censors open connections; then run "
                "`wsanalysis report incident` with the same window to see which close codes "
                "end the short connections.",
            )
        )
    if reconnect is not None:
        rules.append(
            AlertRule(
                name="WebSocketReconnectRateHigh",
                figure=reconnect,
                signal=reconnect.expr(),
                expr=beyond_bound(reconnect),
                for_="15m",
                severity=_severity(reconnect),
                labels={"gate": reconnect.gate.name},
                summary=(
                    "{{ $labels.variant }}: {{ $value | humanizePercentage }} of connections "
                    f"ended in a reconnecting close over the last {reconnect.window}, above the "
                    f"{reconnect.bound:.0%} per hour bound of gate {reconnect.gate.name}"
                ),
                description=incident_step(
                    "the reconnection-storm and thundering-herd findings (the server figure counts "
                    "closes with a code a client reconnects after; the client's own count is in "
                    "the RUM beacons)"
                ),
            )
        )
    if ttfb is not None and ttfb_p95 is not None:
        rules.append(
            AlertRule(
                name="WebSocketAssistantTtfbP95High",
                figure=ttfb_p95,
                signal=ttfb_p95.expr(),
                expr=(
                    beyond_bound(ttfb_p95)
                    if ttfb_p95.bound is not None
                    else f"{ttfb_p95.expr()} > {TTFB_P95_TARGET_SECONDS:g}"
                ),
                for_="10m",
                severity="critical",
                summary=(
                    "{{ $labels.variant }}: p95 assistant time-to-first-byte is "
                    "{{ $value | humanizeDuration }}, over the "
                    f"{TTFB_P95_TARGET_SECONDS:g} s target"
                ),
                description=canary_step(gate_file, ttfb.profile, ttfb.gate.name)
                + " With a RUM export the gate reads the clients' `ws.ttfb` beacons; "
                "`wsanalysis report incident` over the same window shows the time-to-first-byte "
                "degradation windows.",
            )
        )
    if errors is not None:
        rules.append(
            AlertRule(
                name="WebSocketCanaryErrorRateWorse",
                figure=errors,
                signal=errors.expr(only(CANARY)),
                expr=canary_beyond_control(errors),
                for_="10m",
                severity=_severity(errors),
                labels={"gate": errors.gate.name},
                summary=(
                    "canary error rate (error frames and 1011 closes per connection) is "
                    "{{ $value | humanizePercentage }}, worse than control's by more than the "
                    f"{_margin_text(errors)} margin of gate {errors.gate.name}"
                ),
                description=canary_step(gate_file, errors.profile, errors.gate.name)
                + " Hold the rollout until the verdict is in.",
            )
        )
    rules += [gate_alert(gate_file, figure) for figure in figures.others]
    return [rule.spelled() for rule in rules]


def gate_alert(gate_file: GateFile, figure: GateFigure) -> AlertRule:
    """The alert of a gate the runbook does not name: its figure beyond its bound, or the
    canary's beyond control's limit, with the gate's confidence and minimum events."""
    gate = figure.gate
    words = "".join(part.title() for part in f"{figure.profile}_{gate.name}".split("_"))
    if gate.compare.against == "bound":
        expr, side = beyond_bound(figure), f"beyond the {figure.bound:g} bound"
        signal, who = figure.expr(), "{{ $labels.variant }}"
    else:
        expr, side = (
            canary_beyond_control(figure),
            f"worse than control's limit ({_margin_text(figure)} margin)",
        )
        signal, who = figure.expr(only(CANARY)), "canary"
    return AlertRule(
        name=f"WsanalysisGate{words}",
        figure=figure,
        signal=signal,
        expr=expr,
        for_="10m",
        severity=_severity(figure),
        labels={"gate": gate.name},
        summary=f"{who}: {gate.title} is {{{{ $value }}}}, {side} (gate {gate.name}, "
        f"profile {figure.profile})",
        description=canary_step(gate_file, figure.profile, gate.name),
    )


def _margin_text(figure: GateFigure) -> str:
    compare = figure.gate.compare
    if compare.margin_type == "relative":
        return f"{compare.margin:.0%}"
    return f"{compare.margin:g} {figure.gate.unit}".strip()


def rules_document(gate_file: GateFile, telemetry: Telemetry = REFERENCE) -> dict[str, object]:
    figures = runbook.figures(gate_file, telemetry)
    recording = promql.recording_rules(figures.all(), telemetry)
    return {
        "groups": [
            {"name": GROUP_RECORDING, "interval": EVALUATION_INTERVAL, "rules": recording},
            {
                "name": GROUP_ALERTS,
                "interval": EVALUATION_INTERVAL,
                "rules": [rule.as_dict() for rule in alert_rules(gate_file, telemetry)],
            },
        ]
    }


def render_rules(gate_file: GateFile | None = None, telemetry: Telemetry = REFERENCE) -> str:
    """The rules file as YAML text, with a header naming its source (and what of the
    runbook is left out, and why), in `telemetry`'s names."""
    gate_file = gate_file or load_gate_file()
    skipped = runbook.figures(gate_file, telemetry).skipped
    header = (
        "# Generated by `wsanalysis export rules` from "
        f"{_source_name(gate_file)}; regenerate rather than edit.\n"
        "# Thresholds come from the gate file; the runbook's absolute targets that it lacks\n"
        "# are constants of wsanalysis/observability/runbook.py.\n"
        "# Not here: the runbook's alert on an average client reconnect backoff over "
        f"{RECONNECT_BACKOFF_ALERT_SECONDS:g} s.\n"
        "# Backoff is measured by the clients (RUM `ws.reconnect_scheduled` beacons, "
        "`backoff_ms`); Prometheus\n"
        "# holds no such series. Check it with `wsanalysis report incident --param "
        "rum=<RUM export> ...`.\n"
        + (f"# Names: the telemetry mapping {telemetry.path}.\n" if telemetry.path else "")
        + "".join(f"# {sentence}\n" for sentence in skipped)
    )
    header = translate_prose(header, telemetry)
    document = rules_document(gate_file, telemetry)
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return header + body


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (an alert's conditions, one a line) as `|` blocks."""


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)


def _source_name(gate_file: GateFile) -> str:
    if gate_file.path == DEFAULT_GATE_FILE:
        return "the default gate file (wsanalysis/canary/default_gates.yaml)"
    return str(Path(gate_file.path))
