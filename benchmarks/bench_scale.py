"""Push-down against the raw path, as the data grows: RUM beacons and server pods.

    .venv/bin/python benchmarks/bench_scale.py [--beacons 1e6,3e6,10e6] [--pods 20,100,400]
        [--hours 2] [--spark] [--out benchmarks/RESULTS-scale.md]

RUM: a hive-partitioned Parquet set (by variant) of synthetic beacons (opens, closes
with durations, TTFBs, messages, reconnects) per size; the default canary profile is
judged with the polars engine (raw: every beacon read into memory) and with DuckDB
(push-down), and with Spark local mode when `--spark` is given, each in a fresh
subprocess whose peak RSS is read from `wait4`.

Metrics: per pod 22 counter series (connections, closes by code, error frames, two
histograms) at 15 s over `--hours`, backfilled into a real Prometheus; the judge reads
them raw (`--raw`: every sample) and pushed down (the server sums per variant).

Slope: the push-down judge's wall time over the number of rate buckets (the window's
length at a fixed size), fitted by least squares; and over beacons / pods at a fixed
window, to show what the time grows with.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

START = datetime(2026, 9, 1, tzinfo=UTC)

CHILD = r"""
import json, os, sys, time
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import gate_metric_names, gate_rum_columns, load_judge_input
from wsanalysis.canary.judge import judge
args = json.loads(sys.argv[1])
profile = load_gate_file(None).profile("canary")
t = time.perf_counter()
data = load_judge_input(
    profile, rum_columns=gate_rum_columns(profile), metric_names=gate_metric_names(profile),
    **args,
)
verdict = judge(profile, data)
seconds = time.perf_counter() - t
def hwm(pid):  # peak RSS of one process (its own mm: reset at exec, unlike ru_maxrss)
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
def children(pid):  # e.g. Spark's JVM, still alive here
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found
me = os.getpid()
peak = hwm(me) + sum(hwm(k) for k in children(me))
print(json.dumps({"seconds": seconds, "verdict": verdict.overall, "peak_mib": peak,
                  "decisions": [g.decision for g in verdict.gates]}))
"""


def run_child(args: dict) -> dict:
    """One judge in a fresh interpreter: wall time inside it, its own peak RSS (VmHWM of
    the interpreter plus its child processes, e.g. Spark's JVM)."""
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(args)], stdout=out, stderr=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(process.pid, 0)
        out.seek(0)
        text = out.read().decode()
    if status != 0:  # e.g. out of memory: report how far it got
        return {"seconds": float("nan"), "peak_mib": usage.ru_maxrss / 1024, "verdict": "crashed"}
    return json.loads(text.strip().splitlines()[-1])  # peak: VmHWM, Python plus any JVM


# -- RUM ------------------------------------------------------------------------------


def make_beacons(n: int, hours: float, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    sessions = max(1000, n // 50)
    session = rng.integers(0, sessions, n)
    kinds = np.array(["ws.message", "ws.ttfb", "ws.open", "ws.close", "ws.reconnect_scheduled"])
    kind = kinds[rng.choice(5, n, p=[0.45, 0.3, 0.1, 0.1, 0.05])]
    span_ms = int(hours * 3_600_000)
    canary = session % 10 == 0
    ttfb = rng.lognormal(np.log(600), 0.5, n) * np.where(canary, 1.02, 1.0)
    return pl.DataFrame(
        {
            "v": np.ones(n, dtype=np.int64),
            "ts": int(START.timestamp() * 1000) + rng.integers(0, span_ms, n),
            "type": kind,
            "session_id": session,
            "variant": np.where(canary, "canary", "control"),
            "ttfb_ms": np.where(kind == "ws.ttfb", ttfb.round(1), np.nan),
            "duration_ms": np.where(kind == "ws.close", rng.exponential(6e5, n).round(), np.nan),
            "code": np.where(kind == "ws.close", 1000, 0),
        }
    ).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")),
        pl.col("session_id").cast(pl.Utf8).str.pad_start(8, "0"),
        (pl.col("session_id").cast(pl.Utf8) + "/" + (pl.col("ts") % 3).cast(pl.Utf8)).alias(
            "socket_id"
        ),
        pl.col("ttfb_ms", "duration_ms").fill_nan(None),
        pl.when(pl.col("code") > 0).then(pl.col("code")).alias("code"),
    )


def write_rum_set(n: int, folder: Path, hours: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    chunk = 5_000_000
    for part, first in enumerate(range(0, n, chunk)):
        frame = make_beacons(min(chunk, n - first), hours, seed=part + 1)
        for (variant,), rows in frame.partition_by("variant", as_dict=True).items():
            hive = folder / "rum.parquet" / f"variant={variant}"
            hive.mkdir(parents=True, exist_ok=True)  # one file per chunk: none overwritten
            rows.drop("variant").write_parquet(hive / f"part-{part:04d}.parquet")
        del frame
    return folder


# -- metrics --------------------------------------------------------------------------

CODES = ("1000", "1006", "1011", "4401")
TTFB_LE = ("0.25", "0.5", "1", "2.5", "5", "+Inf")
DURATION_LE = ("10", "60", "600", "3600", "28800", "+Inf")


def write_metrics(pods: int, hours: float, path: Path) -> int:
    """OpenMetrics for `pods` pods, 22 counters each, 15 s scrapes; returns samples."""
    rng = np.random.default_rng(pods)
    steps = int(hours * 240) + 1
    stamps = int(START.timestamp()) + 15 * np.arange(steps)
    samples = 0
    with path.open("w") as out:
        for pod in range(pods):
            variant = "canary" if pod % 10 == 0 else "control"
            base = f'pod="p{pod}",variant="{variant}"'
            series = [("ws_connections_total", "", 20.0)]
            series += [
                ("ws_closes_total", f'code="{c}",', r)
                for c, r in zip(CODES, (15, 3, 0.5, 0.3), strict=True)
            ]
            series += [("ws_frames_sent_total", 'event="error",', 0.2)]
            series += [
                ("ws_assistant_ttfb_seconds_bucket", f'le="{le}",', 30 * q)
                for le, q in zip(TTFB_LE, (0.1, 0.4, 0.7, 0.9, 0.97, 1.0), strict=True)
            ]
            series += [
                ("ws_connection_duration_seconds_bucket", f'le="{le}",', 15 * q)
                for le, q in zip(DURATION_LE, (0.05, 0.2, 0.5, 0.8, 0.99, 1.0), strict=True)
            ]
            lines = []
            for name, labels, rate in series:
                values = np.cumsum(rng.poisson(rate, steps))
                key = f"{name}{{{labels}{base}}}"
                lines.extend(
                    f"{key} {v} {t}" for v, t in zip(values.tolist(), stamps.tolist(), strict=True)
                )
                samples += steps
            out.write("\n".join(lines) + "\n")
        out.write("# EOF\n")
    return samples


def bench_metrics(pods_sizes: list[int], hours: float, work: Path) -> list[dict]:
    from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill

    rows = []
    end = START + timedelta(hours=hours)
    for pods in pods_sizes:
        folder = work / f"pods-{pods}"
        folder.mkdir(parents=True, exist_ok=True)
        samples = write_metrics(pods, hours, folder / "metrics.om")
        print(f"metrics: {pods} pods, {samples:,} samples; backfilling ...", flush=True)
        backfill(folder, folder / "tsdb")
        (folder / "metrics.om").unlink()
        with LocalPrometheus(folder / "tsdb", ready_timeout=600) as server:
            window = {"prometheus": server.url, "start": START.isoformat(), "end": end.isoformat()}
            for raw in (True, False):
                found = run_child(window | {"raw": raw})
                rows.append(
                    {
                        "what": "metrics",
                        "size": pods,
                        "unit": "pods",
                        "samples": samples,
                        "path": "raw" if raw else "push-down (Prometheus)",
                        **found,
                    }
                )
                print(rows[-1], flush=True)
            if pods == pods_sizes[-1]:  # slope over buckets at the largest size
                for h in (hours / 4, hours / 2, hours):
                    stop = START + timedelta(hours=h)
                    found = run_child(window | {"end": stop.isoformat()})
                    rows.append(
                        {
                            "what": "metrics-buckets",
                            "size": pods,
                            "unit": "pods",
                            "buckets": int(h * 60),
                            "path": "push-down (Prometheus)",
                            **found,
                        }
                    )
                    print(rows[-1], flush=True)
    return rows


def bench_rum(sizes: list[int], hours: float, work: Path, spark: bool) -> list[dict]:
    rows = []
    for n in sizes:
        folder = work / f"rum-{n}"
        print(f"RUM: writing {n:,} beacons ...", flush=True)
        write_rum_set(n, folder, hours)
        engines = ["polars", "duckdb"] + (["spark"] if spark and n == sizes[0] else [])
        for engine in engines:  # a declared split: the sample-ratio check runs too
            found = run_child({"data": str(folder), "engine": engine, "canary_share": 0.1})
            path = "raw (polars)" if engine == "polars" else f"push-down ({engine})"
            rows.append({"what": "rum", "size": n, "unit": "beacons", "path": path, **found})
            print(rows[-1], flush=True)
        if n == sizes[-1]:
            for h in (hours / 4, hours / 2, hours):
                stop = START + timedelta(hours=h)
                found = run_child(
                    {
                        "data": str(folder),
                        "engine": "duckdb",
                        "canary_share": 0.1,
                        "start": START.isoformat(),
                        "end": stop.isoformat(),
                    }
                )
                rows.append(
                    {
                        "what": "rum-buckets",
                        "size": n,
                        "unit": "beacons",
                        "buckets": int(h * 60),
                        "path": "push-down (duckdb)",
                        **found,
                    }
                )
                print(rows[-1], flush=True)
        import shutil

        shutil.rmtree(folder)
    return rows


def slope(rows: list[dict], x: str) -> tuple[float, float]:
    xs = np.array([r[x] for r in rows], dtype=float)
    ys = np.array([r["seconds"] for r in rows], dtype=float)
    b, a = np.polyfit(xs, ys, 1)
    return float(a), float(b)


def table(rows: list[dict], command: str) -> str:
    lines = [
        "# Scale: push-down against the raw path",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared "
        "with other sessions (load average 2 to 30 during the runs), 24 GiB; "
        f"{datetime.now(UTC):%Y-%m-%d}. Each figure is one run in a fresh interpreter "
        "(noisy: compare rows of the same run).",
        "",
        "| data | size | path | wall time (s) | peak RSS (MiB) | verdict |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        if r["what"] in ("rum", "metrics"):
            size = f"{r['size']:,} {r['unit']}"
            lines.append(
                f"| {r['what']} | {size} | {r['path']} | {r['seconds']:.1f} | "
                f"{r['peak_mib']:.0f} | {r['verdict']} |"
            )
    for what, label in (
        ("rum-buckets", "RUM (DuckDB)"),
        ("metrics-buckets", "metrics (Prometheus)"),
    ):
        part = [r for r in rows if r["what"] == what]
        if len(part) >= 2:
            a, b = slope(part, "buckets")
            lines += [
                "",
                f"Push-down time over rate buckets, {label}, at {part[0]['size']:,} "
                f"{part[0]['unit']}: {a:.2f} s + {b * 1000:.1f} ms per bucket "
                "("
                + ", ".join(f"{r['buckets']} buckets: {r['seconds']:.1f} s" for r in part)
                + ").",
            ]
    for what, label in (("rum", "push-down (duckdb)"), ("metrics", "push-down (Prometheus)")):
        part = [r for r in rows if r["what"] == what and r["path"] == label]
        if len(part) >= 2:
            a, b = slope(part, "size")
            unit = part[0]["unit"]
            per = 1e6 if unit == "beacons" else 100
            lines.append(
                f"\n{label}: time over {unit}: {a:.2f} s + {b * per:.3f} s per {per:,.0f} {unit}."
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beacons", default="1e6,3e6,10e6")
    parser.add_argument("--pods", default="20,100,400")
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--spark", action="store_true")
    parser.add_argument("--skip-rum", action="store_true")
    parser.add_argument("--skip-metrics", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS-scale.md")
    args = parser.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as work:
        if not args.skip_rum:
            sizes = [int(float(x)) for x in args.beacons.split(",")]
            rows += bench_rum(sizes, args.hours, Path(work), args.spark)
        if not args.skip_metrics:
            pods = [int(x) for x in args.pods.split(",")]
            rows += bench_metrics(pods, args.hours, Path(work))
    command = "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:])
    text = table(rows, command.strip())
    (args.out.with_suffix(".json")).write_text(json.dumps(rows, indent=1, default=str))
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"took {time.time() - started:.0f} s", file=sys.stderr)
