"""`wsanalysis telemetry init|check`: write a telemetry mapping, check one against data.

    wsanalysis telemetry init [--out telemetry.yaml]
    wsanalysis telemetry check --data DIR --telemetry FILE
    wsanalysis telemetry check --prometheus URL --start T --end T [--rum PATH] --telemetry FILE

`check` prints, role by role (metric families, labels, variants, beacon types and
fields), what the data hold under the mapping's names and what is missing, with the
closest names the data hold. It exits 0 when it ran, 3 when nothing could be read.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from wsanalysis.commands import options
from wsanalysis.errors import UsageError
from wsanalysis.files import write_text_atomic
from wsanalysis.loading import Reads, load
from wsanalysis.sources import telemetry_check
from wsanalysis.sources.metric_names import FAMILIES, HISTOGRAMS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "telemetry",
        help="write a telemetry mapping (init) or check one against your data (check)",
        description=__doc__.split("\n\n")[0],
    )
    actions = parser.add_subparsers(dest="telemetry_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="write a commented telemetry mapping template")
    init.add_argument("--out", type=Path, help="write here (default: standard output)")
    init.set_defaults(func=run_init)
    check = actions.add_parser(
        "check", help="what the data hold, role by role, under a telemetry mapping's names"
    )
    options.add_source_arguments(check, what="check")
    check.set_defaults(func=run_check, check=options.check_source_arguments)


def run_init(args: argparse.Namespace) -> int:
    text = telemetry_check.template()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    if args.out.exists():
        raise UsageError(f"{args.out} exists", "give another --out, or remove the file first")
    write_text_atomic(args.out, text, what="telemetry template")
    print(f"wrote {args.out}; fill it in, then: wsanalysis telemetry check --telemetry {args.out}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    source = options.data_source(args)
    if source.server is not None:  # the samples themselves: series and variants counted
        source = replace(source, metrics=replace(source.server, raw=True))
    series = [f + s for f in HISTOGRAMS for s in ("_bucket", "_count", "_sum")]
    series += [f for f in FAMILIES if f not in HISTOGRAMS]
    loaded = load(source, Reads(metrics=tuple(series)))  # the one loader, in your names
    telemetry = source.telemetry
    spelled = set(loaded.held.spelled) if loaded.held is not None else set()
    rum = loaded.rum_read
    where = str(args.data) if args.data is not None else f"Prometheus at {args.prometheus}"
    if args.data is None and args.rum:
        where += f" and {args.rum}"
    findings = [
        *telemetry_check.metric_findings(loaded.samples, spelled, telemetry),
        *telemetry_check.variant_findings(
            loaded.samples, rum.frame if rum is not None else None, telemetry
        ),
        *telemetry_check.beacon_findings(rum, telemetry),
    ]
    window = (source.start, source.end) if source.start and source.end else None
    print(telemetry_check.report(findings, where, window))
    return 0
