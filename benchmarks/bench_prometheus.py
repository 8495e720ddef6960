"""Raw samples from a real Prometheus: wsanalysis's source vs prometheus-api-client's own.

    .venv/bin/python benchmarks/bench_prometheus.py [--series 100] [--hours 48] [--repeat 3]

Builds 100 series x 48 h at 15 s (~1.15 M samples), backfills them with promtool,
starts prometheus on a loopback port, then reads the whole window into a frame
- with `PrometheusSource.read_samples` (samples frame, polars), and
- with `PrometheusConnect.get_metric_range_data` + `MetricRangeDataFrame` (pandas),
each in a fresh subprocess (so peak RSS is its own), alternating, `--repeat` times.
Prints a markdown table: median wall time, ratio, peak RSS growth during the read
(Linux /proc VmHWM, reset after warm-up), rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill  # noqa: E402

START = datetime(2026, 1, 5, tzinfo=UTC)
STEP_S = 15
METRIC = "bench_ws_frames_sent_total"

# Runs in a fresh interpreter: import, warm up on one minute, then time the full read.
CHILD = r"""
import json, sys, time
from datetime import datetime, timedelta, UTC
method, url, start, end, chunk_h = sys.argv[1:6]
start, end = datetime.fromisoformat(start), datetime.fromisoformat(end)
chunk = timedelta(hours=float(chunk_h))
metric = "bench_ws_frames_sent_total"
if method == "wsanalysis":
    from wsanalysis.sources.prometheus import PrometheusSettings, PrometheusSource
    source = PrometheusSource(PrometheusSettings(url=url, chunk=chunk))
    def read(a, b):
        return source.read_samples(metric, a, b, progress=False)
else:
    from prometheus_api_client import MetricRangeDataFrame, PrometheusConnect
    client = PrometheusConnect(url=url)
    def read(a, b):
        size = min(chunk, b - a)
        return MetricRangeDataFrame(client.get_metric_range_data(metric, start_time=a, end_time=b, chunk_size=size))
def rss(field):  # MB, from /proc: VmRSS now, VmHWM peak since the last reset
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
read(start, start + timedelta(minutes=1))
open("/proc/self/clear_refs", "w").write("5")  # reset the peak to the current RSS
before = rss("VmRSS")
began = time.perf_counter()
frame = read(start, end)
seconds = time.perf_counter() - began
peak = rss("VmHWM")
print(json.dumps({"seconds": seconds, "rss_before_mb": before, "rss_peak_mb": peak, "rows": len(frame)}))
"""


def log(message: str, began: float) -> None:
    print(f"[{time.perf_counter() - began:6.1f} s] {message}", file=sys.stderr, flush=True)


def write_dataset(path: Path, series: int, hours: int) -> int:
    """`series` counters (half canary, half control) every 15 s, as backfillable OpenMetrics."""
    points = hours * 3600 // STEP_S + 1
    rng = np.random.default_rng(1)
    seconds = START.timestamp() + np.arange(points) * STEP_S
    lines = []
    for i in range(series):
        variant = "canary" if i % 2 == 0 else "control"
        labels = f'{{instance="pod-{i:03d}",event="chat",variant="{variant}"}}'
        values = np.cumsum(rng.poisson(40, points))
        frame = pl.DataFrame({"v": values, "t": seconds.astype(np.int64)})
        lines.append(
            frame.select(
                pl.concat_str(pl.lit(f"{METRIC}{labels} "), "v", pl.lit(" "), "t")
            ).to_series()
        )
    body = "\n".join(pl.concat(lines).to_list())
    path.write_text(f"# TYPE {METRIC.removesuffix('_total')} counter\n{body}\n# EOF\n")
    return series * points


def run_child(method: str, url: str, end: datetime, chunk_hours: float) -> dict:
    args = [sys.executable, "-c", CHILD, method, url, START.isoformat(), end.isoformat()]
    done = subprocess.run(
        [*args, str(chunk_hours)], capture_output=True, text=True, cwd=REPO, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-hours", type=float, default=2.0, help="same for both readers")
    args = parser.parse_args()
    began = time.perf_counter()
    end = START + timedelta(hours=args.hours)
    with tempfile.TemporaryDirectory(prefix="bench-prometheus-") as work:
        om = Path(work) / "metrics.om"
        log(f"writing {args.series} series x {args.hours} h at {STEP_S} s ...", began)
        samples = write_dataset(om, args.series, args.hours)
        log(
            f"{samples:,} samples written ({om.stat().st_size / 1e6:.0f} MB); backfilling ...",
            began,
        )
        result = backfill(om, Path(work) / "tsdb")
        log(f"promtool wrote {result.samples:,} samples in {result.blocks} blocks", began)
        runs: dict[str, list[dict]] = {"wsanalysis": [], "prometheus-api-client": []}
        with LocalPrometheus(result.tsdb) as prometheus:
            log(f"prometheus ready at {prometheus.url}", began)
            for attempt in range(1, args.repeat + 1):
                for method in runs:
                    log(f"run {attempt}/{args.repeat}: {method} ...", began)
                    runs[method].append(run_child(method, prometheus.url, end, args.chunk_hours))
                    log(f"  {runs[method][-1]['seconds']:.2f} s", began)
    ours, theirs = (statistics.median(r["seconds"] for r in runs[m]) for m in runs)
    print(
        f"\nRaw samples, {args.series} series x {args.hours} h at {STEP_S} s "
        f"({samples:,} samples), chunks of {args.chunk_hours:g} h, median of {args.repeat} runs, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"prometheus 2.42 on 127.0.0.1:\n"
    )
    print("| reader | wall time (s) | speed-up | peak RSS growth (MB) | peak RSS (MB) | rows |")
    print("|---|---:|---:|---:|---:|---:|")
    for method, median in (("wsanalysis", ours), ("prometheus-api-client", theirs)):
        growth = max(r["rss_peak_mb"] - r["rss_before_mb"] for r in runs[method])
        peak = max(r["rss_peak_mb"] for r in runs[method])
        rows = runs[method][0]["rows"]
        label = (
            "wsanalysis `PrometheusSource.read_samples` (polars)"
            if method == "wsanalysis"
            else "`get_metric_range_data` + `MetricRangeDataFrame` (pandas)"
        )
        print(
            f"| {label} | {median:.2f} | {theirs / median:.1f}x | {growth:.0f} | {peak:.0f} "
            f"| {rows:,} |"
        )
    paired = sorted(
        theirs_run["seconds"] / ours_run["seconds"]
        for ours_run, theirs_run in zip(*runs.values(), strict=True)
    )
    print(
        f"\nSpeed-up run by run (same server, back to back): {paired[0]:.1f}x to {paired[-1]:.1f}x."
    )
    extra = runs["prometheus-api-client"][0]["rows"] - samples
    print(
        f"\nSamples stored: {samples:,}. prometheus-api-client returned {extra:+,} rows "
        "(duplicates on chunk boundaries: range selectors are closed at both ends before 3.0)."
    )


if __name__ == "__main__":
    main()
