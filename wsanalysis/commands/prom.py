"""`wsanalysis prom`: explore a dataset with PromQL in a local Prometheus.

    wsanalysis prom load DATASET --tsdb DIR [--replace]
    wsanalysis prom up DATASET [--tsdb DIR] [--port N] [--engine prometheus|victoriametrics]

`load` backfills the dataset's metrics.om into a TSDB directory with promtool;
`up` serves it (backfilling into DIR, or a temporary directory, when DIR holds no
blocks yet) on a loopback port until Ctrl-C. `--engine victoriametrics` serves it from
a real VictoriaMetrics instead (imported through /api/v1/import; DIR is then its
storage directory): the same query API, so `wsanalysis judge --prometheus URL` works
on either.
"""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from urllib.parse import urlencode

from wsanalysis.commands import options
from wsanalysis.errors import DataError
from wsanalysis.sources.local_prometheus import (
    backfill,
    describe_window,
    metrics_file,
    prometheus_for_dataset,
    tsdb_window,
)
from wsanalysis.sources.local_victoriametrics import victoriametrics_for_dataset
from wsanalysis.sources.metric_names import CLOSES_TOTAL
from wsanalysis.sources.promql_text import translate_promql
from wsanalysis.sources.telemetry import load_telemetry

_BUNDLED = Path(__file__).resolve().parents[2] / "data"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prom",
        help="load a dataset into a local Prometheus, or serve it for PromQL/Grafana",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="prom_command", metavar="ACTION", required=True)

    load = actions.add_parser("load", help="backfill DATASET's metrics.om into a TSDB")
    load.add_argument("dataset", help="dataset folder (or metrics.om, or a name under data/)")
    load.add_argument("--tsdb", required=True, type=Path, help="TSDB directory to write")
    load.add_argument("--replace", action="store_true", help="empty DIR first if not empty")
    load.set_defaults(func=run_load)

    up = actions.add_parser("up", help="serve DATASET with a local prometheus until Ctrl-C")
    up.add_argument("dataset", help="dataset folder (or metrics.om, or a name under data/)")
    up.add_argument("--tsdb", type=Path, help="TSDB directory (default: a temporary one)")
    up.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    up.add_argument(
        "--telemetry",
        type=options.telemetry_file,
        metavar="FILE",
        help="telemetry mapping: the printed graph link queries your names",
    )
    up.add_argument(
        "--engine",
        choices=("prometheus", "victoriametrics"),
        default="prometheus",
        help="the server to run (default: prometheus)",
    )
    up.set_defaults(func=run_up)


def resolve_dataset(name: str) -> Path:
    """A path as given, else a bundled dataset under data/ of that name."""
    path = Path(name)
    if path.exists():
        return path
    if (_BUNDLED / name).is_dir():
        return _BUNDLED / name
    raise DataError(
        f"no dataset at {name}",
        f"pass a dataset folder, a metrics.om file, or one of: {_bundled_names()}",
    )


def _bundled_names() -> str:
    names = sorted(p.name for p in _BUNDLED.iterdir() if p.is_dir()) if _BUNDLED.is_dir() else []
    return ", ".join(names) or "(no bundled datasets)"


def run_load(args: argparse.Namespace) -> int:
    dataset = resolve_dataset(args.dataset)
    print(f"backfilling {metrics_file(dataset)} into {args.tsdb} with promtool ...", flush=True)
    result = backfill(dataset, args.tsdb, replace=args.replace)
    fixed = " (input reordered for promtool)" if result.input_fixed else ""
    print(
        f"{result.samples:,} samples in {result.blocks} block(s), "
        f"{describe_window(result.min_time_ms, result.max_time_ms)}{fixed}"
    )
    print(f"serve it with: wsanalysis prom up {args.dataset} --tsdb {args.tsdb}")
    return 0


def run_up(args: argparse.Namespace) -> int:
    dataset = resolve_dataset(args.dataset)
    stop = _stop_on_signals()
    if args.engine == "victoriametrics":
        return _run_victoriametrics(dataset, args, stop)
    print(f"starting prometheus over {metrics_file(dataset)} ...", flush=True)
    with prometheus_for_dataset(dataset, tsdb=args.tsdb, port=args.port) as prometheus:
        print(f"Prometheus for {dataset} is up at {prometheus.url}", flush=True)
        window = tsdb_window(prometheus.tsdb)
        if window is not None:
            print(f"  data: {describe_window(*window)} (set the graph's end time there)")
            end = datetime.fromtimestamp(window[1] / 1000, UTC)
            hours = max(1, math.ceil((window[1] - 1 - window[0]) / 3_600_000))
            query = urlencode(
                {
                    "g0.expr": translate_promql(
                        f"sum by (variant) (rate({CLOSES_TOTAL}[5m]))",
                        load_telemetry(args.telemetry),
                    ),
                    "g0.tab": "0",
                    "g0.range_input": f"{hours}h",
                    "g0.end_input": f"{end:%Y-%m-%d %H:%M:%S}",
                }
            )
            print(f"  graph: {prometheus.url}/graph?{query}")
        return _serve_until_stopped(prometheus.process, "prometheus", stop)


def _run_victoriametrics(dataset: Path, args: argparse.Namespace, stop) -> int:
    print(f"starting victoria-metrics over {metrics_file(dataset)} ...", flush=True)
    with victoriametrics_for_dataset(dataset, storage=args.tsdb, port=args.port) as server:
        print(f"VictoriaMetrics for {dataset} is up at {server.url}", flush=True)
        print(f"  query UI: {server.url}/vmui", flush=True)
        return _serve_until_stopped(server.process, "victoria-metrics", stop)


def _serve_until_stopped(process: subprocess.Popen | None, name: str, stop) -> int:
    """Wait for Ctrl-C or SIGTERM; a server that dies on its own is a failure (exit 3).
    The caller's context manager then stops the server and removes temporary data."""
    print("press Ctrl-C to stop", flush=True)
    while not stop() and process and process.poll() is None:
        time.sleep(0.2)
    if process and process.poll() not in (None, 0):
        print(f"{name} exited with code {process.returncode}", file=sys.stderr)
        return 3
    print("stopped", flush=True)
    return 0


def _stop_on_signals():
    """Ctrl-C and SIGTERM set a flag: the server is then stopped and temp data removed."""
    stopped = {"yes": False}

    def handler(signum: int, frame: FrameType | None) -> None:
        stopped["yes"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return lambda: stopped["yes"]
