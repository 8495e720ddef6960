"""The `wsanalysis` command.

Each subcommand lives in its own module under `wsanalysis.commands` and exposes
`register(subparsers)`, which adds its parser and sets `func(args) -> int`.

The exit code is a contract with release pipelines, and it never lies: 0 GO, 1 NO_GO,
2 INCONCLUSIVE, 3 anything else (bad usage, bad data, an unreachable server, a bug, an
interrupt). A failure is one line on stderr saying what failed; the traceback goes to
stderr with `--debug`, otherwise into a log file the line names. Commands that are not
verdicts (`incident`, `compare`, `summary`, ...) exit 0 when they ran.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from wsanalysis import commands
from wsanalysis.console import quiet
from wsanalysis.errors import WsAnalysisError
from wsanalysis.secrets import redact
from wsanalysis.version import __version__

EXIT_USAGE = 3
EXIT_CODES = (0, 1, 2, 3)
NOT_COMMANDS = {"options"}  # shared helpers in wsanalysis.commands
DEBUG_ENV = "WSANALYSIS_DEBUG"


def command_names() -> list[str]:
    """The subcommands, as typed (`judge-server` lives in `commands/judge_server.py`)."""
    return sorted(
        info.name.replace("_", "-")
        for info in pkgutil.iter_modules(commands.__path__)
        if info.name not in NOT_COMMANDS
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's module is imported.

    Subcommands import heavy libraries (papermill, websockets, scipy); a pipeline
    calling `wsanalysis judge` should not pay for the notebook machinery.
    """
    parser = argparse.ArgumentParser(
        prog="wsanalysis",
        description="Canary evaluation and incident analysis for WebSocket services.",
        epilog="exit codes: 0 GO, 1 NO_GO, 2 INCONCLUSIVE, 3 any error",
    )
    parser.add_argument("--version", action="version", version=f"wsanalysis {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"print the traceback of a failure (also ${DEBUG_ENV}=1); "
        "accepted anywhere on the line",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only else command_names():
        module = importlib.import_module(f"{commands.__name__}.{name.replace('-', '_')}")
        module.register(subparsers)
    return parser


def _say(command: str | None, line: str) -> None:
    print(redact(f"wsanalysis {command or ''}: {line}".replace("  ", " ")), file=sys.stderr)


def _log_traceback(command: str | None) -> Path | None:
    """The current traceback (secrets blanked) in a log file; None when none can be written."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = redact(traceback.format_exc())
    try:
        handle, name = tempfile.mkstemp(prefix=f"wsanalysis-{command or 'cli'}-{stamp}-",
                                        suffix=".log")  # fmt: skip
        with os.fdopen(handle, "w") as log:
            log.write(f"wsanalysis {__version__} {' '.join(sys.argv)}\n{text}")
    except OSError:
        return None
    return Path(name)


def report_failure(command: str | None, error: BaseException, debug: bool) -> int:
    """One line saying what failed (plus the fix for a known error); exit code 3."""
    if isinstance(error, WsAnalysisError):
        _say(command, f"error: {error.problem}")
        if error.fix:
            print(redact(f"  fix: {error.fix}"), file=sys.stderr)
        if debug:
            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return EXIT_USAGE
    if isinstance(error, KeyboardInterrupt):
        _say(command, "interrupted; no verdict")
        return EXIT_USAGE
    what = f"{type(error).__name__}: {error}".strip().rstrip(":")
    if debug:
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        _say(command, f"internal error ({what}); no verdict (traceback above)")
    else:
        log = _log_traceback(command)
        where = f"traceback in {log}" if log else "rerun with --debug for the traceback"
        _say(command, f"internal error ({what}); no verdict ({where})")
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    first = next((a for a in argv if not a.startswith("-")), None)
    command = first if first in command_names() else None
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on bad usage; the contract says 3
        return EXIT_USAGE if exit_.code not in (0, None) else 0
    except BaseException as error:  # noqa: BLE001 — a broken install is still exit 3
        return report_failure(command, error, debug)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        if getattr(args, "check", None):
            args.check(args)  # the checks between options, before anything is read
        code = int(args.func(args) or 0)
    except SystemExit as exit_:  # a parser.error raised by a command's own late check
        return EXIT_USAGE if exit_.code not in (0, None) else 0
    except BaseException as error:  # noqa: BLE001 — the contract: a crash is never a verdict
        return report_failure(args.command, error, debug)
    try:
        sys.stdout.flush()  # what is still buffered, while the code is known
    except BrokenPipeError:  # the reader stopped reading (`| head`): its choice
        quiet()
    if code not in EXIT_CODES:
        _say(args.command, f"error: exit code {code} is outside the contract; reporting 3")
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
