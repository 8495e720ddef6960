"""`wsanalysis calibrate` speed: a replay on the judge's gate-level path, against what a
replay would cost as one `wsanalysis judge` process per window (the CLI per replay).

    .venv/bin/python benchmarks/bench_calibrate.py [--repeat 3] [--seeds 5]
        [--out benchmarks/RESULTS-calibrate.md]

Data: `data/aa_baseline` (12 h, control on 4 pods, RUM sampled at 10%), 1 h windows,
canary share 0.1. Measured in the same run, interleaved per round: the history loaded
once (`load_history`), the replays (`calibrate`: 12 windows × `--seeds` splits, each
judged by the library's `judge`), and the baseline, `wsanalysis judge --data ... --start
--end` as a subprocess on three of the windows (what a calibration that shelled out to
the CLI per replay would pay per replay, before any split). Medians over rounds.
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

from wsanalysis.calibration import calibrate, load_history
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.loading import DataSource

REPO = Path(__file__).resolve().parents[1]
HISTORY = REPO / "data" / "aa_baseline"
WSANALYSIS = Path(sys.executable).with_name("wsanalysis")


def _round(seeds: int) -> dict[str, float]:
    profile = load_gate_file(None).profile("canary")
    started = time.perf_counter()
    history = load_history(profile, DataSource.of(data=HISTORY))
    loaded = time.perf_counter()
    document = calibrate(
        profile, history, window=timedelta(hours=1), share=0.1, seeds=seeds, progress=False
    )
    replayed = time.perf_counter()
    start = datetime.fromisoformat(document["history"]["start"]).astimezone(UTC)
    cli = []
    with tempfile.TemporaryDirectory() as tmp:
        for hour in (2, 6, 10):
            a, b = start + timedelta(hours=hour), start + timedelta(hours=hour + 1)
            t = time.perf_counter()
            subprocess.run(
                [str(WSANALYSIS), "judge", "--data", str(HISTORY), "--start", a.isoformat(),
                 "--end", b.isoformat(), "--canary-share", "0.1", "--out", f"{tmp}/v.json"],
                check=False, capture_output=True,
            )  # fmt: skip
            cli.append(time.perf_counter() - t)
    replays = document["replays"]
    return {
        "load_s": loaded - started,
        "replays": replays,
        "replays_s": replayed - loaded,
        "per_replay_s": (replayed - loaded) / replays,
        "cli_per_window_s": statistics.median(cli),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS-calibrate.md")
    args = parser.parse_args()
    rounds = [_round(args.seeds) for _ in range(args.repeat)]
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    ratio = median["cli_per_window_s"] / median["per_replay_s"]
    load = os.getloadavg()[0]
    command = (
        f".venv/bin/python benchmarks/bench_calibrate.py --repeat {args.repeat} "
        f"--seeds {args.seeds}"
    )
    lines = [
        "# `wsanalysis calibrate` speed",
        "",
        f"Command: `{command}` ({datetime.now(UTC):%Y-%m-%d}, load average {load:.1f} on a "
        f"shared {os.cpu_count()}-core machine; medians of {args.repeat} rounds).",
        "",
        f"History: `data/aa_baseline` (12 h, control on 4 pods), 1 h windows, share 0.1, "
        f"{args.seeds} seeds: {int(median['replays'])} replays.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| load the history once (`load_history`) | {median['load_s']:.2f} |",
        f"| {int(median['replays'])} replays (`calibrate`) | {median['replays_s']:.2f} |",
        f"| one replay (split + `judge`) | {median['per_replay_s']:.3f} |",
        f"| one `wsanalysis judge --start --end` process per window (baseline) | "
        f"{median['cli_per_window_s']:.2f} |",
        "",
        f"A replay costs 1/{ratio:.0f} of a CLI run per window ({ratio:.1f}× faster), "
        "before counting that the CLI would also have to split the data.",
        "",
        "Per round (s): "
        + "; ".join(
            f"load {r['load_s']:.2f}, replays {r['replays_s']:.2f}, CLI {r['cli_per_window_s']:.2f}"
            for r in rounds
        ),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
