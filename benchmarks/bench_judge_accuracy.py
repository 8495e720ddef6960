"""Accuracy of the canary judge: false NO_GO on A/A, power on A/B, three judges, same runs.

    .venv/bin/python benchmarks/bench_judge_accuracy.py [--workers 2]
        [--base-runs 24] [--error-runs 60] [--seq-aa-runs 10] [--seq-error-runs 30]
        [--accuracy] [--aa 500] [--ab 100] [--traffic 100000] [--sequential-runs 200]
        [--out benchmarks/RESULTS-judge.md]

By default it runs the decisiveness section (`bench_decisiveness.py`: decision rule v1,
v2 and Kayenta-parity side by side over 1/3/6 h × 20k/100k/500k connections per hour,
and sequential looks); `--accuracy` adds the earlier 1 h accuracy section.

Every run is a synthetic canary (`wsanalysis.canary.synthetic`: diurnal load, shared load
swings, overdispersed AR(1) error counts, session-clustered latencies, 10% canary
share) judged on the default `canary` profile by
- `wsanalysis`: this toolkit's judge (the gate file's rule, Holm across gates);
- `kayenta`: the Kayenta-parity judge on the same gates (per-step Mann-Whitney,
  NetflixACAJudge thresholds), NO_GO when Kayenta says Fail;
- `naive`: the same gates with i.i.d. tests — exact Poisson on window totals (no
  overdispersion, no buckets: a spike is averaged over the window), an i.i.d.
  bootstrap of p95 (no session clustering) — and the same Holm correction.
The sequential part watches the error-rate gate every 5 minutes for 48 h.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy import stats
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
import bench_decisiveness  # noqa: E402

from wsanalysis.canary.evidence import one_sided_alpha
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.judge import JudgeInput, SequentialPlan, evaluate_gate, judge
from wsanalysis.canary.kayenta_gates import kayenta_verdict
from wsanalysis.canary.synthetic import CanaryCase, synthesize
from wsanalysis.frames import measures
from wsanalysis.frames.measures import Window
from wsanalysis.stats.multiplicity import holm
from wsanalysis.stats.quantiles import quantile_difference

PROFILE = load_gate_file().profile("canary")
SCENARIOS = {
    "A/A": {},
    "error rate ×1.5": {"error_multiplier": 1.5},
    "error rate ×2": {"error_multiplier": 2.0},
    "error rate ×1.1 (at the margin)": {"error_multiplier": 1.1},
    "p95 TTFB +50 ms": {"ttfb_shift_s": 0.05},
    "p95 TTFB +100 ms (at the margin)": {"ttfb_shift_s": 0.10},
    "p95 TTFB +150 ms": {"ttfb_shift_s": 0.15},
    "reconnect rate 8% (bound 5%)": {"canary_reconnect_rate": 0.08},
    "4401 burst ×8 for 15 min": {"auth_burst_multiplier": 8.0},
}
TARGET_GATE = {
    "error rate ×1.5": "error_rate",
    "error rate ×2": "error_rate",
    "error rate ×1.1 (at the margin)": "error_rate",
    "p95 TTFB +50 ms": "ttfb_p95",
    "p95 TTFB +100 ms (at the margin)": "ttfb_p95",
    "p95 TTFB +150 ms": "ttfb_p95",
    "reconnect rate 8% (bound 5%)": "reconnect_rate",
    "4401 burst ×8 for 15 min": "auth_spike",
}


def naive_fails(data: JudgeInput, window: Window) -> dict[str, bool]:
    """Which gates an i.i.d. judge would fail (Holm across gates, as ours)."""
    pvalues = {}
    for gate in PROFILE.gates:
        if gate.statistic in ("rate", "spike"):
            counts = measures.counts(
                gate.events,
                gate.exposure,
                data.samples,
                data.beacons,
                window,
                window.duration,
                gate.prefer,
            )  # fmt: skip  (one bucket: the window)
            (y, e), (m, f) = counts.totals()["canary"], counts.totals()["control"]
            if gate.compare.against == "bound":
                pvalues[gate.name] = float(stats.poisson.sf(y - 1, gate.compare.bound * e))
            else:
                limit = gate.compare.limit(1.0)
                share = limit * e / (limit * e + f)
                pvalues[gate.name] = float(stats.binom.sf(y - 1, y + m, share))
        elif gate.statistic == "quantile":
            samples = measures.rum_samples(gate.samples.rum, data.beacons).variants
            canary = samples["canary"]["value"].to_numpy()
            control = samples["control"]["value"].to_numpy()
            result = quantile_difference(
                canary, np.arange(len(canary)), control, np.arange(len(control)) + len(canary),
                q=gate.quantile, level=gate.confidence, n_resamples=1000,
            )  # fmt: skip
            pvalues[gate.name] = result.noninferiority(gate.compare.margin, worse="decrease")
    adjusted = holm(list(pvalues.values()))
    alpha = one_sided_alpha(PROFILE.gates[0])
    return {name: bool(p <= alpha) for name, p in zip(pvalues, adjusted, strict=True)}


def one_run(task: tuple[str, int, float]) -> dict:
    name, seed, traffic = task
    scenario = CanaryCase(connections_per_hour=traffic, **SCENARIOS[name])
    samples, beacons = synthesize(scenario, seed)
    window = Window(scenario.start, scenario.start + timedelta(hours=scenario.hours))
    data = JudgeInput(samples, beacons, window, canary_share=0.1)
    started = time.perf_counter()
    ours = judge(PROFILE, data)
    seconds = time.perf_counter() - started
    kayenta, result, _ = kayenta_verdict(PROFILE, data)
    naive = naive_fails(data, window)
    kayenta_fails = {
        m.name: m.classification.label == "High" or m.classification.label == "Low"
        for m in (result.metrics if result else [])
    }
    return {
        "scenario": name,
        "ours": ours.overall,
        "ours_gates": {g.name: g.decision for g in ours.gates},
        "kayenta": kayenta,
        "kayenta_gates": kayenta_fails,
        "naive": "NO_GO" if any(naive.values()) else "GO",
        "naive_gates": naive,
        "seconds": seconds,
    }


def sequential_run(task: tuple[float, int, float]) -> dict:
    """48 h of looks every 5 min on the error-rate gate; when (if) it first fails."""
    multiplier, seed, traffic = task
    scenario = CanaryCase(connections_per_hour=traffic, hours=48, error_multiplier=multiplier)
    samples, _ = synthesize(scenario, seed, beacons=False)
    window = Window(scenario.start, scenario.start + timedelta(hours=48))
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    gate = PROFILE.gate("error_rate")
    found = evaluate_gate(gate, JudgeInput(samples, None, window, sequential=plan), window)
    first = found.sequence.first_rejecting_look if found.sequence is not None else None
    minutes = None
    if first is not None:
        minutes = (datetime.fromisoformat(first) - scenario.start).total_seconds() / 60 + 5
    return {"multiplier": multiplier, "detected_after_min": minutes}


def _rate(values: list[bool]) -> str:
    n = len(values)
    k = sum(values)
    low, high = stats.binomtest(k, n).proportion_ci(0.95, method="wilson") if n else (math.nan,) * 2
    return f"{k / n:.1%} ({low:.1%}–{high:.1%})" if n else "n/a"


def decisiveness(args: argparse.Namespace, pool: ProcessPoolExecutor) -> list[str]:
    fixed_tasks = (
        []
        if args.sequential_only
        else bench_decisiveness.fixed_tasks(args.base_runs, args.error_runs)
    )
    aa_tasks, error_tasks = bench_decisiveness.sequential_tasks(
        args.seq_aa_runs, args.seq_error_runs
    )
    started = time.perf_counter()
    # the heaviest runs first, so the two workers finish together
    order = sorted(range(len(fixed_tasks)), key=lambda i: -fixed_tasks[i][1] * fixed_tasks[i][2])
    done = list(
        tqdm(
            pool.map(bench_decisiveness.fixed_run, [fixed_tasks[i] for i in order]),
            total=len(order),
            desc="fixed windows",
        )
    )
    aa = list(
        tqdm(pool.map(bench_decisiveness.sequential_aa_run, aa_tasks), total=len(aa_tasks),
             desc="sequential A/A")
    )  # fmt: skip
    errors = list(
        tqdm(
            pool.map(bench_decisiveness.sequential_error_run, error_tasks, chunksize=2),
            total=len(error_tasks),
            desc="sequential error rate",
        )
    )
    minutes = (time.perf_counter() - started) / 60
    command = (
        f"`.venv/bin/python benchmarks/bench_judge_accuracy.py --base-runs {args.base_runs} "
        f"--error-runs {args.error_runs} --seq-aa-runs {args.seq_aa_runs} "
        f"--seq-error-runs {args.seq_error_runs} --workers {args.workers}"
        f"{' --sequential-only' if args.sequential_only else ''}`"
    )
    return [
        f"## Decisiveness: rule v1, rule v2 and Kayenta-parity ({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"Command: {command} ({minutes:.1f} min on this shared 2-core machine). Shares with "
        "95% Wilson intervals; synthetic canaries, 10% canary share, default `canary` profile.",
        "",
        *bench_decisiveness.tables(done, aa, errors, _rate),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-runs", type=int, default=24, help="heavy runs at 20k/h × 1 h")
    parser.add_argument("--error-runs", type=int, default=60, help="error-rate runs per cell")
    parser.add_argument("--seq-aa-runs", type=int, default=10)
    parser.add_argument("--seq-error-runs", type=int, default=30)
    parser.add_argument("--accuracy", action="store_true", help="also the 1 h accuracy section")
    parser.add_argument("--sequential-only", action="store_true", help="skip the fixed windows")
    parser.add_argument("--aa", type=int, default=500)
    parser.add_argument("--ab", type=int, default=100)
    parser.add_argument("--traffic", type=float, default=100_000.0, help="connections per hour")
    parser.add_argument(
        "--margin-runs", type=int, default=300, help="runs per at-the-margin scenario"
    )
    parser.add_argument("--sequential-runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS-judge.md"))
    args = parser.parse_args()
    with ProcessPoolExecutor(args.workers) as pool:
        text = "\n".join(["# Canary judge accuracy", "", *decisiveness(args, pool)])
        if args.accuracy:
            text += "\n" + accuracy(args, pool)
    args.out.write_text(text + "\n")
    sys.stdout.write(text + "\n")


def accuracy(args: argparse.Namespace, pool: ProcessPoolExecutor) -> str:
    tasks = [("A/A", seed, args.traffic) for seed in range(args.aa)]
    for name in SCENARIOS:
        if name != "A/A":
            count = args.margin_runs if "at the margin" in name else args.ab
            tasks += [(name, 10_000 + seed, args.traffic) for seed in range(count)]
    started = time.perf_counter()
    runs = list(tqdm(pool.map(one_run, tasks, chunksize=4), total=len(tasks), desc="runs"))
    seq_tasks = [
        (m, 20_000 + s, args.traffic) for m in (1.0, 2.0) for s in range(args.sequential_runs)
    ]
    seq = list(
        tqdm(
            pool.map(sequential_run, seq_tasks, chunksize=4),
            total=len(seq_tasks),
            desc="48 h sequential",
        )
    )
    elapsed = time.perf_counter() - started

    by = defaultdict(list)
    for run in runs:
        by[run["scenario"]].append(run)
    lines = [
        f"## Accuracy at 1 h ({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_judge_accuracy.py --aa {args.aa} --ab {args.ab} "
        f"--traffic {args.traffic:.0f} --margin-runs {args.margin_runs} "
        f"--sequential-runs {args.sequential_runs}` "
        f"({elapsed / 60:.1f} min on this 2-core machine).",
        "",
        f"Synthetic 1 h canaries at {args.traffic:,.0f} connections/hour (10% canary), default "
        "`canary` profile. Cells: share of runs with a NO_GO verdict (95% Wilson interval); "
        "on A/A that is the false NO_GO rate, on A/B the detection power. "
        "At the margin (error rate ×1.1, p95 +100 ms) the canary is exactly as bad as the "
        "gate allows: a NO_GO there is a false alarm, and the one-sided test's nominal "
        "level is 2.5% before the Holm correction across gates (which only lowers it).",
        "",
        "| scenario | runs | wsanalysis | Kayenta-parity | naive i.i.d. | wsanalysis GO | wsanalysis INCONCLUSIVE |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        group = by[name]
        verdicts = Counter(r["ours"] for r in group)
        lines.append(
            f"| {name} | {len(group)} | {_rate([r['ours'] == 'NO_GO' for r in group])} | "
            f"{_rate([r['kayenta'] == 'NO_GO' for r in group])} | "
            f"{_rate([r['naive'] == 'NO_GO' for r in group])} | "
            f"{verdicts['GO'] / len(group):.1%} | {verdicts['INCONCLUSIVE'] / len(group):.1%} |"
        )
    lines += [
        "",
        "Per gate: share of runs where the gate failed (A/A: false fails; A/B: the targeted gate).",
        "",
        "| scenario | gate | wsanalysis | Kayenta-parity | naive i.i.d. |",
        "|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        gates = [g.name for g in PROFILE.gates] if name == "A/A" else [TARGET_GATE[name]]
        for gate in gates:
            group = by[name]
            lines.append(
                f"| {name} | {gate} | {_rate([r['ours_gates'][gate] == 'fail' for r in group])} | "
                f"{_rate([r['kayenta_gates'].get(gate, False) for r in group])} | "
                f"{_rate([r['naive_gates'][gate] for r in group])} |"
            )
    aa_seq = [r for r in seq if r["multiplier"] == 1.0]
    ab_seq = [r for r in seq if r["multiplier"] == 2.0]
    detected = [r["detected_after_min"] for r in ab_seq if r["detected_after_min"] is not None]
    median = statistics.median(detected) if detected else math.nan
    lines += [
        "",
        "Sequential mode, error-rate gate, a look every 5 min for 48 h (576 looks):",
        "",
        "| truth | runs | NO_GO at any look | median time to detect |",
        "|---|---|---|---|",
        f"| A/A | {len(aa_seq)} | {_rate([r['detected_after_min'] is not None for r in aa_seq])} | — |",
        f"| error rate ×2 | {len(ab_seq)} | {_rate([r['detected_after_min'] is not None for r in ab_seq])} | "
        f"{median:.0f} min |",
        "",
        f"Judge time per run (wsanalysis, 1 h at this traffic): median "
        f"{statistics.median(r['seconds'] for r in runs):.2f} s.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
