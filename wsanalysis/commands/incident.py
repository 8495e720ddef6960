"""`wsanalysis incident`: find, bound and attribute incidents; write findings.json.

    wsanalysis incident --data DIR [--start T --end T] --out findings.json [--plot timeline.html]
    wsanalysis incident --prometheus URL --start T --end T [--rum PATH] --out findings.json

Runs every detector the data allows (storms, thundering herds, close-code spikes,
outages, restarts, delivery, survival, TTFB); the ones that cannot run say why in
`not_run`. Exit code 0 when the analysis ran (whatever it found), 3 on any error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wsanalysis.commands import options
from wsanalysis.console import say
from wsanalysis.files import clear_stale, write_text_atomic
from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.findings import dumps
from wsanalysis.incident.inputs import load_incident


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "incident",
        help="find reconnect storms, herds, close-code spikes, outages: findings.json",
        description=__doc__.split("\n\n")[0],
    )
    options.add_source_arguments(parser, what="incident")
    parser.add_argument(
        "--rum-sample", type=options.rum_share,
        help="share of sessions the RUM beacons keep (default: the telemetry file's "
        "rum.sample_rate, else the dataset's labels.json, else 1.0)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("findings.json"), help="findings file")
    parser.add_argument("--plot", type=Path, help="also write the timeline as an HTML page")
    parser.set_defaults(func=run, check=options.check_source_arguments)


def run(args: argparse.Namespace) -> int:
    clear_stale(args.out)
    data = load_incident(options.data_source(args), args.rum_sample)
    result = analyze(data)
    document = dumps(result.findings, result.not_run, data.metadata(), result.episodes)
    write_text_atomic(args.out, document, what="findings")
    if args.plot:
        from wsanalysis.incident.timeline import figure, timeline

        page = figure(timeline(data, result.findings)).to_html(include_plotlyjs=True)
        write_text_atomic(args.plot, page, what="timeline page")
    lines = []
    for episode in result.episodes:  # episodes first, their findings beneath
        lines.append(f"[{episode.severity:6}] episode ({episode.scope}): {episode.sentence}")
        lines += [f"    [{f.severity:6}] {f.kind}: {f.sentence}" for f in episode.findings]
    lines += [f"[not run] {skipped.detector}: {skipped.reason}" for skipped in result.not_run]
    lines.append(
        f"{len(result.episodes)} episodes, {len(result.findings)} findings written to {args.out}"
    )
    say(*lines)
    return 0
