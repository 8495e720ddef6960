"""`wsanalysis calibrate`: the judge replayed on A/A splits of your own history.

    wsanalysis calibrate --data DIR [--gates FILE] [--profile canary] --window 1h
                         --canary-share 0.1 [--seeds 5] --out calibration.json
    wsanalysis calibrate --prometheus URL --start T --end T [--rum PATH] ...

Control's history is cut into windows of the canary's length; each window is split into
an A/A pair several times (control's pods into two groups by their `pod`/`instance`
label, RUM sessions by a seeded hash at the declared share) and judged as a canary would
be. Every replay is a healthy canary, so every NO_GO is false: the command prints a table
per gate and says whether the false NO_GO rate on this data is within the judge's level,
what this many replays can and cannot tell, and which gates cannot be replayed and why.

Exit codes: 0 when the calibration ran, whatever it found (read `false_no_go.within_level`
in calibration.json: true, false, or null when the replays cannot tell); 3 on any error.
It is a measurement of the judge, not a verdict on a release, so it never exits 1 or 2.
calibration.json is written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wsanalysis.calibration import DEFAULT_SEEDS, calibrate, load_history, table_text
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.commands import options
from wsanalysis.errors import UsageError
from wsanalysis.files import clear_stale, write_text_atomic
from wsanalysis.sources.dataset import file_fingerprint
from wsanalysis.times import parse_duration


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="replay the judge on A/A splits of your own history: calibration.json",
        description=__doc__.split("\n\n")[0],
    )
    options.add_source_arguments(parser, what="history")
    parser.add_argument("--gates", type=Path, help="gate file (default: the production gates)")
    parser.add_argument("--profile", default="canary", help="gate profile (default: canary)")
    parser.add_argument(
        "--window",
        type=options.duration,
        default="1h",
        help="the canaries' length: the history is replayed in windows of it (default 1h)",
    )
    parser.add_argument(
        "--canary-share",
        type=options.share,
        default=0.1,
        help="the canaries' declared share of traffic in (0, 1) (default 0.1)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help=f"A/A splits per window (default {DEFAULT_SEEDS}); more windows of history "
        "tell more than more seeds, which re-split the same data",
    )
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="drop metrics-file lines that break their format's rules (as judge --lenient)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--out", type=Path, default=Path("calibration.json"), help="calibration file"
    )
    parser.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    options.check_source_arguments(args)
    if not 1 <= args.seeds <= 1000:
        raise UsageError(f"--seeds {args.seeds} is outside 1..1000", "give e.g. 5")


def run(args: argparse.Namespace) -> int:
    clear_stale(args.out)
    gate_file = load_gate_file(args.gates)
    profile = gate_file.profile(args.profile)
    history = load_history(profile, options.data_source(args))
    document = calibrate(
        profile,
        history,
        window=parse_duration(args.window),
        share=args.canary_share,
        seeds=args.seeds,
        progress=not args.quiet,
    )
    document["settings"] |= {
        "gate_file": str(gate_file.path),
        "gate_file_sha256": file_fingerprint(gate_file.path),
    }
    write_text_atomic(args.out, json.dumps(document, indent=2) + "\n", what="calibration")
    print(table_text(document))
    print()
    for sentence in document["sentences"]:
        print(sentence)
    print(f"calibration written to {args.out}", file=sys.stderr)
    return 0
