"""The cost of OpenMetrics strictness: `read_openmetrics` with every rule against the split alone.

    .venv/bin/python benchmarks/bench_openmetrics_strict.py [--repeat 5]

Data: the judge-speed benchmark's `metrics.om` (48 h, 50 server series scraped every 15 s,
~576 k samples; `bench_judge_speed.make_dataset`), plus the bundled `data/*/metrics.om*`.
Rows, in interleaved rounds of one process: `strict` is `read_openmetrics(path)` as
shipped; `split only` is the same call with the rules' check (`om_rules.check`) replaced
by one that finds nothing — the fast split path as it was before the rules.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_judge_speed import make_dataset  # noqa: E402

from wsanalysis.sources import om_rules  # noqa: E402
from wsanalysis.sources.openmetrics import read_openmetrics  # noqa: E402

STRICT = om_rules.check


def _no_rules(lines, others, parts, format, eof, scrape_time=False):
    found = pl.DataFrame(schema={"line": pl.Int64, "rule": pl.Utf8, "detail": pl.Utf8})
    return found, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_dataset(folder, beacons=1000)
        files = {"judge-speed metrics.om (576 k samples)": folder / "metrics.om"}
        bundled = sorted(Path("data").glob("*/metrics.om*"))
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):
            for label, path in files.items():
                for mode, check in (("strict", STRICT), ("split only", _no_rules)):
                    om_rules.check = check
                    started = time.perf_counter()
                    read_openmetrics(path)
                    times.setdefault((label, mode), []).append(time.perf_counter() - started)
            for mode, check in (("strict", STRICT), ("split only", _no_rules)):
                om_rules.check = check
                started = time.perf_counter()
                for path in bundled:
                    read_openmetrics(path)
                label = f"all {len(bundled)} bundled datasets"
                times.setdefault((label, mode), []).append(time.perf_counter() - started)
        om_rules.check = STRICT
    print(
        f"\nbest and median of {args.repeat} interleaved rounds; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| file | reader | best s | median s | strict / split only (best) |")
    print("|---|---|---:|---:|---:|")
    for (label, mode), found in times.items():
        base = min(times[(label, "split only")])
        print(
            f"| {label} | {mode} | {min(found):.3f} | {statistics.median(found):.3f} | "
            f"{min(found) / base:.2f} |"
        )


if __name__ == "__main__":
    main()
