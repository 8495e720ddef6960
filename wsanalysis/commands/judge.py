"""`wsanalysis judge`: the pipeline's go/no-go, as `verdict.json` and an exit code.

    wsanalysis judge --data DIR [--gates FILE] [--profile canary|staging]
                     [--canary-share 0.1] [--judge wsanalysis|kayenta] --out verdict.json
    wsanalysis judge --prometheus URL --start T --end T [--rum PATH] ...

Exit codes: 0 GO, 1 NO_GO, 2 INCONCLUSIVE (or --inconclusive-exit), 3 any error.
verdict.json is written atomically; if it cannot be written the exit code is 3. A reader
that stops reading the printout (`| head`) changes nothing: the exit code is the verdict's.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wsanalysis.canary.coverage import NOTES
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import judge_input, sequential_plan
from wsanalysis.canary.judge import judge
from wsanalysis.canary.kayenta_gates import kayenta_judged
from wsanalysis.canary.sentences import verdict_line
from wsanalysis.canary.verdict import Verdict
from wsanalysis.commands import options
from wsanalysis.console import say
from wsanalysis.files import clear_stale, write_text_atomic
from wsanalysis.version import __version__


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "judge",
        help="judge a canary against control: verdict.json and exit code 0/1/2/3",
        description=__doc__.split("\n\n")[0],
    )
    options.add_source_arguments(parser)
    parser.add_argument("--gates", type=Path, help="gate file (default: the production gates)")
    parser.add_argument("--profile", default="canary", help="gate profile (default: canary)")
    parser.add_argument(
        "--canary-share",
        type=options.share,
        help="declared canary share in (0, 1), e.g. 0.1, for the sample-ratio check",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="anytime-valid mode for a "
        "pipeline that asks every few minutes (see --look and --horizon)",
    )
    parser.add_argument(
        "--look", type=options.duration, default="5m", help="sequential: time between looks (5m)"
    )
    parser.add_argument(
        "--horizon",
        type=options.duration,
        default="48h",
        help="sequential: planned canary length (48h)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="read every raw sample from the server instead of the gates' sums (audits)",
    )
    parser.add_argument(
        "--engine",
        choices=("polars", "duckdb", "spark"),
        default="polars",
        help="where the RUM gates' sums are computed: polars in memory (default), DuckDB "
        "(files larger than memory) or Spark (local, or the master in WSANALYSIS_SPARK_MASTER)",
    )
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="drop metrics-file lines that break their format's rules instead of failing "
        "(exit 3); verdict.json counts them per file and rule, and every gate that reads a "
        "series with dropped lines is inconclusive",
    )
    parser.add_argument("--judge", choices=("wsanalysis", "kayenta"), default="wsanalysis")
    parser.add_argument(
        "--inconclusive-exit",
        type=int,
        choices=(0, 1, 2),
        default=2,
        help="exit code for INCONCLUSIVE (default 2). Argo's job provider reads only "
        "success or failure: use 1 there so an unsettled canary is never promoted",
    )
    parser.add_argument("--out", type=Path, default=Path("verdict.json"), help="verdict file")
    parser.set_defaults(func=run, check=options.check_source_arguments)


def verdict_document(args: argparse.Namespace) -> tuple[Verdict, dict[str, Any]]:
    """The verdict for these arguments and its verdict.json document (no file written)."""
    gate_file = load_gate_file(args.gates)
    profile = gate_file.profile(args.profile)
    source = options.data_source(args)
    if args.judge == "kayenta":  # Kayenta reads the series themselves, in memory
        source = replace(source, engine="polars")
        if source.server is not None:
            source = replace(source, metrics=replace(source.server, raw=True))
    plan = sequential_plan(args.look, args.horizon) if args.sequential else None
    data = judge_input(profile, source, canary_share=args.canary_share, sequential=plan)
    verdict = judge(profile, data, gate_file=gate_file)
    if args.judge == "kayenta":
        verdict = kayenta_judged(profile, data, verdict)
    document = verdict.to_json()
    document["run"] = {
        "run_id": uuid.uuid4().hex,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "package_version": __version__,
    }
    return verdict, document


def exit_code(verdict: Verdict, inconclusive_exit: int = 2) -> int:
    """The verdict's exit code; INCONCLUSIVE as the caller asked (see --inconclusive-exit)."""
    if verdict.overall == "INCONCLUSIVE":
        return inconclusive_exit
    return int(verdict.exit_code)


def verdict_lines(verdict: Verdict) -> list[str]:
    """The verdict, the notes about its inputs that its first line does not already say
    (the CLI never goes quiet about them), and one line per gate."""
    line = verdict_line(verdict)
    notes = [f"  note: {n}" for n in verdict.metadata.get(NOTES) or [] if n not in line]
    return [line, *notes, *(f"  [{gate.decision:>12}] {gate.sentence}" for gate in verdict.gates)]


def run(args: argparse.Namespace) -> int:
    clear_stale(args.out)
    verdict, document = verdict_document(args)
    write_text_atomic(args.out, json.dumps(document, indent=2, default=str) + "\n", what="verdict")
    # the verdict, its reason and one line per gate, for the pipeline's log
    say(*verdict_lines(verdict))
    print(f"verdict written to {args.out}", file=sys.stderr)
    return exit_code(verdict, args.inconclusive_exit)
