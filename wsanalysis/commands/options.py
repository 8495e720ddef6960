"""What several commands share: the data-source options and argparse types that check
values at parse time (a share in (0, 1), a duration, an instant, a URL without secrets).

Not a command: `cli.command_names` skips this module. A bad value is an argparse error,
which `cli.main` turns into exit code 3 before anything is read.
"""

from __future__ import annotations

import argparse
import math
from datetime import timedelta
from pathlib import Path

from wsanalysis.errors import UsageError
from wsanalysis.loading import DataSource
from wsanalysis.secrets import checked_url
from wsanalysis.times import parse_duration, parse_moment
from wsanalysis.windows import checked_window


def share(text: str) -> float:
    """A share strictly between 0 and 1 (e.g. the canary's share of traffic)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; e.g. 0.1") from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1 (exclusive); e.g. 0.1")
    return value


def rum_share(text: str) -> float:
    """A sampling share in (0, 1]: 1.0 means every session was kept."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; e.g. 0.2") from None
    if not (math.isfinite(value) and 0 < value <= 1):
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]; e.g. 0.2")
    return value


def duration(text: str) -> str:
    """A positive duration such as 5m or 48h (kept as text: the loaders parse it)."""
    try:
        value: timedelta = parse_duration(text)
    except (ValueError, UsageError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; e.g. 5m, 48h") from None
    if value.total_seconds() <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration; e.g. 5m")
    return text


def moment(text: str) -> str:
    """An instant (RFC 3339 or epoch seconds), checked and kept as text."""
    try:
        parse_moment(text, "time")
    except UsageError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; use RFC 3339 (2026-11-02T06:00:00Z) or epoch seconds"
        ) from None
    return text


def prometheus_url(text: str) -> str:
    """A Prometheus base URL without credentials in it (those come from the environment)."""
    try:
        checked_url(text, "--prometheus")
    except UsageError as error:
        raise argparse.ArgumentTypeError(f"{error.problem}: {error.fix}") from None
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError("the URL must start with http:// or https://")
    return text


def telemetry_file(text: str) -> Path:
    """A telemetry mapping file, read and checked at parse time (a bad one is exit 3)."""
    from wsanalysis.sources.telemetry import load_telemetry

    try:
        load_telemetry(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(f"{error.problem}: {error.fix}") from None
    return Path(text)


def add_telemetry_argument(parser: argparse.ArgumentParser) -> None:
    """--telemetry FILE: the user's names for the contract's telemetry (docs/telemetry.md)."""
    parser.add_argument(
        "--telemetry",
        metavar="FILE",
        type=telemetry_file,
        help="telemetry mapping (YAML): your metric, label, variant and beacon names "
        "(`wsanalysis telemetry init` writes one; see docs/telemetry.md)",
    )


def add_source_arguments(
    parser: argparse.ArgumentParser, *, what: str = "canary", selectors: bool = True
) -> None:
    """--data | --prometheus, --start/--end, --rum and the variant mapping: one set of
    data-source options for `judge`, `incident` and anything that reads the same inputs."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="dataset folder (metrics.om and/or RUM)")
    source.add_argument(
        "--prometheus",
        metavar="URL",
        type=prometheus_url,
        help="Prometheus base URL, no credentials in it (they come from "
        "WSANALYSIS_PROM_BEARER_TOKEN, or WSANALYSIS_PROM_USER and _PASSWORD)",
    )
    parser.add_argument("--start", type=moment, help=f"{what} window start (RFC 3339 or epoch s)")
    parser.add_argument("--end", type=moment, help=f"{what} window end (RFC 3339 or epoch s)")
    parser.add_argument(
        "--rum", type=Path, help="RUM beacons (NDJSON[.gz], Parquet, Datadog export)"
    )
    parser.add_argument(
        "--variant-label",
        help="label / RUM field naming the variant (default: variant; given, it and the "
        "selectors replace a telemetry file's variants)",
    )
    if selectors:
        parser.add_argument("--canary-selector", help='series of the canary, e.g. track="canary"')
        parser.add_argument("--control-selector", help='series of control, e.g. track="stable"')
    add_telemetry_argument(parser)


def check_source_arguments(args: argparse.Namespace) -> None:
    """The checks between options, run by `cli.main` right after parsing (before any data
    is read); each failure is a `UsageError`, so exit code 3 with the fix."""
    checked_window(
        args.start,
        args.end,
        required=args.prometheus is not None,
        names=("--start", "--end"),
        needs="--prometheus",
    )
    if args.data is not None and getattr(args, "rum", None) is not None:
        raise UsageError(
            "--rum goes with --prometheus; a dataset folder holds its own RUM",
            "drop --rum, or use --prometheus instead of --data",
        )
    if args.data is not None and not args.data.is_dir():
        raise UsageError(f"--data {args.data} does not exist", "give a dataset folder")
    if getattr(args, "rum", None) is not None and not args.rum.exists():
        raise UsageError(f"--rum {args.rum} does not exist", "give a RUM export")
    pair = (getattr(args, "canary_selector", None), getattr(args, "control_selector", None))
    if (pair[0] is None) != (pair[1] is None):
        raise UsageError(
            "--canary-selector and --control-selector go together", "give both or neither"
        )


def data_source(args: argparse.Namespace) -> DataSource:
    """The data source the options name (`add_source_arguments`), for the one loader."""
    return DataSource.of(
        data=args.data,
        prometheus=args.prometheus,
        start=args.start,
        end=args.end,
        rum=getattr(args, "rum", None),
        raw=getattr(args, "raw", False),
        engine=getattr(args, "engine", "polars"),
        lenient=getattr(args, "lenient", False),
        variant_label=args.variant_label,
        canary_selector=getattr(args, "canary_selector", None),
        control_selector=getattr(args, "control_selector", None),
        telemetry=getattr(args, "telemetry", None),
    )
