"""`wsanalysis export dashboard|rules`: Grafana dashboard JSON and Prometheus rules YAML.

Both are generated from the metric contract and the gate file (`--gates`, default the
production gates), so a dashboard, an alert and the canary judge agree on every target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.commands import options
from wsanalysis.errors import UsageError
from wsanalysis.observability import runbook
from wsanalysis.observability.dashboard import render_dashboard
from wsanalysis.observability.rules import render_rules
from wsanalysis.sources.telemetry import load_telemetry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="generate the Grafana dashboard or the Prometheus rules for the socket stack",
        description="Write the 'WebSocket Health' Grafana dashboard (JSON) or the Prometheus "
        "recording and alerting rules (YAML), thresholds drawn from the gate file.",
    )
    kinds = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    dashboard = kinds.add_parser(
        "dashboard", help="Grafana dashboard JSON (import it, or provision it)"
    )
    dashboard.add_argument(
        "--inline",
        action="store_true",
        help="query the raw series instead of the recording rules (for a Prometheus that "
        "does not load `wsanalysis export rules`)",
    )
    rules = kinds.add_parser("rules", help="Prometheus recording and alerting rules YAML")
    for sub in (dashboard, rules):
        sub.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
        sub.add_argument(
            "--gates", metavar="FILE", help="gate file with the thresholds (default: built-in)"
        )
        options.add_telemetry_argument(sub)
        sub.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    gate_file = load_gate_file(args.gates)
    telemetry = load_telemetry(args.telemetry)
    if args.what == "dashboard":
        text = render_dashboard(gate_file, inline=args.inline, telemetry=telemetry)
    else:
        text = render_rules(gate_file, telemetry)
    for sentence in runbook.figures(gate_file, telemetry).skipped:
        print(f"note: {sentence}", file=sys.stderr)
    if not args.out:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if out.is_dir() or not out.parent.is_dir():
        raise UsageError(
            f"cannot write {out}: " + ("it is a folder" if out.is_dir() else "no such folder"),
            "pass --out with a file path in an existing folder",
        )
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0
