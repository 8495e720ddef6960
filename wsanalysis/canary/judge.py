"""The judge: every gate of a profile evaluated on the data, then the verdict.

Per gate, `measures` turns the frames into the statistic's input and a function of
`wsanalysis.stats` computes the evidence (estimate, interval, one-sided p-values of
harm beyond the bound and of harm at the tolerance). Holm across the profile's gates
on the harm p-values (any fail is NO_GO: a union of claims); the safety p-values are
each read at the gate's own level, because GO needs every gate to pass (an
intersection-union test: its level is the largest of the gates' levels, with no
correction). Then `verdict.decide` applies decision rule v2, and every
unsettled gate gets a projection of how much longer would settle it. With a
`SequentialPlan` the evidence is anytime-valid (`anytime`). Nothing here reads files:
the CLI and the notebooks hand it frames.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import polars as pl
from scipy import stats

from wsanalysis.canary import evidence, stages
from wsanalysis.canary.coverage import ABSENT, NOTES, review
from wsanalysis.canary.details import LooksCorrection
from wsanalysis.canary.gates import Gate, GateFile, Profile
from wsanalysis.canary.judge_input import JudgeInput
from wsanalysis.canary.kinds import kind_of
from wsanalysis.canary.partial import (
    dropped_lines_sentence,
    undecided_sentence,
    warnings_against,
)
from wsanalysis.canary.plan import SequentialPlan
from wsanalysis.canary.sentences import sentence
from wsanalysis.canary.verdict import GateEvidence, GateResult, Verdict, decide, overall
from wsanalysis.frames.counters import total_increase
from wsanalysis.frames.measures import Window
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL
from wsanalysis.stats.multiplicity import holm
from wsanalysis.stats.settle import settle_factor, z_beyond
from wsanalysis.stats.srm import sample_ratio_mismatch, sequential_sample_ratio_mismatch

__all__ = ["JudgeInput", "SequentialPlan", "evaluate_gate", "judge"]

CANARY, CONTROL = evidence.CANARY, evidence.CONTROL
GATE_WORKERS = 4  # gates evaluated at once; more gain nothing on a few cores


# -- the gate and the profile -----------------------------------------------------------


def evaluate_gate(gate: Gate, data: JudgeInput, window: Window) -> GateEvidence:
    """Evidence for one gate, or `no_data` evidence saying what was missing: its kind
    (`canary.kinds`) measures and weighs it, anytime-valid with `data.sequential`."""
    return kind_of(gate).evaluate(gate, data, window)


def _holm_levels(pvalues: list[float], alpha: float) -> list[float]:
    """The one-sided level each gate is held to by Holm's step-down at `alpha`: the
    k-th smallest p-value at alpha / (m - k + 1), once every smaller one has cleared
    its own; a gate the procedure never reaches is held to the level of the first
    one that stopped it (the best it could get with more data)."""
    finite = [(p, i) for i, p in enumerate(pvalues) if not math.isnan(p)]
    levels = [alpha] * len(pvalues)
    m = len(finite)
    stopped = None
    for k, (p, i) in enumerate(sorted(finite)):
        level = alpha / (m - k)
        if stopped is None and p > level:
            stopped = level
        levels[i] = level if stopped is None else stopped
    return levels


def _z_now(p: float, fallback: float) -> float:
    """The z a one-sided p-value stands for (the test's own: exact, bootstrap, t)."""
    if math.isfinite(p) and 0 < p < 0.5:
        return float(stats.norm.isf(p))
    return fallback


def _settle_seconds(
    gate: Gate, found: GateEvidence, elapsed: timedelta, alpha_fail: float, alpha_pass: float
) -> float | None:
    """Seconds more at the observed traffic that would settle an unsettled gate."""
    if found.missing or found.effect is None or elapsed.total_seconds() <= 0:
        return None
    effect = float(found.effect)
    kw = {"worse": gate.worse, "log_scale": found.log_scale}
    z_fail = z_beyond(effect, found.limit, found.se, **kw)
    z_pass = -z_beyond(effect, found.tolerance, found.se, **kw)
    if not found.anytime:  # the tests' own p-values, where they have them
        z_fail = _z_now(found.p_harm, z_fail) if not z_fail <= 0 else z_fail
        z_pass = _z_now(found.p_safe, z_pass) if not z_pass <= 0 else z_pass
    factor = settle_factor(
        z_fail, z_pass, alpha_fail=alpha_fail, alpha_pass=alpha_pass, anytime=found.anytime,
        df=found.df,
    )  # fmt: skip
    if factor is None:
        return None
    needed = elapsed.total_seconds() * (factor - 1.0)
    if gate.min_exposure > 0 and 0 < found.exposure < gate.min_exposure:
        needed = max(needed, elapsed.total_seconds() * (gate.min_exposure / found.exposure - 1))
    # a gate that is not settled needs at least one more look's worth of data
    return max(needed, 60.0)


def _decide_all(
    profile: Profile, found: list[GateEvidence]
) -> tuple[list[float], list[float], list[str]]:
    """Holm across gates on the harm claims; each safety claim at its own level (GO is
    an intersection-union test: every gate must pass), then the rule per gate."""
    harm = holm([e.p_harm for e in found]).tolist()
    safe = [e.p_safe for e in found]
    decisions = [
        decide(e, p, evidence.one_sided_alpha(g), s, g.min_exposure)
        for g, e, p, s in zip(profile.gates, found, harm, safe, strict=True)
    ]
    return harm, safe, decisions


def _first_looks(profile: Profile, found: list[GateEvidence]) -> dict:
    """Sequential mode: the first look of GO (every gate passed) and of NO_GO (a gate
    failed: any gate, as `overall` decides), from the p-values after every look (a gate
    without them counts as decided from the first look)."""
    length = max((len(e.path_harm or ()) for e in found), default=0)
    if length == 0:
        return {}

    def path(values: tuple[float, ...] | None, final: float) -> np.ndarray:
        if not values:
            return np.full(length, final)
        a = np.asarray(values, dtype=float)
        return np.concatenate([a, np.full(length - len(a), a[-1])]) if len(a) < length else a

    harm = np.array([path(e.path_harm, e.p_harm) for e in found])
    safe = np.array([path(e.path_safe, e.p_safe) for e in found])
    alphas = np.array([evidence.one_sided_alpha(g) for g in profile.gates])
    per_look = []
    for t in range(length):
        h, s = holm(harm[:, t]), safe[:, t]  # passes: intersection-union, no correction
        fail = np.where(np.isnan(h), False, h <= alphas)
        passed = np.where(np.isnan(s), False, s <= alphas) & ~fail
        per_look.append((fail, passed))
    go = next((t for t, (f, p) in enumerate(per_look) if p.all()), None)
    no_go = next((t for t, (f, p) in enumerate(per_look) if f.any()), None)
    return {"go_at_look": go, "no_go_at_look": no_go, "looks": length}


def judge(profile: Profile, data: JudgeInput, *, gate_file: GateFile | None = None) -> Verdict:
    """Evaluate every gate of `profile` on `data` and decide.

    The gates and the sample-ratio check are independent and spend their time in
    polars and numpy with the GIL released, so they run side by side: one gate's
    single-threaded sort overlaps another's scan. With `data.sequential` set, call it
    on the data accumulated so far at every look: a fail is final, a gate's pass holds
    while its evidence does, and the first GO is the pipeline's to keep (`anytime`).
    `gate_file` names where the profile came from (verdict.json records its path and
    sha256).
    """
    window = data.resolved_window()
    if window is None:
        found = [GateEvidence.no_data(math.nan, "the window holds no data")] * len(profile.gates)
        srm_problem, srm_skipped = None, False
        stage_records = [s.to_json() for s in data.stages]
    else:
        with ThreadPoolExecutor(GATE_WORKERS) as pool:
            split = pool.submit(_split_by_stage, profile, data)
            found = list(pool.map(lambda gate: evaluate_gate(gate, data, window), profile.gates))
            srm_problem, srm_skipped, stage_records = split.result()
    harm, safe, decisions = _decide_all(profile, found)
    elapsed = window.duration if window is not None else timedelta(0)
    unsettled = [i for i, d in enumerate(decisions) if d in ("inconclusive", "no_data")]
    fail_levels = _holm_levels(
        [e.p_harm for e in found], evidence.one_sided_alpha(profile.gates[0])
    )
    pass_levels = [evidence.one_sided_alpha(g) for g in profile.gates]
    results = []
    for i, (gate, gate_evidence) in enumerate(zip(profile.gates, found, strict=True)):
        settle = (
            _settle_seconds(gate, gate_evidence, elapsed, fail_levels[i], pass_levels[i])
            if i in unsettled
            else None
        )
        text = sentence(
            gate, gate_evidence, decisions[i], p_harm=harm[i], p_safe=safe[i],
            settle_in_s=settle, n_gates=len(found),
        )  # fmt: skip
        # figures the source warned about (a partial answer, a lenient read) decide nothing
        warned = warnings_against(gate, gate_evidence, decisions[i], data.warnings)
        results.append(
            GateResult(
                name=gate.name,
                title=gate.title,
                critical=gate.critical,
                statistic=gate.statistic,
                unit=gate.unit,
                comparison=gate.compare.against,
                worse=gate.worse,
                evidence=gate_evidence,
                p_adjusted=harm[i],
                decision="inconclusive" if warned else decisions[i],
                sentence=undecided_sentence(text, warned) if warned else text,
                p_safe_adjusted=safe[i],
                settle_in_s=settle,
                scale=kind_of(gate).scale(gate),
                gate=gate,
            )
        )
    # absent series, a skipped check, a gate that read its other source: said, not silent
    results, notes = review(profile, results, data.coverage, srm_skipped)
    verdict, reason = overall(results, srm_problem)
    metadata = {
        **data.metadata,
        "window": _window_json(window),
        "srm": srm_problem,
        "canary_share": data.canary_share,
        NOTES: notes,
        ABSENT: {name: list(series) for name, series in data.coverage.absent.items()},
    }
    if data.sequential is not None:
        plan = data.sequential
        record = {
            "look_minutes": plan.look.total_seconds() / 60,
            "horizon_hours": plan.horizon.total_seconds() / 3600,
            "planned_looks": plan.planned_looks,
            "looks_so_far": min(plan.planned_looks, math.ceil(elapsed / plan.look)),
            "elapsed_hours": elapsed.total_seconds() / 3600,
            "fixed_horizon_gates": [
                g.name for g, e in zip(profile.gates, found, strict=True) if not e.anytime
            ],
            "anytime_valid_gates": [
                g.name
                for g, e in zip(profile.gates, found, strict=True)
                if e.anytime and not isinstance(e.sequence, LooksCorrection)
            ],
            "corrected_over_looks_gates": [
                g.name
                for g, e in zip(profile.gates, found, strict=True)
                if isinstance(e.sequence, LooksCorrection)
            ],
            **_first_looks(profile, found),
        }
        metadata["sequential"] = record
        if verdict == "INCONCLUSIVE":
            hours = elapsed.total_seconds() / 3600
            horizon = plan.horizon.total_seconds() / 3600
            if elapsed < plan.horizon:
                reason = f"{reason.rstrip('.')} after {hours:.1f} h of the {horizon:.0f} h canary; keep watching."
            else:
                reason = f"{reason.rstrip('.')} at the {horizon:.0f} h horizon: the canary did not settle."
        reason = f"{reason} {_validity_sentence(record, plan)}".strip()
    dropped = dropped_lines_sentence(data.inputs)
    reason = " ".join([reason, *([dropped] if dropped else []), *notes])
    if data.stages:  # a ramp (the judge-server): each stage, and how the gates read them
        how: dict[str, list[str]] = {}
        for gate in profile.gates:
            how.setdefault(kind_of(gate).across_stages(gate), []).append(gate.name)
        metadata["stages"] = stage_records
        if len(data.stages) > 1:
            metadata["across_stages"] = how
        said = (
            stages.undeclared_sentence(data.stages),
            # a skipped check (no unit anywhere) is already said among the notes
            None if srm_skipped else stages.unchecked_sentence(data.stages, stage_records),
            stages.across_sentence(data.stages, how),
        )
        reason = " ".join([reason, *(sentence for sentence in said if sentence)])
    return Verdict(
        verdict, reason, tuple(results), profile.name, "wsanalysis", metadata, gate_file, data
    )


def _validity_sentence(record: dict, plan: SequentialPlan) -> str:
    """Which gates hold at every look, and which by a correction over the planned ones."""
    parts = []
    if record["anytime_valid_gates"]:
        parts.append(f"anytime-valid: {', '.join(record['anytime_valid_gates'])}")
    if record["corrected_over_looks_gates"]:
        parts.append(
            f"corrected over the {plan.planned_looks} planned looks (valid to the horizon): "
            + ", ".join(record["corrected_over_looks_gates"])
        )
    if record["fixed_horizon_gates"]:
        parts.append(f"not anytime-valid: {', '.join(record['fixed_horizon_gates'])}")
    return (parts[0][0].upper() + "; ".join(parts)[1:] + ".") if parts else ""


def _window_json(window: Window | None) -> dict | None:
    if window is None:
        return None
    return {"start": window.start.isoformat(), "end": window.end.isoformat()}


def _split_test(canary_n: int, control_n: int, share: float, data: JudgeInput) -> tuple[float, str]:
    """The sample-ratio test's p-value and its name (one place: per stage as for the
    whole window). Read at every look (sequential), it is the anytime-valid Bayes factor
    on the cumulative counts."""
    if data.sequential is None:
        return sample_ratio_mismatch(canary_n, control_n, share).pvalue, "chi-square"
    test = sequential_sample_ratio_mismatch(canary_n, control_n, share)
    return test.pvalue, "anytime-valid Bayes factor"


def _mismatch(
    unit: str, counts: tuple[int, int], share: float, test: tuple[float, str], where: str
) -> str:
    (canary_n, control_n), (p, name) = counts, test
    observed = canary_n / (canary_n + control_n)
    return (
        f"Sample-ratio mismatch{where}: the canary has {observed:.1%} of {unit} against the "
        f"declared {share:.0%} ({name} p = {p:.1e}); the traffic split is not what was "
        "declared, so no comparison can be trusted."
    )


def _sample_ratio_problem(profile: Profile, data: JudgeInput) -> tuple[str | None, bool]:
    """A sentence when the observed split contradicts the declared canary share, and
    whether the check was skipped (a share declared, no unit counted for both variants)."""
    if data.canary_share is None:
        return None, False
    units = _split_units(profile, data)
    if units is None:
        return None, True
    unit_name, canary_n, control_n = units
    test = _split_test(canary_n, control_n, data.canary_share, data)
    if test[0] < profile.srm_alpha:
        counts = (canary_n, control_n)
        return _mismatch(unit_name, counts, data.canary_share, test, ""), False
    return None, False


def _split_by_stage(profile: Profile, data: JudgeInput) -> tuple[str | None, bool, list[dict]]:
    """The split checked per ramp stage against that stage's declared share (Bonferroni
    over the stages that declared one), whether the check was skipped (shares declared, no
    unit counted), and each stage's record; without stages, the whole window
    against `canary_share`. One stage reads as the whole window does."""
    if not data.stages:
        return *_sample_ratio_problem(profile, data), []
    if len(data.stages) == 1:
        units = _split_units(profile, data)
        per = None if units is None else (units[0], [{CANARY: units[1], CONTROL: units[2]}])
    else:
        per = stages.units_per_stage(data.samples, data.beacons, data.stages, profile.srm_unit)
    declared = sum(1 for s in data.stages if s.share is not None)
    problem, records = None, []
    skipped = per is None and declared > 0
    for k, stage in enumerate(data.stages):
        record = stage.to_json()
        counted = per[1][k] if per is not None else {}
        canary_n, control_n = counted.get(CANARY, 0), counted.get(CONTROL, 0)
        record |= {"unit": per[0] if per is not None else None, "canary": canary_n,
                   "control": control_n}  # fmt: skip
        tested = CANARY in counted and CONTROL in counted and canary_n + control_n > 0
        if stage.share is not None and tested:
            assert per is not None
            p, name = _split_test(canary_n, control_n, stage.share, data)
            p = min(1.0, p * declared)
            record |= {"observed_share": canary_n / (canary_n + control_n), "srm_p": p}
            if p < profile.srm_alpha and problem is None:
                where = (
                    "" if len(data.stages) == 1
                    else f" in {stage.label(k + 1)}, Bonferroni over {declared} stages"
                )  # fmt: skip
                test = (p, name)
                problem = _mismatch(per[0], (canary_n, control_n), stage.share, test, where)
        records.append(record)
    return problem, skipped, records


def _split_units(profile: Profile, data: JudgeInput) -> tuple[str, int, int] | None:
    """Sessions per variant from RUM, else connections opened from the server."""
    sessions = (
        data.measures.sessions_per_variant(data.beacons, (CANARY, CONTROL))
        if profile.srm_unit == "sessions"
        else {}
    )
    if sessions:  # from the beacons, or counted in an engine
        counts, units = sessions, "sessions"
    else:
        opened = data.samples.filter(pl.col("metric") == CONNECTIONS_TOTAL)
        if opened.is_empty():
            return None
        per = total_increase(opened)
        counts = {r["variant"]: int(r["increase"]) for r in per.iter_rows(named=True)}
        units = "connections"
    if CANARY not in counts or CONTROL not in counts:
        return None
    return units, counts[CANARY], counts[CONTROL]
