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
from pathlib import Path

from wsanalysis.commands import options
from wsanalysis.errors import UsageError
from wsanalysis.files import write_text_atomic
from wsanalysis.sources import telemetry_check
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.metric_names import FAMILIES, HISTOGRAMS
from wsanalysis.sources.prometheus import PrometheusSource
from wsanalysis.sources.rum import read_rum
from wsanalysis.sources.telemetry import load_telemetry
from wsanalysis.windows import checked_window


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
    telemetry = load_telemetry(args.telemetry).with_variants(
        args.variant_label, args.canary_selector, args.control_selector
    )
    start, end = checked_window(args.start, args.end)
    if args.data is not None:
        dataset = Dataset.open(args.data)
        metrics = dataset.metrics_load(telemetry=telemetry, start=start, end=end)
        samples, spelled = metrics.frame, set(metrics.names)
        load = dataset.rum(start=start, end=end, telemetry=telemetry)
        where = str(args.data)
    else:
        series = [f + s for f in HISTOGRAMS for s in ("_bucket", "_count", "_sum")]
        series += [f for f in FAMILIES if f not in HISTOGRAMS]
        selector = '{__name__=~"' + "|".join(series) + '"}'
        with PrometheusSource(args.prometheus) as server:
            samples = server.read_samples(selector, start, end, telemetry=telemetry)
            spelled = set(server.metric_names(start, end))
        load = read_rum(args.rum, start=start, end=end, telemetry=telemetry) if args.rum else None
        where = f"Prometheus at {args.prometheus}" + (f" and {args.rum}" if args.rum else "")
    beacons = load.frame if load is not None else None
    findings = [
        *telemetry_check.metric_findings(samples, spelled, telemetry),
        *telemetry_check.variant_findings(samples, beacons, telemetry),
        *telemetry_check.beacon_findings(load, telemetry),
    ]
    print(telemetry_check.report(findings, where, (start, end) if start and end else None))
    return 0
