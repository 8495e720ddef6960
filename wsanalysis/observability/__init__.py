"""Observability as code: the Grafana dashboard and Prometheus rules for the socket stack.

`promql` is the shared vocabulary (recorded rates and quantiles, gate figures),
`dashboard` renders the "WebSocket Health" dashboard, `rules` the recording and
alerting rules; thresholds come from the gate file (`wsanalysis.canary.gates`).
"""

from wsanalysis.observability.dashboard import build_dashboard, render_dashboard
from wsanalysis.observability.rules import alert_rules, render_rules, rules_document

__all__ = ["alert_rules", "build_dashboard", "render_dashboard", "render_rules", "rules_document"]
