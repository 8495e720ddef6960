"""Decisiveness of the judge: decision rule v1, v2 and Kayenta-parity side by side.

Imported by `bench_judge_accuracy.py --decisiveness` (the command that writes the
table); kept apart so each file stays one idea. Every run is a synthetic canary
(`wsanalysis.canary.synthetic`, 10% canary share) judged on the default `canary`
profile. v1 is today's former rule, rebuilt from the same evidence: a pass when the
interval lies inside the bound or observed power at the tolerance reaches 80% (a spike
gate with no canary event counted as powered); v2 is the rule in `canary/verdict.py`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from datetime import timedelta

import numpy as np

from wsanalysis.canary.evidence import one_sided_alpha
from wsanalysis.canary.gates import Profile, load_gate_file
from wsanalysis.canary.judge import JudgeInput, SequentialPlan, evaluate_gate, judge
from wsanalysis.canary.kayenta_gates import kayenta_verdict
from wsanalysis.canary.synthetic import CanaryCase, synthesize
from wsanalysis.canary.verdict import GateEvidence, decide
from wsanalysis.frames.measures import Window
from wsanalysis.stats.multiplicity import holm

PROFILE = load_gate_file().profile("canary")
HOURS = (1, 3, 6)
TRAFFIC = (20_000, 100_000, 500_000)
FIXED = {
    "A/A": ({}, None),
    "error ×1.5 (tolerance)": ({"error_multiplier": 1.5}, "error_rate"),
    "error ×1.1 (margin)": ({"error_multiplier": 1.1}, "error_rate"),
    "p95 +150 ms (tolerance)": ({"ttfb_shift_s": 0.15}, "ttfb_p95"),
    "p95 +100 ms (margin)": ({"ttfb_shift_s": 0.10}, "ttfb_p95"),
}
SEQUENTIAL_CAP_HOURS = {20_000: 12, 100_000: 6, 500_000: 2}  # A/A runs: simulated this far


def decide_v1(e: GateEvidence, p_adjusted: float, alpha: float, statistic: str) -> str:
    """The former rule: fail on harm; pass when sufficient and either the interval lies
    inside the bound or power at the tolerance is at least 80% (a spike gate with no
    canary event was counted as fully powered)."""
    if e.missing:
        return "no_data"
    if not math.isnan(p_adjusted) and p_adjusted <= alpha:
        return "fail"
    if not e.sufficient or e.ci_low is None or e.ci_high is None:
        return "inconclusive"
    inside = e.ci_high <= e.limit if e.worse == "increase" else e.ci_low >= e.limit
    power = 1.0 if statistic == "spike" and e.n_canary == 0 else e.power
    return "pass" if inside or (not math.isnan(power) and power >= 0.8) else "inconclusive"


def _single(gate_name: str) -> Profile:
    return replace(PROFILE, gates=(PROFILE.gate(gate_name),))


def _kayenta_class(profile: Profile, data: JudgeInput) -> dict[str, str]:
    _, result, _ = kayenta_verdict(profile, data)
    return {m.name: m.classification.label for m in (result.metrics if result else [])}


def fixed_run(task: tuple[str, int, float, int]) -> dict:
    """One fixed-window canary: v1, v2 and Kayenta on the gate the scenario targets, or
    on the whole profile for A/A."""
    name, hours, traffic, seed = task
    effects, target = FIXED[name]
    scenario = CanaryCase(connections_per_hour=traffic, hours=hours, **effects)
    samples, beacons = synthesize(scenario, seed, beacons=target != "error_rate")
    window = Window(scenario.start, scenario.start + timedelta(hours=hours))
    data = JudgeInput(samples, beacons, window, canary_share=0.1)
    record = {"scenario": name, "hours": hours, "traffic": traffic}
    if target is None:
        verdict = judge(PROFILE, data)
        record["v2"] = verdict.overall
        found = [g.evidence for g in verdict.gates]
        adjusted = holm([e.p_harm for e in found])
        v1 = [
            decide_v1(e, p, one_sided_alpha(g), g.statistic)
            for g, e, p in zip(PROFILE.gates, found, adjusted, strict=True)
        ]
        record["v1"] = "NO_GO" if "fail" in v1 else "GO" if set(v1) == {"pass"} else "INCONCLUSIVE"
        record["kayenta"] = kayenta_verdict(PROFILE, data)[0]
        return record
    gate = PROFILE.gate(target)
    e = evaluate_gate(gate, data, window)
    alpha = one_sided_alpha(gate)
    record["v2"] = decide(e, e.p_harm, alpha, e.p_safe, gate.min_exposure)
    record["v1"] = decide_v1(e, e.p_harm, alpha, gate.statistic)
    label = _kayenta_class(_single(target), data).get(target, "Nodata")
    record["kayenta"] = {"High": "fail", "Low": "fail", "Pass": "pass"}.get(label, "inconclusive")
    return record


def sequential_aa_run(task: tuple[int, float, int]) -> dict:
    """A healthy canary watched every 5 min (48 h plan): when GO came, if it came."""
    hours, traffic, seed = task
    scenario = CanaryCase(connections_per_hour=traffic, hours=hours)
    samples, beacons = synthesize(scenario, seed)
    window = Window(scenario.start, scenario.start + timedelta(hours=hours))
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    verdict = judge(PROFILE, JudgeInput(samples, beacons, window, 0.1, sequential=plan))
    record = verdict.metadata["sequential"]
    go, no_go = record.get("go_at_look"), record.get("no_go_at_look")
    return {
        "traffic": traffic,
        "go_minutes": None if go is None else 5 * (go + 1),
        "false_no_go": no_go is not None and (go is None or no_go <= go),
        "cap_hours": hours,
    }


def sequential_error_run(task: tuple[float, float, int, int]) -> dict:
    """The error-rate gate alone, counters only, watched every 5 min: first pass and
    first fail (minutes), over `hours` (48 h except where detection comes early)."""
    multiplier, traffic, seed, hours = task
    scenario = CanaryCase(connections_per_hour=traffic, hours=hours, error_multiplier=multiplier)
    samples, _ = synthesize(scenario, seed, beacons=False)
    window = Window(scenario.start, scenario.start + timedelta(hours=hours))
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    gate = PROFILE.gate("error_rate")
    found = evaluate_gate(gate, JudgeInput(samples, None, window, sequential=plan), window)
    alpha = one_sided_alpha(gate)

    def first(path) -> float | None:
        hits = np.nonzero(np.asarray(path) <= alpha)[0]
        return None if len(hits) == 0 else 5.0 * (int(hits[0]) + 1)

    return {
        "multiplier": multiplier,
        "traffic": traffic,
        "pass_min": first(found.path_safe),
        "fail_min": first(found.path_harm),
    }


def fixed_tasks(base_runs: int, error_runs: int) -> list[tuple[str, int, float, int]]:
    """Runs per cell: `error_runs` for the counters-only error scenarios; for the others
    `base_runs` at 20k/h × 1 h, fewer where a run costs more (÷ √volume, at least 3)."""
    tasks = []
    for hours in HOURS:
        for traffic in TRAFFIC:
            volume = hours * traffic / 20_000
            heavy = max(min(3, base_runs), round(base_runs / math.sqrt(volume)))
            for name, (_, target) in FIXED.items():
                count = error_runs if target == "error_rate" else heavy
                tasks += [(name, hours, traffic, 30_000 + s) for s in range(count)]
    return tasks


def sequential_tasks(aa_runs: int, error_runs: int) -> tuple[list, list]:
    aa = []
    for traffic in TRAFFIC:
        runs = max(min(3, aa_runs), round(aa_runs * math.sqrt(20_000 / traffic)))
        aa += [(SEQUENTIAL_CAP_HOURS[traffic], traffic, 40_000 + s) for s in range(runs)]
    errors = [
        (m, traffic, 50_000 + s, 12 if m == 2.0 else 48)
        for traffic in TRAFFIC
        for m in (1.0, 1.5, 2.0)
        for s in range(error_runs)
    ]
    return aa, errors


def _minutes(values: list[float | None], q: float) -> str:
    """A quantile of times; runs that never reached it count as beyond the cap."""
    if not values:
        return "n/a"
    ordered = sorted(math.inf if v is None else v for v in values)
    x = ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
    if math.isinf(x):
        return "> cap"
    return f"{x / 60:.1f} h" if x >= 60 else f"{x:.0f} min"


def tables(fixed: list[dict], aa: list[dict], errors: list[dict], share) -> list[str]:
    """The decisiveness tables (markdown lines); `share(list[bool])` formats a share."""

    def cells():
        for hours in HOURS:
            for traffic in TRAFFIC:
                cell = [r for r in fixed if r["hours"] == hours and r["traffic"] == traffic]
                yield (
                    f"{hours} h | {traffic:,}",
                    lambda name, cell=cell: [r for r in cell if r["scenario"] == name],
                )

    def three(group: list[dict], wanted: str) -> list[str]:
        return [share([r[j] == wanted for r in group]) for j in ("v1", "v2", "kayenta")]

    lines = [
        "### Fixed windows",
        "",
        "Each cell: v1 / v2 / Kayenta-parity. GO share on A/A (higher is better); false GO "
        "at the tolerance = the targeted gate passes (target ≤ 2.5%); caught = it fails; "
        "false NO_GO at the margin = it fails (target ≤ 5%).",
        "",
        "| window | traffic/h | A/A runs | GO on A/A v1 | v2 | Kayenta | NO_GO on A/A v1 | v2 | Kayenta |",
        "|" + "---|" * 9,
    ]
    for label, runs in cells():
        group = runs("A/A")
        lines.append(
            f"| {label} | {len(group)} | "
            + " | ".join(three(group, "GO") + three(group, "NO_GO"))
            + " |"
        )
    for title, tolerance, margin in (
        ("Error rate (counters only)", "error ×1.5 (tolerance)", "error ×1.1 (margin)"),
        ("p95 TTFB", "p95 +150 ms (tolerance)", "p95 +100 ms (margin)"),
    ):
        lines += [
            "",
            f"{title}: at the tolerance ({tolerance.split(' (')[0]}) and at the margin "
            f"({margin.split(' (')[0]}).",
            "",
            "| window | traffic/h | runs | false GO at tolerance v1 | v2 | Kayenta "
            "| caught at tolerance v1 | v2 | Kayenta | false NO_GO at margin v1 | v2 | Kayenta |",
            "|" + "---|" * 12,
        ]
        for label, runs in cells():
            at, near = runs(tolerance), runs(margin)
            row = three(at, "pass") + three(at, "fail") + three(near, "fail")
            lines.append(f"| {label} | {len(at)} | " + " | ".join(row) + " |")
    lines += [
        "",
        "### Sequential (looks every 5 min, 48 h plan)",
        "",
        "Time to GO on A/A: the whole profile, simulated up to the cap (12 h at 20k/h, 6 h at "
        "100k/h, 2 h at 500k/h); '> cap' where that share of runs had not reached GO. "
        "Error-rate gate alone (counters only): time to NO_GO at ×2 (12 h simulated), false "
        "NO_GO on A/A and false GO at the tolerance ×1.5 at any look over 48 h.",
        "",
        "| traffic/h | A/A runs | time to GO median | p90 | false NO_GO A/A (whole profile, to GO) "
        "| error runs | time to NO_GO ×2 median | NO_GO ×2 within 12 h | false NO_GO A/A (48 h) "
        "| false GO at ×1.5 (48 h) | A/A error gate passed, median |",
        "|" + "---|" * 11,
    ]
    for traffic in TRAFFIC:
        a = [r for r in aa if r["traffic"] == traffic]
        e = {m: [r for r in errors if r["traffic"] == traffic and r["multiplier"] == m]
             for m in (1.0, 1.5, 2.0)}  # fmt: skip
        row = [
            f"{traffic:,}",
            str(len(a)),
            _minutes([r["go_minutes"] for r in a], 0.5),
            _minutes([r["go_minutes"] for r in a], 0.9),
            share([r["false_no_go"] for r in a]),
            str(len(e[1.0])),
            _minutes([r["fail_min"] for r in e[2.0]], 0.5),
            share([r["fail_min"] is not None for r in e[2.0]]),
            share([r["fail_min"] is not None for r in e[1.0]]),
            share([r["pass_min"] is not None for r in e[1.5]]),
            _minutes([r["pass_min"] for r in e[1.0]], 0.5),
        ]
        lines.append("| " + " | ".join(row) + " |")
    seconds = [r.get("seconds") for r in fixed if r.get("seconds")]
    if seconds:
        lines += ["", f"Median seconds per fixed run: {statistics.median(seconds):.2f}."]
    return lines
