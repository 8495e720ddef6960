"""judge-server look latency on a 48 h canary: cold (first look) and incremental (5 min on).

    .venv/bin/python benchmarks/bench_judge_server.py [--rounds 5] [--scrape 15]
        [--out benchmarks/RESULTS-judge-server.md]

Data: `data/aa_baseline` (12 h, canary 10%) tiled four times to 48 h, counters carried on
across the tiles and scaled so control + canary open 100 k connections per hour, then
resampled to a `--scrape`-second scrape (counters interpolated); backfilled into a real
`prometheus` on loopback. A real `wsanalysis judge-server` process answers over HTTP.
Each round uses a new canary id: the cold look asks for [start, start + 47 h 50 m] (the
whole history fetched and judged); then two incremental looks 5 minutes apart (only the
new 5 minutes fetched; the whole window re-judged). The baseline, in the same run, is
the library alone doing a full re-read: `load_judge_input` from the same Prometheus +
`judge`, what a pipeline calling `wsanalysis judge --sequential` every look would pay.
The horizon is 96 h so no look ends in a final (cached) decision.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import requests

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import load_judge_input
from wsanalysis.canary.judge import judge
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill, free_port
from wsanalysis.sources.openmetrics import write_openmetrics

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 2, 6, tzinfo=UTC)
TILE = timedelta(hours=12)
COUNTER = ("_total", "_bucket", "_count", "_sum")
TOKEN = "bench-token-0123456789abcdef"
TARGET_PER_HOUR = 100_000


def dataset_48h(folder: Path, scrape_s: int) -> tuple[int, float]:
    """Write the 48 h metrics.om; returns (samples, connections opened per hour)."""
    base = Dataset.open(REPO / "data" / "aa_baseline").metrics()
    labels = [c for c in base.columns if c not in ("timestamp", "value")]
    counter = pl.col("metric").str.ends_with(COUNTER[0])
    for suffix in COUNTER[1:]:
        counter = counter | pl.col("metric").str.ends_with(suffix)
    base = base.sort("timestamp").with_columns(last=pl.col("value").last().over(labels))
    tiles = []
    for k in range(4):
        tile = base.with_columns(
            timestamp=pl.col("timestamp") + TILE * k,
            value=pl.when(counter).then(pl.col("value") + k * pl.col("last")).otherwise("value"),
        )
        tiles.append(tile.drop("last"))
    frame = pl.concat(tiles).unique(
        subset=[*labels, "timestamp"], keep="first", maintain_order=True
    )
    opened = frame.filter(pl.col("metric") == "ws_connections_total")
    per_series = opened.group_by(labels).agg(pl.col("value").max() - pl.col("value").min())
    rate = per_series["value"].sum() / 48
    scale = TARGET_PER_HOUR / rate
    frame = frame.with_columns(
        value=pl.when(counter).then((pl.col("value") * scale).round()).otherwise("value")
    )
    if scrape_s < 60:
        frame = (
            frame.sort("timestamp")
            .upsample("timestamp", every=f"{scrape_s}s", group_by=labels)
            .with_columns(pl.col(labels).forward_fill().over(labels))
            .with_columns(pl.col("value").interpolate().over(labels))
            .with_columns(pl.when(counter).then(pl.col("value").round()).otherwise("value"))
            .drop_nulls("value")
        )
    write_openmetrics(frame, folder / "metrics.om")
    return frame.height, rate * scale


def start_server(prometheus: str, state: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "WSANALYSIS_JUDGE_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "wsanalysis.cli", "judge-server", "--prometheus", prometheus,
         "--port", str(port), "--state", str(state)], env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            requests.get(f"{url}/healthz", timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("judge-server did not start")


def look(url: str, canary: str, end: datetime) -> tuple[float, dict]:
    body = {"id": canary, "start": START.isoformat(), "end": end.isoformat(),
            "canary_share": "0.1", "look": "5m", "horizon": "96h"}  # fmt: skip
    began = time.perf_counter()
    answer = requests.post(f"{url}/v1/judge", json=body, timeout=600,
                           headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    seconds = time.perf_counter() - began
    answer.raise_for_status()
    return seconds, answer.json()


def full_reread(url: str, end: datetime) -> float:
    profile = load_gate_file(None).profile("canary")
    began = time.perf_counter()
    data = load_judge_input(profile, prometheus=url, start=START.isoformat(), end=end.isoformat(),
                            canary_share=0.1, sequential=True, look="5m", horizon="96h")  # fmt: skip
    judge(profile, data)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scrape", type=int, default=15, help="scrape interval, seconds")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS-judge-server.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-judge-server-") as tmp:
        work = Path(tmp)
        samples, per_hour = dataset_48h(work, args.scrape)
        print(f"48 h dataset: {samples:,} samples, {per_hour:,.0f} connections/h", flush=True)
        backfill(work, work / "tsdb", replace=True)
        with LocalPrometheus(work / "tsdb") as prometheus:
            process, url = start_server(prometheus.url, work / "state.sqlite")
            try:
                cold, incremental, fetched, baseline, verdicts = [], [], [], [], set()
                first_end = START + timedelta(hours=47, minutes=50)
                for r in range(args.rounds):
                    seconds, answer = look(url, f"bench-{r}", first_end)
                    cold.append(seconds)
                    verdicts.add(answer["verdict"])
                    for step in (1, 2):
                        seconds, answer = look(
                            url, f"bench-{r}", first_end + step * timedelta(minutes=5)
                        )
                        incremental.append(seconds)
                        fetched.append(answer["fetched_samples"])
                        verdicts.add(answer["verdict"])
                    baseline.append(full_reread(prometheus.url, first_end + timedelta(minutes=10)))
                    print(f"round {r}: cold {cold[-1]:.2f} s, incremental "
                          f"{incremental[-2]:.2f} / {incremental[-1]:.2f} s, full re-read "
                          f"{baseline[-1]:.2f} s", flush=True)  # fmt: skip
            finally:
                process.terminate()
                process.wait(timeout=30)
    med = statistics.median
    rows = [
        ("cold look (48 h fetched + judged, over HTTP)", med(cold), min(cold), max(cold)),
        (
            "incremental look (5 min fetched, 48 h judged)",
            med(incremental),
            min(incremental),
            max(incremental),
        ),  # fmt: skip
        (
            "baseline: library full re-read + judge, in process",
            med(baseline),
            min(baseline),
            max(baseline),
        ),  # fmt: skip
    ]
    table = "\n".join(f"| {name} | {m:.2f} | {lo:.2f} | {hi:.2f} |" for name, m, lo, hi in rows)
    text = f"""# judge-server look latency (48 h canary)

Command: `.venv/bin/python benchmarks/bench_judge_server.py --rounds {args.rounds} --scrape {args.scrape}`
({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, shared 2-core machine, load average
{os.getloadavg()[0]:.1f} at the end of the run: other jobs were running).

Data: `aa_baseline` tiled to 48 h, {samples:,} samples at a {args.scrape} s scrape,
{per_hour:,.0f} connections opened per hour (control + canary), in a real Prometheus on
loopback; a real judge-server process over HTTP. Verdicts seen: {", ".join(sorted(verdicts))}
(horizon 96 h: no look ended in a cached final decision). Incremental looks fetched
{med(fetched):,.0f} samples each (median).

| look | median s | min s | max s |
|---|---|---|---|
{table}

Incremental / cold: **{med(incremental) / med(cold):.2f}**; incremental / full re-read:
**{med(incremental) / med(baseline):.2f}**. Target: an incremental look ≤ 1 s at 100 k
connections/h — **{"met" if med(incremental) <= 1 else "not met"}** here
({med(incremental):.2f} s median). The incremental look still re-judges the whole 48 h
window on the accumulated samples (kept in memory between looks): the fetch is what it
saves; judging stays the library's, unchanged, so the answer equals a full re-read's.
"""
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
