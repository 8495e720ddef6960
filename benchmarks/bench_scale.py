"""Push-down against the raw path, as the data grows: RUM beacons and server pods.

    .venv/bin/python benchmarks/bench_scale.py [--beacons 1e6,3e6,10e6] [--pods 50,500,5000]
        [--hours 2] [--spark] [--no-victoriametrics] [--out benchmarks/RESULTS-scale.md]

RUM: a hive-partitioned Parquet set (by variant) of synthetic beacons (opens, closes
with durations, TTFBs, messages, reconnects) per size; the default canary profile is
judged with the polars engine (raw: every beacon read into memory) and with DuckDB
(push-down), and with Spark local mode when `--spark` is given, each in a fresh
subprocess whose peak RSS is read from `wait4`.

Metrics: per pod 22 counter series (connections, closes by code, error frames, two
histograms) at 15 s over `--hours`, backfilled into a real Prometheus and imported into
a real VictoriaMetrics (when installed); the judge reads them raw (`--raw`: every
sample; VictoriaMetrics through `/api/v1/export`) and pushed down (the server sums per
variant), each in a fresh subprocess. Besides wall time and the judge's peak RSS, each
row has the requests sent, the bytes received, and the server's CPU seconds (from
/proc, the server's utime + stime during the judge).

Slope: the push-down judge's wall time over the number of rate buckets (the window's
length at the largest size), fitted by least squares; and over beacons / pods at a fixed
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
from wsanalysis.canary.inputs import load_judge_input
from wsanalysis.canary.reads import gate_metric_names, gate_rum_columns
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


def run_child(args: dict, prelude: str = "") -> dict:
    """One judge in a fresh interpreter: wall time inside it, its own peak RSS (VmHWM of
    the interpreter plus its child processes, e.g. Spark's JVM). `prelude` runs first."""
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [sys.executable, "-c", prelude + CHILD, json.dumps(args)],
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(process.pid, 0)
        out.seek(0)
        text = out.read().decode()
    if status != 0:  # e.g. out of memory: report how far it got
        return {"seconds": float("nan"), "peak_mib": usage.ru_maxrss / 1024, "verdict": "crashed"}
    found = json.loads(text.strip().splitlines()[-1])  # peak: VmHWM, Python plus any JVM
    # the judge's own CPU (interpreter start and imports included), not the server's
    return found | {"client_cpu": usage.ru_utime + usage.ru_stime}


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


def write_metrics(pods: int, hours: float, path: Path, vm_path: Path | None = None) -> int:
    """OpenMetrics for `pods` pods, 22 counters each, 15 s scrapes; returns samples.

    `vm_path`: the same samples in Prometheus' text format (ms timestamps), as
    VictoriaMetrics' `/api/v1/import/prometheus` takes them."""
    rng = np.random.default_rng(pods)
    steps = int(hours * 240) + 1
    stamps = int(START.timestamp()) + 15 * np.arange(steps)
    samples = 0
    vm = vm_path.open("w") if vm_path is not None else None
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
            lines, vm_lines = [], []
            for name, labels, rate in series:
                values = np.cumsum(rng.poisson(rate, steps))
                key = f"{name}{{{labels}{base}}}"
                pairs = list(zip(values.tolist(), stamps.tolist(), strict=True))
                lines.extend(f"{key} {v} {t}" for v, t in pairs)
                if vm is not None:
                    vm_lines.extend(f"{key} {v} {t}000" for v, t in pairs)
                samples += steps
            out.write("\n".join(lines) + "\n")
            if vm is not None:
                vm.write("\n".join(vm_lines) + "\n")
        out.write("# EOF\n")
    if vm is not None:
        vm.close()
    return samples


def load_victoriametrics(url: str, path: Path) -> None:
    """POST a Prometheus text file to VictoriaMetrics in 32 MiB parts, then flush."""
    import requests

    def post(part: bytes) -> None:
        answer = requests.post(f"{url}/api/v1/import/prometheus", data=part, timeout=600)
        answer.raise_for_status()

    rest = b""
    with path.open("rb") as source:
        while block := source.read(32 << 20):
            block = rest + block
            cut = block.rfind(b"\n") + 1  # whole lines only
            if cut:
                post(block[:cut])
            rest = block[cut:]
    if rest:
        post(rest)
    requests.get(f"{url}/internal/force_flush", timeout=600).raise_for_status()


#: counts the judge's HTTP requests and the bytes they brought back
COUNT_HTTP = r"""
import builtins, json, requests
_sent = {"requests": 0, "bytes": 0}
_request, _print = requests.Session.request, builtins.print
def _counted(self, *args, **kwargs):
    answer = _request(self, *args, **kwargs)
    _sent["requests"] += 1
    _sent["bytes"] += len(answer.content)
    return answer
def _print_with_traffic(text, *args, **kwargs):  # the child's last line: its result
    if isinstance(text, str) and text.startswith('{"seconds"'):
        row = json.loads(text) | {"requests": _sent["requests"], "mib": _sent["bytes"] / 2**20}
        text = json.dumps(row)
    _print(text, *args, **kwargs)
requests.Session.request = _counted
builtins.print = _print_with_traffic
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (the server's work during a judge)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def judge_on(server_pid: int, args: dict) -> dict:
    before = cpu_seconds(server_pid)
    found = run_child(args, COUNT_HTTP)
    return found | {"server_cpu": cpu_seconds(server_pid) - before}


def bench_metrics(
    pods_sizes: list[int], hours: float, work: Path, victoriametrics: bool = True
) -> list[dict]:
    import shutil

    from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill
    from wsanalysis.sources.local_victoriametrics import LocalVictoriaMetrics

    victoriametrics = victoriametrics and shutil.which("victoria-metrics") is not None
    rows = []
    end = START + timedelta(hours=hours)
    for pods in pods_sizes:
        folder = work / f"pods-{pods}"
        folder.mkdir(parents=True, exist_ok=True)
        vm_text = folder / "metrics.prom" if victoriametrics else None
        samples = write_metrics(pods, hours, folder / "metrics.om", vm_text)
        print(f"metrics: {pods} pods, {samples:,} samples; backfilling ...", flush=True)
        backfill(folder, folder / "tsdb")
        (folder / "metrics.om").unlink()
        servers = [("Prometheus", LocalPrometheus(folder / "tsdb", ready_timeout=600))]
        if vm_text is not None:
            servers.append(("VictoriaMetrics", LocalVictoriaMetrics(folder / "vm")))
        for engine, server in servers:
            with server:
                if engine == "VictoriaMetrics":
                    print("importing into VictoriaMetrics ...", flush=True)
                    load_victoriametrics(server.url, vm_text)
                    vm_text.unlink()
                pid = server.process.pid
                window = {"prometheus": server.url, "start": START.isoformat()}
                for raw in (True, False):
                    found = judge_on(pid, window | {"end": end.isoformat(), "raw": raw})
                    path = f"raw ({engine})" if raw else f"push-down ({engine})"
                    rows.append(
                        {"what": "metrics", "size": pods, "unit": "pods", "samples": samples}
                        | {"path": path, "buckets": int(hours * 60), **found}
                    )
                    print(rows[-1], flush=True)
                if pods == pods_sizes[-1]:  # slope over buckets at the largest size
                    for h in (hours / 4, hours / 2, hours):
                        stop = START + timedelta(hours=h)
                        found = judge_on(pid, window | {"end": stop.isoformat()})
                        rows.append(
                            {"what": "metrics-buckets", "size": pods, "unit": "pods"}
                            | {"buckets": int(h * 60), "path": f"push-down ({engine})", **found}
                        )
                        print(rows[-1], flush=True)
        shutil.rmtree(folder)
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


def slope(rows: list[dict], x: str, y: str = "seconds") -> tuple[float, float]:
    """Least-squares line through (x, y): intercept, slope."""
    xs = np.array([r[x] for r in rows], dtype=float)
    ys = np.array([r[y] for r in rows], dtype=float)
    b, a = np.polyfit(xs, ys, 1)
    return float(a), float(b)


def table(rows: list[dict], command: str) -> str:
    lines = [
        "# Scale: push-down against the raw path",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared "
        "with other sessions, 24 GiB; "
        f"{datetime.now(UTC):%Y-%m-%d}. Each figure is one run in a fresh interpreter "
        "(noisy: compare rows of the same run).",
    ]
    rum = [r for r in rows if r["what"] == "rum"]
    if rum:
        lines += [
            "",
            "| data | size | path | wall time (s) | peak RSS (MiB) | verdict |",
            "| --- | ---: | --- | ---: | ---: | --- |",
        ]
        for r in rum:
            lines.append(
                f"| rum | {r['size']:,} beacons | {r['path']} | {r['seconds']:.1f} | "
                f"{r['peak_mib']:.0f} | {r['verdict']} |"
            )
    metrics = [r for r in rows if r["what"] in ("metrics", "metrics-buckets")]
    if metrics:
        lines += [
            "",
            "Server metrics (22 series per pod, 15 s scrapes; the server runs on the same "
            "machine: its CPU seconds are the server's share of the wall time):",
            "",
            "| pods | samples | buckets | path | wall time (s) | judge CPU (s) | "
            "judge peak RSS (MiB) | requests | received (MiB) | server CPU (s) | verdict |",
            "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in metrics:
            samples = f"{r['samples']:,}" if "samples" in r else ""
            lines.append(
                f"| {r['size']:,} | {samples} | {r['buckets']} | {r['path']} | "
                f"{r['seconds']:.2f} | {r.get('client_cpu', float('nan')):.2f} | "
                f"{r['peak_mib']:.0f} | {r.get('requests', 0)} | "
                f"{r.get('mib', float('nan')):.2f} | {r.get('server_cpu', float('nan')):.2f} | "
                f"{r['verdict']} |"
            )
    engines = sorted({r["path"] for r in rows if r["what"] == "metrics-buckets"})
    for path in engines:
        part = [r for r in rows if r["what"] == "metrics-buckets" and r["path"] == path]
        if len(part) >= 2:
            a, b = slope(part, "buckets")
            lines += [
                "",
                f"{path}, time over rate buckets at {part[0]['size']:,} pods: {a:.2f} s + "
                f"{b * 1000:.1f} ms per bucket ("
                + ", ".join(f"{r['buckets']} buckets: {r['seconds']:.2f} s" for r in part)
                + ").",
            ]
    for path in sorted({r["path"] for r in rows if r["what"] == "metrics"}):
        part = [r for r in rows if r["what"] == "metrics" and r["path"] == path]
        if len(part) >= 2:
            a, b = slope(part, "size")
            ca, cb = slope(part, "size", "server_cpu") if "server_cpu" in part[0] else (0, 0)
            ja, jb = slope(part, "size", "client_cpu") if "client_cpu" in part[0] else (0, 0)
            lines.append(
                f"\n{path}, over pods at {part[0]['buckets']} buckets: wall {a:.2f} s + "
                f"{b * 1000:.2f} s per 1,000 pods; judge CPU {ja:.2f} s + {jb * 1000:.3f} s "
                f"per 1,000 pods; server CPU {ca:.2f} s + {cb * 1000:.2f} s "
                "per 1,000 pods; received "
                + ", ".join(f"{r['mib']:.2f} MiB at {r['size']:,}" for r in part if "mib" in r)
                + "."
            )
    rum_buckets = [r for r in rows if r["what"] == "rum-buckets"]
    if len(rum_buckets) >= 2:
        a, b = slope(rum_buckets, "buckets")
        lines += [
            "",
            f"Push-down time over rate buckets, RUM (DuckDB), at {rum_buckets[0]['size']:,} "
            f"beacons: {a:.2f} s + {b * 1000:.1f} ms per bucket.",
        ]
    duck = [r for r in rum if r["path"] == "push-down (duckdb)"]
    if len(duck) >= 2:
        a, b = slope(duck, "size")
        lines.append(
            f"\npush-down (duckdb): time over beacons: {a:.2f} s + {b * 1e6:.3f} s per 1 M."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beacons", default="10e6,30e6,100e6")
    parser.add_argument("--pods", default="50,500,5000")
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--spark", action="store_true")
    parser.add_argument("--skip-rum", action="store_true")
    parser.add_argument("--skip-metrics", action="store_true")
    parser.add_argument("--no-victoriametrics", action="store_true")
    parser.add_argument(
        "--out",
        type=Path,
        help="default: RESULTS-scale-rum.md with --skip-metrics, else RESULTS-scale.md",
    )
    args = parser.parse_args()
    if args.out is None:
        name = "RESULTS-scale-rum.md" if args.skip_metrics else "RESULTS-scale.md"
        args.out = REPO / "benchmarks" / name
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as work:
        if not args.skip_rum:
            sizes = [int(float(x)) for x in args.beacons.split(",")]
            rows += bench_rum(sizes, args.hours, Path(work), args.spark)
        if not args.skip_metrics:
            pods = [int(x) for x in args.pods.split(",")]
            rows += bench_metrics(pods, args.hours, Path(work), not args.no_victoriametrics)
    command = "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:])
    text = table(rows, command.strip())
    (args.out.with_suffix(".json")).write_text(json.dumps(rows, indent=1, default=str))
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"took {time.time() - started:.0f} s", file=sys.stderr)
