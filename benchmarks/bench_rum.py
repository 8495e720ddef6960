"""RUM beacons (NDJSON.gz) into a frame: `read_rum` against `pandas.read_json(lines=True)`.

Usage: .venv/bin/python benchmarks/bench_rum.py [--n 5000000] [--seed 7] [--repeat 1]

Generates a deterministic mix of beacons (every contract type, a few unknown types,
`ws.summary` snapshots with nested unknown fields), writes it with `write_rum`, then
loads it in a fresh process per reader so each peak memory (max RSS) is its own.
A second file with 0.1 % broken lines shows what bad input costs this source
(pandas refuses such a file outright). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wsanalysis.sources.rum import read_rum, write_rum  # noqa: E402

CACHE = Path(os.environ.get("WSANALYSIS_BENCH_CACHE", Path.home() / ".cache" / "wsanalysis-bench"))

TYPES = {
    "ws.message": 0.38,
    "ws.ttfb": 0.14,
    "ws.open": 0.10,
    "ws.close": 0.10,
    "ws.reconnect_scheduled": 0.08,
    "ws.summary": 0.05,
    "ws.dedup_drop": 0.03,
    "ws.stale_drop": 0.02,
    "ws.online": 0.03,
    "ws.offline": 0.03,
    "ws.give_up": 0.01,
    "ws.visibility_change": 0.03,  # a type newer clients send; the contract keeps it
}
CODES = np.array([1000, 1001, 1006, 1011, 1012, 4401, 4409])
CODE_P = np.array([0.55, 0.15, 0.18, 0.03, 0.04, 0.04, 0.01])


def make_beacons(n: int, seed: int) -> pl.DataFrame:
    """n beacons in the RUM frame's shape, vectorised, the same for the same seed."""
    rng = np.random.default_rng(seed)
    names = np.array(list(TYPES))
    kind = names[rng.choice(len(names), size=n, p=np.array(list(TYPES.values())))]
    t0 = int(datetime(2026, 11, 25, tzinfo=UTC).timestamp() * 1000)
    ts = t0 + np.sort(rng.integers(0, 12 * 3600 * 1000, size=n))
    sessions = rng.integers(0, max(n // 40, 1), size=n)
    frame = pl.DataFrame(
        {
            "v": np.ones(n, dtype=np.int64),
            "ts": ts,
            "type": kind,
            "session_id": sessions,
            "variant": np.where(sessions % 10 == 0, "canary", "control"),
            "socket_id": rng.integers(0, n, size=n),
            "user": sessions * 2654435761 % (1 << 32),
            "thread_id": rng.integers(0, max(n // 200, 1), size=n),
            "trace": rng.integers(0, 1 << 62, size=n),
            "code": CODES[rng.choice(len(CODES), size=n, p=CODE_P)],
            "attempt": rng.integers(1, 8, size=n),
            "backoff_ms": np.round(rng.exponential(2000, size=n), 1),
            "duration_ms": np.round(rng.lognormal(11, 1.5, size=n), 1),
            "ttfb_ms": np.round(rng.lognormal(6.2, 0.6, size=n), 1),
            "histo": rng.integers(0, 50, size=(n, 3)),
        }
    )
    t = pl.col("type")
    on = lambda *types: t.is_in(list(types))  # noqa: E731
    hist = pl.col("histo")
    extra = pl.concat_str(
        [
            pl.lit('{"close_codes":{"1000":'),
            hist.arr.get(0).cast(pl.Utf8),
            pl.lit(',"1006":'),
            hist.arr.get(1).cast(pl.Utf8),
            pl.lit(',"4401":'),
            hist.arr.get(2).cast(pl.Utf8),
            pl.lit('},"avg_backoff_ms":'),
            pl.col("backoff_ms").cast(pl.Utf8),
            pl.lit(',"p95_duration_ms":'),
            (pl.col("duration_ms") * 3).round(1).cast(pl.Utf8),
            pl.lit(',"current_duration_ms":'),
            pl.col("duration_ms").cast(pl.Utf8),
            pl.lit("}"),
        ]
    )
    return frame.select(
        "v",
        "ts",
        "type",
        pl.format("s-{}", "session_id").alias("session_id"),
        "variant",
        pl.when(~on("ws.summary", "ws.online", "ws.offline"))
        .then(pl.format("k-{}", "socket_id"))
        .alias("socket_id"),
        pl.format("u{}", "user").alias("user"),
        pl.when(on("ws.message", "ws.ttfb", "ws.dedup_drop"))
        .then(pl.format("t-{}", "thread_id"))
        .alias("thread_id"),
        pl.when(on("ws.message", "ws.ttfb")).then(pl.format("{}", "trace")).alias("trace"),
        pl.when(on("ws.close", "ws.reconnect_scheduled", "ws.give_up")).then("code"),
        pl.when(on("ws.close")).then(pl.lit("going away")).alias("reason"),
        pl.when(on("ws.open", "ws.reconnect_scheduled", "ws.give_up")).then("attempt"),
        pl.when(on("ws.reconnect_scheduled")).then("backoff_ms"),
        pl.when(on("ws.close")).then("duration_ms"),
        pl.when(on("ws.ttfb")).then("ttfb_ms"),
        pl.when(on("ws.online")).then(True).when(on("ws.offline")).then(False).alias("online"),
        pl.when(on("ws.summary"))
        .then(extra)
        .when(on("ws.visibility_change"))
        .then(pl.lit('{"hidden":true}'))
        .alias("extra"),
    )


def dataset(n: int, seed: int, broken: float = 0.0) -> Path:
    """The benchmark file (cached by n, seed and breakage), generated with progress."""
    CACHE.mkdir(parents=True, exist_ok=True)
    name = f"rum-{n}-{seed}" + (f"-broken{broken}" if broken else "") + ".ndjson.gz"
    path = CACHE / name
    if path.exists():
        return path
    started = time.perf_counter()
    print(f"generating {n:,} beacons (seed {seed}) ...", file=sys.stderr, flush=True)
    frame = make_beacons(n, seed)
    tmp = path.with_suffix(".tmp.gz")
    if broken:
        clean = tmp.with_name("clean-" + name)
        write_rum(frame, clean)
        import gzip

        rng = np.random.default_rng(seed + 1)
        with gzip.open(clean, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as out:
            for line in src:
                if rng.random() < broken:
                    line = line[: len(line) // 2] + b"\n"  # a truncated write
                out.write(line)
        clean.unlink()
    else:
        write_rum(frame, tmp)
    tmp.rename(path)
    size = path.stat().st_size / 1e6
    print(
        f"  wrote {path} ({size:,.0f} MB) in {time.perf_counter() - started:,.1f} s",
        file=sys.stderr,
    )
    return path


def run_one(reader: str, path: Path) -> dict:
    """Load the file once with one reader (in this process) and measure it."""

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    started, cpu_started = time.perf_counter(), cpu()
    if reader == "read_rum":
        load = read_rum(path)
        rows, bad = load.frame.height, load.bad_lines
    elif reader == "polars.read_ndjson":
        # the floor: the same gunzip, then polars' own reader with the contract's
        # declared types (no exactness checks, no `extra`, no bad-line handling)
        from wsanalysis.sources.rum.files import _read_bytes
        from wsanalysis.sources.rum.ndjson import _TYPED_SCHEMA

        frame = pl.read_ndjson(_read_bytes(path), schema=_TYPED_SCHEMA)
        rows, bad = frame.height, 0
    else:
        import pandas as pd

        frame = pd.read_json(path, lines=True)
        rows, bad = len(frame), 0
    seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "cpu": cpu_seconds, "rows": rows, "bad": bad, "peak": peak}


def measure(reader: str, path: Path) -> dict:
    print(f"  {reader} on {path.name} ...", file=sys.stderr, flush=True)
    out = subprocess.run(
        [sys.executable, __file__, "--run-one", reader, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5_000_000, help="beacons (default 5 M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="runs per reader (best kept)")
    parser.add_argument(
        "--no-pandas", action="store_true", help="skip pandas (slow); polars is the baseline"
    )
    parser.add_argument("--run-one", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        print(json.dumps(run_one(args.run_one[0], Path(args.run_one[1]))))
        return
    clean = dataset(args.n, args.seed)
    broken = dataset(args.n, args.seed, broken=0.001)
    readers = [("read_rum", clean), ("polars.read_ndjson", clean), ("read_rum", broken)]
    if not args.no_pandas:
        readers.insert(1, ("pandas.read_json", clean))
    runs: dict = {key: [] for key in readers}
    for _ in range(args.repeat):  # interleaved rounds: the machine's load hits all alike
        for reader, path in readers:
            runs[(reader, path)].append(measure(reader, path))
    best = {key: min(found, key=lambda r: r["seconds"]) for key, found in runs.items()}
    floor = best[("polars.read_ndjson", clean)]
    base = best.get(("pandas.read_json", clean), floor)
    base_name = "pandas" if ("pandas.read_json", clean) in best else "polars"
    size = clean.stat().st_size / 1e6
    load = os.getloadavg()[0]
    print(
        f"\n{args.n:,} beacons, NDJSON.gz of {size:,.0f} MB, seed {args.seed}, best of "
        f"{args.repeat}; {os.cpu_count()} CPUs, load average {load:.1f} at the end\n"
    )
    print(
        "| reader | input | rows | bad lines | wall s | CPU s | beacons/s | peak RSS "
        f"| wall vs {base_name} | CPU vs {base_name} | wall / polars.read_ndjson "
        "| CPU / polars.read_ndjson |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (reader, path), r in best.items():
        label = "0.1 % broken lines" if path == broken else "clean"
        print(
            f"| {reader} | {label} | {r['rows']:,} | {r['bad']:,} | {r['seconds']:.2f} | "
            f"{r['cpu']:.2f} | {r['rows'] / r['seconds']:,.0f} | {r['peak'] / 2**30:.2f} GiB | "
            f"{base['seconds'] / r['seconds']:.1f}× | {base['cpu'] / r['cpu']:.1f}× | "
            f"{r['seconds'] / floor['seconds']:.2f} | {r['cpu'] / floor['cpu']:.2f} |"
        )


if __name__ == "__main__":
    main()
