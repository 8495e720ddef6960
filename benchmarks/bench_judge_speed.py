"""Speed of the full judge on a big canary, against the floor of scanning the same data.

    .venv/bin/python benchmarks/bench_judge_speed.py [--beacons 10000000] [--repeat 3]
        [--out benchmarks/RESULTS-judge-speed.md]

Data: 48 h, 50 server series scraped every 15 s (~576 k samples, `metrics.om`) and N RUM
beacons (`rum.parquet`; mostly `ws.ttfb` with session ids, plus `ws.open` and
`ws.reconnect_scheduled`), canary 10%. Rows of the table, all in one run:
- floor: polars reads both files (`read_openmetrics`' text split is replaced by a bare
  line read: the floor is I/O plus decoding, no parsing of label sets);
- judge: `Dataset.open` → sources → `judge(canary profile)`, the whole verdict;
- pandas: the judge's gate inputs (1-minute counts per variant, p95 per variant) computed
  with pandas from the same files, without any statistics — the work polars does in
  `canary.measures`, for comparison with the same step in polars.
The p95-difference bootstrap against `scipy.stats.bootstrap` is measured in
`benchmarks/bench_stats.py` (RESULTS-stats.md); this file does not repeat it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.canary.measures import Window
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.rum import write_rum
from wsanalysis.sources.schema import RUM_SCHEMA, TIMESTAMP

START = datetime(2026, 11, 2, tzinfo=UTC)
HOURS = 48


def make_dataset(folder: Path, beacons: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    scrapes = np.arange(0, HOURS * 3600 + 1, 15)
    times = pl.Series([START + timedelta(seconds=int(s)) for s in scrapes]).cast(TIMESTAMP)
    rows = []
    per_variant = {"canary": 0.1, "control": 0.9}
    series = [
        ("ws_connections_total", {}),
        ("ws_closes_total", {"code": "1011"}),
        ("ws_closes_total", {"code": "4401"}),
        ("ws_frames_sent_total", {"event": "error"}),
    ]
    series += [("ws_filler_total", {"shard": str(i)}) for i in range(21)]  # 25 per variant
    for variant, share in per_variant.items():
        for metric, labels in series:
            rate = 30.0 * share if metric == "ws_connections_total" else 0.3 * share
            values = np.cumsum(rng.poisson(rate * 15, len(scrapes))).astype(float)
            rows.append(
                pl.DataFrame(
                    {
                        "timestamp": times,
                        "metric": metric,
                        "variant": variant,
                        "value": values,
                        **labels,
                    }
                )
            )
    write_openmetrics(pl.concat(rows, how="diagonal"), folder / "metrics.om")

    n = beacons
    variant = np.where(rng.random(n) < 0.1, "canary", "control")
    kind = rng.choice(["ws.ttfb", "ws.open", "ws.reconnect_scheduled"], n, p=[0.8, 0.18, 0.02])
    session = rng.integers(0, n // 10, n)
    ts = START.timestamp() * 1000 + np.sort(rng.uniform(0, HOURS * 3_600_000, n))
    ttfb = np.where(kind == "ws.ttfb", 800 * np.exp(rng.normal(0, 0.4, n)), np.nan)
    frame = pl.DataFrame({
        "v": np.ones(n, dtype=np.int64),
        "ts": pl.Series(ts.astype(np.int64)).cast(TIMESTAMP),
        "type": kind,
        "session_id": pl.Series(session).cast(pl.Utf8),
        "variant": variant,
        "ttfb_ms": pl.Series(ttfb).fill_nan(None),
    })  # fmt: skip
    frame = frame.with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in RUM_SCHEMA.items() if c not in frame.columns]
    ).select(list(RUM_SCHEMA))
    write_rum(frame, folder / "rum.parquet")


def floor(folder: Path) -> None:
    pl.read_parquet(folder / "rum.parquet")
    pl.read_csv(folder / "metrics.om", has_header=False, separator="\x01", quote_char=None,
                new_columns=["line"])  # fmt: skip


def load(folder: Path) -> JudgeInput:
    dataset = Dataset.open(folder)
    samples, beacons = dataset.metrics(), dataset.rum().frame
    return JudgeInput(samples, beacons, Window(START, START + timedelta(hours=HOURS)), 0.1)


def full_judge(folder: Path) -> str:
    return judge(load_gate_file().profile("canary"), load(folder)).overall


def gates_only(data: JudgeInput) -> str:
    return judge(load_gate_file().profile("canary"), data).overall


def pandas_inputs(folder: Path) -> None:
    rum = pd.read_parquet(folder / "rum.parquet", columns=["ts", "type", "variant", "ttfb_ms"])
    rum["minute"] = rum["ts"].dt.floor("1min")
    rum.groupby(["variant", "minute", "type"]).size()
    rum[rum["type"] == "ws.ttfb"].groupby("variant")["ttfb_ms"].quantile(0.95)


def polars_inputs(folder: Path) -> None:
    rum = pl.read_parquet(folder / "rum.parquet", columns=["ts", "type", "variant", "ttfb_ms"])
    rum.group_by("variant", pl.col("ts").dt.truncate("1m"), "type").len()
    rum.filter(pl.col("type") == "ws.ttfb").group_by("variant").agg(
        pl.col("ttfb_ms").quantile(0.95)
    )


def timed(function, folder: Path, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(folder)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beacons", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS-judge-speed.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {args.beacons:,} beacons and 50 series × 48 h ...", file=sys.stderr)
        make_dataset(folder, args.beacons)
        rows = []
        for name, function in [("floor: polars reads both files", floor),
                               ("full judge (sources + every gate)", full_judge),
                               ("of which: sources (metrics + RUM frames)", load),
                               ("gate inputs, polars", polars_inputs),
                               ("gate inputs, pandas", pandas_inputs)]:  # fmt: skip
            print(f"timing {name} ...", file=sys.stderr)
            seconds, result = timed(function, folder, args.repeat)
            rows.append((name, seconds, result if isinstance(result, str) else ""))
        seconds, _ = timed(gates_only, load(folder), args.repeat)
        rows.insert(3, ("of which: judge on loaded frames", seconds, ""))
    base = rows[0][1]
    lines = [
        f"# Judge speed ({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_judge_speed.py --beacons {args.beacons} "
        f"--repeat {args.repeat}` (median of {args.repeat}; 2-core shared machine).",
        "",
        f"{args.beacons:,} RUM beacons (Parquet) + 50 series × 48 h at 15 s (OpenMetrics).",
        "",
        "| step | seconds | × floor |",
        "|---|---:|---:|",
        *[f"| {name} | {seconds:.2f} | {seconds / base:.1f} |" for name, seconds, _ in rows],
        "",
        f"pandas / polars for the gate inputs: {rows[5][1] / rows[4][1]:.1f}×. "
        f"Verdict on this data: {rows[1][2]}.",
    ]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
