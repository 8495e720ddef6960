"""`wsanalysis report canary`: execute a report notebook into report.ipynb, .html, .json.

    wsanalysis report canary [--param k=v ...] [--params FILE.yaml] [--out DIR]
                             [--timeout S] [--prepare-only]

Exit codes: 0 GO, 1 NO_GO, 2 INCONCLUSIVE, 3 any error (bad parameters, data error, a
failed cell, a timeout, a dead kernel). Prometheus credentials come from WSANALYSIS_PROM_* variables,
never from parameters (parameters are published in the notebook and the HTML).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from wsanalysis.console import say
from wsanalysis.errors import UsageError
from wsanalysis.report.execute import DEFAULT_TIMEOUT, execute, new_run_id, prepare
from wsanalysis.report.kinds import KINDS, OUTPUT_PARAMETER, ReportKind, kind
from wsanalysis.report.parameters import parse_assignments


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every report command shares (`report <kind>` and `canary`)."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a notebook parameter (repeatable; overrides --params)",
    )
    parser.add_argument("--params", type=Path, metavar="FILE", help="YAML file of parameters")
    parser.add_argument("--out", type=Path, help="output folder (default: reports/<run-id>/)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds allowed per cell (default {DEFAULT_TIMEOUT})",
    )
    parser.add_argument(
        "--telemetry",
        type=Path,
        metavar="FILE",
        help="telemetry mapping (YAML) of your names; the same as --param telemetry=FILE",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="write the notebook with parameters injected, without executing it",
    )


def parameters_epilog(report: ReportKind) -> str:
    """The notebook's parameters, read from its `parameters` cell, for `--help`."""
    try:
        listing = report.spec().describe()
    except (OSError, ValueError, UsageError) as error:  # a missing notebook: CLI still works
        listing = f"  (cannot read {report.notebook}: {error})"
    return (
        f"parameters of the {report.name} notebook (--param NAME=VALUE):\n{listing}\n\n"
        "exit codes: 0 GO, 1 NO_GO, 2 INCONCLUSIVE, 3 any error (bad parameters, data error, "
        "failed cell, timeout, dead kernel)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="execute a report notebook: report.ipynb, report.html, verdict.json",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(parameters_epilog(k) for k in KINDS.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=sorted(KINDS), help="which report")
    add_report_arguments(parser)
    parser.set_defaults(func=run)


def read_params_file(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--params {path} does not exist", "pass a YAML file") from None
    except yaml.YAMLError as error:
        raise UsageError(f"--params {path} is not valid YAML: {error}", "fix the file") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"--params {path} is not a mapping", "write one `name: value` per line")
    return {str(k): v for k, v in values.items()}


def run_kind(report: ReportKind, args: argparse.Namespace) -> int:
    values = read_params_file(args.params) if args.params else {}
    values.update(parse_assignments(args.param))
    if args.telemetry is not None:
        values["telemetry"] = str(args.telemetry)
    if OUTPUT_PARAMETER in values:
        raise UsageError(f"parameter {OUTPUT_PARAMETER!r} is set by --out", "use --out DIR")
    params = report.validate(values)
    run_id = new_run_id(report.name)
    out = args.out or Path("reports") / run_id
    if args.prepare_only:
        params[OUTPUT_PARAMETER] = str(out.resolve())
        notebook = prepare(report, params, out)
        print(f"prepared {notebook} (open it in JupyterLab)")
        return 0
    result = execute(report, params, out, timeout=args.timeout, run_id=run_id)
    document = result.document or {}
    if result.failure is not None:
        print(f"REPORT FAILED ({result.failure.kind}): {result.failure.message}", file=sys.stderr)
    else:
        say(f"{document.get('verdict')}: {document.get('reason', '')}")  # `| head`: still its code
    print(f"report: {result.html}", file=sys.stderr)
    print(f"notebook: {result.notebook}", file=sys.stderr)
    print(f"{report.result_file}: {result.out / report.result_file}", file=sys.stderr)
    return result.exit_code


def run(args: argparse.Namespace) -> int:
    return run_kind(kind(args.kind), args)
