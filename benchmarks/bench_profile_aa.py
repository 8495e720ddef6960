"""Whole-profile A/A decisiveness: the share of healthy canaries the `canary` profile
calls GO (fixed window), every gate through the judge from simulated frames.

    .venv/bin/python benchmarks/bench_profile_aa.py [--runs 300] [--hours 1]
        [--traffic 100000] [--workers 2]

Prints one line: GO / NO_GO / INCONCLUSIVE shares with 95% Wilson intervals, and the
gates that kept runs from GO. Run it on two trees (PYTHONPATH=<tree>) with the same
seeds to compare a change with its baseline (benchmarks/RESULTS-calibration.md).
"""

from __future__ import annotations

import argparse
import collections
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

from scipy import stats
from tqdm import tqdm

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.canary.synthetic import CanaryCase, synthesize
from wsanalysis.frames.measures import Window

PROFILE = load_gate_file().profile("canary")


def one_run(task: tuple[int, float, float]) -> tuple[str, tuple[str, ...]]:
    seed, hours, traffic = task
    scenario = CanaryCase(hours=hours, connections_per_hour=traffic)
    samples, beacons = synthesize(scenario, seed)
    window = Window(scenario.start, scenario.start + timedelta(hours=hours))
    verdict = judge(PROFILE, JudgeInput(samples, beacons, window, 0.1))
    return verdict.overall, tuple(g.name for g in verdict.gates if g.decision != "pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--traffic", type=float, default=100_000.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tasks = [(seed, args.hours, args.traffic) for seed in range(args.runs)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(tqdm(pool.map(one_run, tasks, chunksize=5), total=len(tasks)))
    verdicts = collections.Counter(v for v, _ in results)
    blocking = collections.Counter(g for _, gates in results for g in gates)

    def share(k: int) -> str:
        ci = stats.binomtest(k, len(results)).proportion_ci(0.95, method="wilson")
        return f"{k / len(results):.1%} ({ci.low:.1%}–{ci.high:.1%})"

    print(
        f"{args.hours:g} h × {args.traffic:,.0f}/h, {len(results)} A/A runs: "
        + ", ".join(f"{v} {share(verdicts[v])}" for v in ("GO", "NO_GO", "INCONCLUSIVE"))
        + "; not passing: "
        + ", ".join(f"{g} {n}" for g, n in blocking.most_common())
    )


if __name__ == "__main__":
    main()
