"""`wsanalysis summary --data DIR`: load a dataset through the sources, print an overview."""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from wsanalysis.commands import options
from wsanalysis.console import say
from wsanalysis.errors import UsageError
from wsanalysis.loading import DataSource, load
from wsanalysis.overview import metrics_overview, rum_overview


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="print a compact per-variant overview of a dataset folder",
        description="Load a dataset folder's server metrics and RUM beacons and print, per "
        "variant, connections, closes by code, active connections, sessions and TTFB.",
    )
    parser.add_argument(
        "--data", required=True, type=Path, help="dataset folder (e.g. data/sample)"
    )
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="drop metrics-file lines that break their format's rules (and count them by "
        "rule) instead of failing",
    )
    options.add_telemetry_argument(parser)
    parser.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    if not args.data.is_dir():
        raise UsageError(f"--data {args.data} does not exist", "give a dataset folder")


def _by_variant(overview: pl.DataFrame) -> pl.DataFrame:
    """One row per measure, one column per variant: narrow enough for a terminal."""
    text = overview.select(
        pl.col("variant"),
        *[
            pl.col(c).round(4).cast(pl.Utf8)
            if overview.schema[c].is_float()
            else pl.col(c).cast(pl.Utf8)
            for c in overview.columns
            if c != "variant"
        ],
    )
    return text.transpose(include_header=True, header_name="measure", column_names="variant")


def run(args: argparse.Namespace) -> int:
    loaded = load(  # the one loader
        DataSource.of(data=args.data, lenient=args.lenient, telemetry=args.telemetry)
    )
    lines = [f"dataset {args.data}"]
    with pl.Config(
        tbl_hide_dataframe_shape=True,
        tbl_rows=-1,
        tbl_width_chars=120,
        float_precision=3,
        tbl_hide_column_data_types=True,
    ):
        samples = loaded.samples
        if samples.is_empty():
            lines.append("server metrics: none in this folder")
        else:
            lines.append(
                f"server metrics: {samples.height:,} samples, "
                f"{samples['metric'].n_unique()} metrics, "
                f"{samples['timestamp'].min():%Y-%m-%d %H:%M} to "
                f"{samples['timestamp'].max():%Y-%m-%d %H:%M} UTC"
            )
        metrics = loaded.metrics_read
        if metrics is not None and metrics.dropped:
            lines.append(f"read leniently: {metrics.summary()}")
        if not samples.is_empty():
            lines.append(str(_by_variant(metrics_overview(samples))))
        rum = loaded.rum_read
        if rum is None:
            lines.append("RUM beacons: none in this folder")
        else:
            lines.append(f"RUM beacons: {rum.frame.height:,} read, {rum.bad_lines} bad lines")
            lines.append(str(_by_variant(rum_overview(rum.frame))))
    say(*lines)  # a reader that stops reading (`| head`) is no failure
    return 0
