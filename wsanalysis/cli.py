"""The `wsanalysis` command.

Each subcommand lives in its own module under `wsanalysis.commands` and exposes
`register(subparsers)`, which adds its parser and sets `func(args) -> int`.
Exit codes follow the pipeline contract: 0 GO, 1 NO_GO, 2 INCONCLUSIVE,
3 usage or data error.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from wsanalysis import __version__, commands
from wsanalysis.errors import WsAnalysisError

EXIT_USAGE = 3


def command_names() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(commands.__path__))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's module is imported.

    Subcommands import heavy libraries (papermill, websockets, scipy); a pipeline
    calling `wsanalysis judge` should not pay for the notebook machinery.
    """
    parser = argparse.ArgumentParser(
        prog="wsanalysis",
        description="Canary evaluation and incident analysis for WebSocket services.",
    )
    parser.add_argument("--version", action="version", version=f"wsanalysis {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only else command_names():
        module = importlib.import_module(f"{commands.__name__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in command_names() else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on bad usage; the contract says 3
        return EXIT_USAGE if exit_.code not in (0, None) else 0
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except WsAnalysisError as error:
        print(f"wsanalysis {args.command}: error: {error.problem}", file=sys.stderr)
        if error.fix:
            print(f"  fix: {error.fix}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
