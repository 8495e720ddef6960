"""Calibration of decision rule v2 at the size that can see 2.5%: false GO at the
tolerance, fixed and sequential, through the gate-level fast path.

    .venv/bin/python benchmarks/bench_calibration.py [--runs 2000] [--seq-runs 2000]
        [--workers 2] [--out benchmarks/RESULTS-calibration.md]

Each run is a synthetic canary (`canary.synthetic`: diurnal load, shared swings,
overdispersed AR(1) error counts, 10% canary share) whose gate input is built straight
from its counts per minute (`synthetic.gate_counts`, equal to what `frames.measures`
derives from the simulated server samples) and judged by the gate's own evidence
functions (`canary.evidence`, `canary.anytime`) and `verdict.decide`: the judge's code from
the gate input on, without frames, counters or the CLI. At the tolerance (error rate
×1.5) a pass is a false GO (target ≤ 2.5%, the interval's upper end ≤ 3%); A/A passes
measure decisiveness; the 4401 row is a false NO_GO on overdispersed counts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy import stats
from tqdm import tqdm

from wsanalysis.canary import anytime, evidence
from wsanalysis.canary.evidence import one_sided_alpha
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.plan import SequentialPlan
from wsanalysis.canary.synthetic import CanaryCase, gate_counts
from wsanalysis.canary.verdict import decide

PROFILE = load_gate_file().profile("canary")
ERROR, AUTH = PROFILE.gate("error_rate"), PROFILE.gate("auth_spike")
PLAN = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
CELLS = {  # name: scenario fields
    **{
        f"{h} h × {t // 1000}k/h": {"hours": h, "connections_per_hour": t}
        for h in (1, 3, 6)
        for t in (20_000, 100_000, 500_000)
    },
    "low count: 1 h × 18k/h, errors clustered by connection (mean 3)": {
        "hours": 1, "connections_per_hour": 18_000, "error_cluster": 3.0,
    },
    "strongly overdispersed: 1 h × 100k/h, log-intensity sd 0.6": {
        "hours": 1, "connections_per_hour": 100_000, "dispersion": 0.6,
    },
}  # fmt: skip
SEQUENTIAL = {
    f"{t // 1000}k/h": {"connections_per_hour": t} for t in (20_000, 100_000, 500_000)
} | {
    "low count: 18k/h, clustered (mean 3)": {"connections_per_hour": 18_000, "error_cluster": 3.0},
    "strongly overdispersed: 100k/h, sd 0.6": {"connections_per_hour": 100_000, "dispersion": 0.6},
}


def fixed_run(task: tuple[str, float, int]) -> tuple[str, float, str]:
    name, multiplier, seed = task
    scenario = CanaryCase(**CELLS[name], error_multiplier=multiplier)
    found = evidence.rate_evidence(ERROR, gate_counts(scenario, seed))
    alpha = one_sided_alpha(ERROR)
    return name, multiplier, decide(found, found.p_harm, alpha, found.p_safe, ERROR.min_exposure)


def auth_run(seed: int) -> str:
    scenario = CanaryCase(hours=1, connections_per_hour=100_000, auth_dispersion=1.0)
    found = evidence.spike_evidence(AUTH, gate_counts(scenario, seed, "auth", 5))
    alpha = one_sided_alpha(AUTH)
    return decide(found, found.p_harm, alpha, found.p_safe, AUTH.min_exposure)


def sequential_run(task: tuple[str, float, int]) -> tuple[str, float, float | None]:
    """48 h of looks every 5 min on the error-rate gate: minutes to the first pass."""
    name, multiplier, seed = task
    scenario = CanaryCase(**SEQUENTIAL[name], hours=48, error_multiplier=multiplier)
    path = anytime.rate_pass_path(ERROR, gate_counts(scenario, seed), PLAN)
    hits = np.nonzero(np.asarray(path) <= one_sided_alpha(ERROR))[0]
    return name, multiplier, None if len(hits) == 0 else 5.0 * (int(hits[0]) + 1)


def share(k: int, n: int) -> str:
    low, high = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return f"{k / n:.2%} ({low:.2%}–{high:.2%})"


def meets(k: int, n: int) -> str:
    high = stats.binomtest(k, n).proportion_ci(0.95, method="wilson").high
    return "yes" if k / n <= 0.025 and high <= 0.03 else "**no**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs per fixed tolerance cell")
    parser.add_argument("--seq-runs", type=int, default=2000, help="runs per sequential cell")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS-calibration.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    tasks = [(c, 1.5, s) for c in CELLS for s in range(args.runs)]
    tasks += [(c, 1.0, 10**6 + s) for c in CELLS for s in range(args.runs // 4)]
    seq = [(c, 1.5, s) for c in SEQUENTIAL for s in range(args.seq_runs)]
    seq += [(c, 1.0, 10**6 + s) for c in SEQUENTIAL for s in range(args.seq_runs // 20)]
    with ProcessPoolExecutor(args.workers) as pool:
        fixed = list(tqdm(pool.map(fixed_run, tasks, chunksize=50), total=len(tasks),
                          desc="fixed"))  # fmt: skip
        auth = list(tqdm(pool.map(auth_run, range(args.runs), chunksize=50),
                         total=args.runs, desc="4401 A/A"))  # fmt: skip
        sequential = list(tqdm(pool.map(sequential_run, seq, chunksize=10), total=len(seq),
                               desc="sequential 48 h"))  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    command = (
        f"`.venv/bin/python benchmarks/bench_calibration.py --runs {args.runs} "
        f"--seq-runs {args.seq_runs} --workers {args.workers}`"
    )
    lines = [
        f"# Calibration of the judge: false GO at the tolerance ({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"Command: {command} ({minutes:.1f} min on the shared 2-core machine). Gate-level fast "
        "path (see the script's docstring); shares with 95% Wilson intervals. Target: false GO "
        "at the tolerance ≤ 2.5% with the interval's upper end ≤ 3%.",
        "",
        "## Fixed window, error-rate gate",
        "",
        "| cell | runs at ×1.5 | false GO at ×1.5 | target met | caught (fail) at ×1.5 "
        "| A/A runs | A/A pass | A/A fail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in CELLS:
        at = [d for c, m, d in fixed if c == cell and m == 1.5]
        aa = [d for c, m, d in fixed if c == cell and m == 1.0]
        passes = at.count("pass")
        lines.append(
            f"| {cell} | {len(at)} | {share(passes, len(at))} | {meets(passes, len(at))} | "
            f"{at.count('fail') / len(at):.1%} | {len(aa)} | {aa.count('pass') / len(aa):.1%} | "
            f"{share(aa.count('fail'), len(aa))} |"
        )
    lines += [
        "",
        "## Spike gate on overdispersed 4401 counts (A/A, 1 h × 100k/h, 5-min buckets, "
        "AR(1) log-intensity sd 1.0)",
        "",
        f"False NO_GO (auth_spike fails): {share(auth.count('fail'), len(auth))} of "
        f"{len(auth)} runs (target ≤ 2.5%); passes {auth.count('pass') / len(auth):.1%}.",
        "",
        "## Sequential, error-rate gate, a look every 5 min over 48 h",
        "",
        "| cell | runs at ×1.5 | ever passed at ×1.5 | target met | A/A runs "
        "| A/A passed within 48 h | A/A time to pass, median |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in SEQUENTIAL:
        at = [t for c, m, t in sequential if c == cell and m == 1.5]
        aa = [t for c, m, t in sequential if c == cell and m == 1.0]
        ever = sum(t is not None for t in at)
        done = [t for t in aa if t is not None]
        median = f"{statistics.median(done):.0f} min" if done else "—"
        lines.append(
            f"| {cell} | {len(at)} | {share(ever, len(at))} | {meets(ever, len(at))} | "
            f"{len(aa)} | {len(done) / len(aa):.1%} | {median} |"
        )
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
