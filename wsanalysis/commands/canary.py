"""`wsanalysis canary`: the pipeline's short form of `wsanalysis report canary`.

    wsanalysis canary --param data=DIR --param canary_share=0.1 [--out DIR]

Same parameters, outputs and exit codes (0 GO, 1 NO_GO, 2 INCONCLUSIVE, 3 any error:
bad parameters, data error, failed cell, timeout, dead kernel).
"""

from __future__ import annotations

import argparse

from wsanalysis.commands.report import add_report_arguments, parameters_epilog, run_kind
from wsanalysis.report.kinds import CANARY


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "canary",
        help="canary report for a pipeline: same as `report canary`, exit code 0/1/2/3",
        description=__doc__.split("\n\n")[0],
        epilog=parameters_epilog(CANARY),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_report_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_kind(CANARY, args)
