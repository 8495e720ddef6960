"""`wsanalysis judge`: the pipeline's go/no-go, as `verdict.json` and an exit code.

    wsanalysis judge --data DIR [--gates FILE] [--profile canary|staging]
                     [--canary-share 0.1] [--judge wsanalysis|kayenta] --out verdict.json
    wsanalysis judge --prometheus URL --start T --end T [--rum PATH] ...

Exit codes: 0 GO, 1 NO_GO, 2 INCONCLUSIVE (or --inconclusive-exit), 3 any error.
verdict.json is written atomically; if it cannot be written the exit code is 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from wsanalysis import __version__
from wsanalysis.canary.gates import DEFAULT_GATE_FILE, Profile, load_gate_file
from wsanalysis.canary.inputs import gate_metric_names, gate_rum_columns, load_judge_input
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.canary.kayenta_gates import kayenta_verdict
from wsanalysis.canary.sentences import verdict_line
from wsanalysis.canary.verdict import ExitCode
from wsanalysis.commands import options
from wsanalysis.files import clear_stale, write_text_atomic
from wsanalysis.run_metadata import stamp, subject
from wsanalysis.sources.dataset import file_fingerprint


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
    options.add_subject_arguments(parser)
    parser.set_defaults(func=run, check=options.check_source_arguments)


def load_input(args: argparse.Namespace, profile: Profile) -> JudgeInput:
    return load_judge_input(
        profile,
        data=args.data,
        prometheus=args.prometheus,
        start=args.start,
        end=args.end,
        rum=args.rum,
        canary_share=args.canary_share,
        variant_label=args.variant_label,
        canary_selector=args.canary_selector,
        control_selector=args.control_selector,
        sequential=args.sequential,
        look=args.look,
        horizon=args.horizon,
        rum_columns=gate_rum_columns(profile, args.variant_label),
        metric_names=gate_metric_names(profile),
        raw=args.raw or args.judge == "kayenta",  # Kayenta reads the series themselves
        engine="polars" if args.judge == "kayenta" else args.engine,
        lenient=args.lenient,
    )


def verdict_document(args: argparse.Namespace) -> dict:
    """The verdict.json document for these arguments (no file written yet)."""
    gate_file = load_gate_file(args.gates)
    profile = gate_file.profile(args.profile)
    data = load_input(args, profile)
    run_info = {
        "run_id": uuid.uuid4().hex,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "package_version": __version__,
        "gate_file": str(gate_file.path),
        "gate_file_sha256": file_fingerprint(gate_file.path),
        "canary_share": args.canary_share,
    }
    verdict = judge(profile, data)
    document = verdict.to_json()
    if args.judge == "kayenta":
        overall, result, skipped = kayenta_verdict(profile, data)
        document["judge"] = "kayenta"
        document["verdict"] = overall
        document["exit_code"] = int(ExitCode[overall])
        document["kayenta"] = _kayenta_json(result, skipped)
        document["reason"] = (
            f"Kayenta score {result.score:.0f} ({result.classification})"
            if result is not None
            else "Kayenta had no metric with data"
        )
    document["run"] = run_info
    dropped = dropped_lines_sentence(document)
    if dropped:
        document["reason"] = f"{document['reason']} {dropped}"
    return document


def dropped_lines_sentence(document: dict) -> str:
    """What a lenient read dropped, in one sentence ("" when nothing was dropped)."""
    dropped = (document.get("inputs") or {}).get("dropped_lines") or {}
    if not dropped:
        return ""
    files = "; ".join(
        f"{sum(rules.values()):,} lines of {name} "
        f"({', '.join(f'{rule} {n:,}' for rule, n in rules.items())})"
        for name, rules in dropped.items()
    )
    return f"Read leniently: {files} were dropped, and the gates reading them are not decided."


def exit_code(document: dict, inconclusive_exit: int = 2) -> int:
    """The verdict's exit code; INCONCLUSIVE as the caller asked (see --inconclusive-exit)."""
    if document["verdict"] == "INCONCLUSIVE":
        return inconclusive_exit
    return int(ExitCode[document["verdict"]])


def headline(document: dict) -> str:
    """The first line: the verdict, and for INCONCLUSIVE how long would settle it."""
    keys = ("name", "decision", "settle_in_s")
    gates = [SimpleNamespace(**{k: g.get(k) for k in keys}) for g in document["gates"]]
    verdict = SimpleNamespace(
        overall=document["verdict"],
        reason=document["reason"],
        settle_in_s=document.get("settle_in_s"),
        gates=gates,
    )
    line = verdict_line(verdict)
    dropped = dropped_lines_sentence(document)
    return line if not dropped or dropped in line else f"{line} {dropped}"


def print_verdict(document: dict) -> None:
    """The verdict, its reason and one line per gate, for the pipeline's log."""
    print(headline(document))
    for gate in document["gates"]:
        print(f"  [{gate['decision']:>12}] {gate['sentence']}")


def run(args: argparse.Namespace) -> int:
    clear_stale(args.out)
    document = verdict_document(args)
    stamp(document, "canary", producer="judge", names=subject(args),
          gate_file=args.gates or DEFAULT_GATE_FILE)  # fmt: skip
    write_text_atomic(args.out, json.dumps(document, indent=2, default=str) + "\n", what="verdict")
    print_verdict(document)
    print(f"verdict written to {args.out}", file=sys.stderr)
    return exit_code(document, args.inconclusive_exit)


def _kayenta_json(result, skipped: list[str]) -> dict:
    if result is None:
        return {"score": None, "skipped": skipped}
    return {
        "score": result.score,
        "classification": result.classification,
        "reason": result.reason,
        "metrics": {m.name: m.classification.label for m in result.metrics},
        "skipped": skipped,
    }
