"""`wsanalysis incident`: find, bound and attribute incidents; write findings.json.

    wsanalysis incident --data DIR [--start T --end T] --out findings.json [--plot timeline.html]
    wsanalysis incident --prometheus URL --start T --end T [--rum PATH] --out findings.json

Runs every detector the data allows (storms, thundering herds, close-code spikes,
outages, restarts, delivery, survival, TTFB); the ones that cannot run say why in
`not_run`. Exit code 0 when the analysis ran (whatever it found), 3 on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.findings import dumps
from wsanalysis.incident.inputs import load_dataset, load_prometheus


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "incident",
        help="find reconnect storms, herds, close-code spikes, outages: findings.json",
        description=__doc__.split("\n\n")[0],
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="dataset folder (metrics.om and/or RUM)")
    source.add_argument("--prometheus", metavar="URL", help="Prometheus base URL")
    parser.add_argument("--start", help="window start (RFC 3339 or epoch seconds)")
    parser.add_argument("--end", help="window end (RFC 3339 or epoch seconds)")
    parser.add_argument("--rum", type=Path, help="RUM beacons (with --prometheus)")
    parser.add_argument(
        "--rum-sample", type=float, default=1.0,
        help="share of sessions the RUM export keeps (with --prometheus; default 1.0)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("findings.json"), help="findings file")
    parser.add_argument("--plot", type=Path, help="also write the timeline as an HTML page")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.data is not None:
        data = load_dataset(args.data, start=args.start, end=args.end)
    else:
        data = load_prometheus(
            args.prometheus, args.start, args.end, rum=args.rum, rum_sample=args.rum_sample
        )
    result = analyze(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps(result.findings, result.not_run, data.metadata(), result.episodes))
    if args.plot:
        from wsanalysis.incident.timeline import figure, timeline

        args.plot.parent.mkdir(parents=True, exist_ok=True)
        figure(timeline(data, result.findings)).write_html(args.plot, include_plotlyjs=True)
    for episode in result.episodes:  # issue 18: episodes first, their findings beneath
        print(f"[{episode.severity:6}] episode ({episode.scope}): {episode.sentence}")
        for finding in episode.findings:
            print(f"    [{finding.severity:6}] {finding.kind}: {finding.sentence}")
    for skipped in result.not_run:
        print(f"[not run] {skipped.detector}: {skipped.reason}")
    print(f"{len(result.episodes)} episodes, {len(result.findings)} findings written to {args.out}")
    return 0
