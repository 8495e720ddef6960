"""`promtool test rules` unit tests for every generated alerting rule, built from the gates.

For each alert: a case where it fires (with its labels and its annotations, as
Prometheus's templates expand them) and cases where it must stay silent. Input series
are the raw contract series, so the recording rules are exercised too. Counter series
grow by a fixed amount per minute, which makes each ratio and quantile exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wsanalysis.canary.gates import GateFile
from wsanalysis.observability import promql
from wsanalysis.observability.rules import AlertRule, alert_rules
from wsanalysis.observability.runbook import INTERNAL_ERROR_SPIKE_BOUND, TTFB_P95_TARGET_SECONDS

MINUTES = 60  # length of every input series, one sample a minute


def counter(per_minute: float, minutes: int = MINUTES) -> str:
    return f"0+{per_minute:g}x{minutes}"


def series(metric: str, **labels: str) -> str:
    inner = ", ".join(f'{name}="{value}"' for name, value in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def connections(variant: str, per_minute: float) -> dict[str, str]:
    return {
        "series": series("ws_connections_total", variant=variant),
        "values": counter(per_minute),
    }


def closes(variant: str, code: str, per_minute: float) -> dict[str, str]:
    return {
        "series": series("ws_closes_total", variant=variant, code=code, reason=f"r{code}"),
        "values": counter(per_minute),
    }


def error_frames(variant: str, per_minute: float) -> dict[str, str]:
    return {
        "series": series("ws_frames_sent_total", variant=variant, event="error"),
        "values": counter(per_minute),
    }


def histogram(metric: str, variant: str, bounds: list[str], lower: str, per_minute: float):
    """Buckets where every observation lies just above `lower`: cumulative counts jump there."""
    index = bounds.index(lower)
    buckets = [
        {
            "series": series(f"{metric}_bucket", variant=variant, le=le),
            "values": counter(0 if i <= index else per_minute),
        }
        for i, le in enumerate(bounds)
    ]
    return [
        *buckets,
        {"series": series(f"{metric}_count", variant=variant), "values": counter(per_minute)},
    ]


DURATION_BOUNDS = ["1800", "3600", "7200", "14400", "+Inf"]
TTFB_BOUNDS = ["0.5", "0.75", "2", "3", "+Inf"]


def humanize_duration(seconds: float) -> str:
    """Prometheus's `humanizeDuration` for positive values."""
    if seconds < 1:
        return f"{seconds:.4g}s"
    whole = int(seconds)
    days, hours = whole // 86400, whole // 3600 % 24
    minutes, secs = whole // 60 % 60, whole % 60
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{seconds:.4g}s"


def expand(template: str, variant: str, value: float) -> str:
    """Expand the few template functions the generated annotations use."""
    text = template.replace("{{ $labels.variant }}", variant)
    text = text.replace("{{ $value | humanizePercentage }}", f"{value * 100:.4g}%")
    text = text.replace("{{ $value | humanizeDuration }}", humanize_duration(value))
    assert "{{" not in text, f"a template the test cannot expand: {text}"
    return text


@dataclass
class Case:
    """One unit test: input series, and at `eval_time` the alerts expected (variant → value)."""

    alert: str
    name: str
    input_series: list[dict[str, str]]
    firing: dict[str, float] = field(default_factory=dict)
    eval_time: str = "45m"


def cases(gate_file: GateFile) -> list[Case]:
    auth = promql.gate_figure(gate_file, "staging", "auth_spike_after_login", used_by="test")
    reconnect = promql.gate_figure(gate_file, "canary", "reconnect_rate", used_by="test")
    duration = promql.gate_figure(gate_file, "staging", "duration_p95", used_by="test")
    errors = promql.gate_figure(gate_file, "canary", "error_rate", used_by="test")
    assert auth.bound and reconnect.bound and duration.bound
    high, low = 4 * auth.bound, auth.bound / 5
    few = max(1, auth.gate.min_events // 10)  # connections a minute: too few in 5 minutes
    margin = errors.gate.compare.margin
    cases = [
        Case(
            "WebSocketAuthFailureSpike",
            "4401 closes at 4x the bound in canary, fine in control",
            [
                connections("canary", 100),
                closes("canary", "4401", 100 * high),
                connections("control", 100),
                closes("control", "4401", 100 * low),
            ],
            {"canary": high},
        ),
        Case(
            "WebSocketAuthFailureSpike",
            "4401 under the bound: silent",
            [connections("canary", 100), closes("canary", "4401", 100 * low)],
        ),
        Case(
            "WebSocketAuthFailureSpike",
            "half the connections fail but too few to judge (min_events): silent",
            [connections("canary", few), closes("canary", "4401", few / 2)],
        ),
        Case(
            "WebSocketAuthFailureSpike",
            "4401 above the bound in a quiet window, within noise (confidence bound): silent",
            [connections("canary", 13), closes("canary", "4401", 1)],
        ),
        Case(
            "WebSocketInternalErrorSpike",
            "1011 closes at 5x the bound",
            [
                connections("control", 100),
                closes("control", "1011", 500 * INTERNAL_ERROR_SPIKE_BOUND),
            ],
            {"control": 5 * INTERNAL_ERROR_SPIKE_BOUND},
        ),
        Case(
            "WebSocketInternalErrorSpike",
            "no 1011 close at all, other codes plenty: silent",
            [connections("control", 100), closes("control", "1000", 50)],
        ),
        Case(
            "WebSocketConnectionDurationP95Low",
            "canary connections all end within 30-60 min; control's last 2-4 h",
            [
                *histogram("ws_connection_duration_seconds", "canary", DURATION_BOUNDS, "1800", 10),
                *histogram(
                    "ws_connection_duration_seconds", "control", DURATION_BOUNDS, "7200", 10
                ),
            ],
            {"canary": 1800 + 0.95 * 1800},
        ),
        Case(
            "WebSocketConnectionDurationP95Low",
            "every connection lasts 2-4 h: silent",
            histogram("ws_connection_duration_seconds", "canary", DURATION_BOUNDS, "7200", 10),
        ),
        Case(
            "WebSocketReconnectRateHigh",
            "1006 closes at twice the hourly bound",
            [connections("canary", 100), closes("canary", "1006", 200 * reconnect.bound)],
            {"canary": 2 * reconnect.bound},
        ),
        Case(
            "WebSocketReconnectRateHigh",
            "many normal (1000) closes, few 1006: silent",
            [
                connections("canary", 100),
                closes("canary", "1000", 50),
                closes("canary", "1006", 50 * reconnect.bound),
            ],
        ),
        Case(
            "WebSocketAssistantTtfbP95High",
            "canary answers in 2-3 s, control in 0.5-0.75 s",
            [
                *histogram("ws_assistant_ttfb_seconds", "canary", TTFB_BOUNDS, "2", 30),
                *histogram("ws_assistant_ttfb_seconds", "control", TTFB_BOUNDS, "0.5", 30),
            ],
            {"canary": 2 + 0.95 * 1},
        ),
        Case(
            "WebSocketAssistantTtfbP95High",
            "everyone answers in 0.5-0.75 s: silent",
            histogram("ws_assistant_ttfb_seconds", "canary", TTFB_BOUNDS, "0.5", 30),
        ),
        Case(
            "WebSocketCanaryErrorRateWorse",
            "canary's error rate twice control's",
            [
                connections("canary", 100),
                error_frames("canary", 12),
                closes("canary", "1011", 3),
                connections("control", 100),
                error_frames("control", 5),
            ],
            {"canary": 0.15},
        ),
        Case(
            "WebSocketCanaryErrorRateWorse",
            "canary at 4x control's error rate on too few connections to tell: silent",
            [
                connections("canary", 5),
                error_frames("canary", 1),
                connections("control", 100),
                error_frames("control", 5),
            ],
        ),
        Case(
            "WebSocketCanaryErrorRateWorse",
            "canary worse than control but within the gate's margin: silent",
            [
                connections("canary", 100),
                error_frames("canary", 10 * (1 + margin / 2)),
                connections("control", 100),
                error_frames("control", 10),
            ],
        ),
    ]
    assert TTFB_P95_TARGET_SECONDS < 2.95, "the TTFB case assumes the 2 s target"
    assert duration.bound > 3510, "the duration case assumes a bound above 58 min"
    return cases


def unit_test_file(gate_file: GateFile, rules_file: str) -> dict[str, Any]:
    """The `promtool test rules` document: one test per case."""
    rules = {rule.name: rule for rule in alert_rules(gate_file)}
    tests = []
    for case in cases(gate_file):
        rule = rules[case.alert]
        tests.append(
            {
                "name": f"{case.alert}: {case.name}",
                "interval": "1m",
                "input_series": case.input_series,
                "alert_rule_test": [
                    {
                        "eval_time": case.eval_time,
                        "alertname": case.alert,
                        "exp_alerts": [
                            _expected(rule, variant, value)
                            for variant, value in sorted(case.firing.items())
                        ],
                    }
                ],
            }
        )
    return {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": tests}


def _expected(rule: AlertRule, variant: str, value: float) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": rule.severity, "variant": variant, **rule.labels},
        "exp_annotations": {
            "summary": expand(rule.summary, variant, value),
            "description": expand(rule.description, variant, value),
        },
    }


def alerts_covered(document: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Alert names with a firing case and with a silent case."""
    firing, silent = set(), set()
    for test in document["tests"]:
        for check in test["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    return firing, silent
