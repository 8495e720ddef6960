"""`wsanalysis compare BEFORE AFTER`: the production before/after table.

    wsanalysis compare data/before_after_before data/before_after_after [--json table.json]
    wsanalysis compare DIR DIR --before-start T --before-end T --after-start T --after-end T

BEFORE and AFTER are dataset folders (the same folder twice to compare two windows of
it). Prints reconnection storms, reconnect attempts, auth errors, manual refreshes and
duplicate messages per day, and the p95 connection duration, each with change and CI.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wsanalysis.commands import options
from wsanalysis.console import say
from wsanalysis.errors import DataError, UsageError
from wsanalysis.files import write_text_atomic
from wsanalysis.incident.before_after import before_after, render
from wsanalysis.incident.inputs import load_dataset
from wsanalysis.windows import checked_window


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="before/after table of two datasets or two windows",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("before", type=Path, help="dataset folder before the change")
    parser.add_argument("after", type=Path, help="dataset folder after the change")
    for side in ("before", "after"):
        parser.add_argument(
            f"--{side}-start", type=options.moment, help=f"{side} window start (RFC 3339)"
        )
        parser.add_argument(
            f"--{side}-end", type=options.moment, help=f"{side} window end (RFC 3339)"
        )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    options.add_telemetry_argument(parser)
    parser.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Both windows in order, both folders present (before anything is read)."""
    for side in ("before", "after"):
        checked_window(
            getattr(args, f"{side}_start"),
            getattr(args, f"{side}_end"),
            names=(f"--{side}-start", f"--{side}-end"),
        )
        folder = getattr(args, side)
        if not folder.is_dir():
            raise UsageError(f"{side} folder {folder} does not exist", "give a dataset folder")


def run(args: argparse.Namespace) -> int:
    before = load_dataset(
        args.before, start=args.before_start, end=args.before_end, telemetry=args.telemetry
    )
    after = load_dataset(
        args.after, start=args.after_start, end=args.after_end, telemetry=args.telemetry
    )
    for name, data in (("before", before), ("after", after)):
        if data.window is None or data.window.duration.total_seconds() <= 0:
            raise DataError(f"the {name} window holds no data", "check the folder and window")
    rows = before_after(before, after)
    say(render(rows))
    if args.json:
        text = json.dumps([r.to_json() for r in rows], indent=2) + "\n"
        write_text_atomic(args.json, text, what="the before/after table")
    return 0
