"""Calibration of decision rule v2, strong enough that a miscalibrated judge goes red.

Fixed seeds, synthetic canaries with known truth (`canary.synthetic`). At the margin
(error rate ×1.1, p95 +100 ms: exactly as bad as the bound) a `fail` is a false alarm;
at the tolerance (×1.5, +150 ms) a `pass` is a false pass. Both are one-sided tests at
2.5%; the assertions allow up to 10% so fixed seeds do not flake, yet each test was
seen to fail with the one-sided alpha multiplied by 8 (about 20% either way) and with
the error-rate gate swapped for the naive Poisson test (23% false fails at the margin,
22% false passes at the tolerance under this overdispersion): see
/work/notes/issue-13.md for the mutation runs.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from wsanalysis.canary.evidence import one_sided_alpha, rate_evidence
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.judge import JudgeInput, SequentialPlan, evaluate_gate, judge
from wsanalysis.canary.synthetic import CanaryCase, gate_counts, synthesize
from wsanalysis.canary.verdict import decide
from wsanalysis.cli import main
from wsanalysis.frames.measures import Window

CANARY = load_gate_file().profile("canary")


def _decisions(gate_name: str, scenario: CanaryCase, seeds: range, beacons: bool) -> list[str]:
    gate = CANARY.gate(gate_name)
    out = []
    for seed in seeds:
        samples, rum = synthesize(scenario, seed, beacons=beacons)
        window = Window(scenario.start, scenario.start + timedelta(hours=scenario.hours))
        found = evaluate_gate(gate, JudgeInput(samples, rum, window), window)
        alpha = one_sided_alpha(gate)
        out.append(decide(found, found.p_harm, alpha, found.p_safe, gate.min_exposure))
    return out


# Overdispersed, autocorrelated error counts: where a Poisson test over-alarms.
ROUGH = {"connections_per_hour": 100_000, "dispersion": 0.6}
# where the audit saw false passes: 1 h, 3 h at low traffic, few clustered events, rough
TOLERANCE_CELLS = (
    {"hours": 1, "connections_per_hour": 100_000},
    {"hours": 3, "connections_per_hour": 20_000},
    {"hours": 1, "connections_per_hour": 18_000, "error_cluster": 3.0},
    {"hours": 1, **ROUGH},
)


def _fast_decisions(cell: dict, multiplier: float, seeds: range, alpha_factor: float = 1.0):
    """The error-rate gate's decision per seed, through the gate-level fast path (the
    gate input built from the synthetic counts; the judge's evidence and rule)."""
    gate = CANARY.gate("error_rate")
    alpha = one_sided_alpha(gate) * alpha_factor
    out = []
    for seed in seeds:
        counts = gate_counts(CanaryCase(**cell, error_multiplier=multiplier), seed)
        found = rate_evidence(gate, counts)
        out.append(decide(found, found.p_harm, alpha, found.p_safe, gate.min_exposure))
    return out


@pytest.mark.slow
def test_error_rate_false_passes_at_the_tolerance_over_4000_canaries():
    """1,000 canaries exactly at the ×1.5 tolerance in each of four cells. Measured: 50
    passes in 4,000 (1.25%; nominal at most 2.5%); with the one-sided alpha doubled,
    139. The limit, 80 (2%), sits between: a 2× false-pass rate fails this test."""
    passes = sum(_fast_decisions(cell, 1.5, range(1000)).count("pass") for cell in TOLERANCE_CELLS)
    assert passes <= 80, passes


@pytest.mark.slow
def test_error_rate_false_fails_at_the_margin_are_rare():
    decided = _fast_decisions({"hours": 1, **ROUGH}, 1.1, range(1000))
    assert decided.count("fail") <= 25, decided.count("fail")  # one-sided 2.5%
    assert decided.count("pass") >= 50  # the test can pass at all: not vacuous


@pytest.mark.slow
def test_ttfb_at_the_margin_never_fails_and_at_the_tolerance_never_passes():
    margin = _decisions(
        "ttfb_p95", CanaryCase(connections_per_hour=20_000, ttfb_shift_s=0.10), range(30), True
    )
    tolerance = _decisions(
        "ttfb_p95", CanaryCase(connections_per_hour=20_000, ttfb_shift_s=0.15), range(30), True
    )
    assert margin.count("fail") <= 3 and margin.count("pass") >= 5, margin
    assert tolerance.count("pass") <= 3 and tolerance.count("fail") >= 5, tolerance


def test_a_canary_of_24_connections_is_never_go():
    """Even a canary with no event at all: its exposure bounds nothing to the tolerance."""
    for seed in range(12):
        for scenario in (
            CanaryCase(connections_per_hour=240),
            CanaryCase(connections_per_hour=240, auth_rate=0.0, error_rate=0.0),
            CanaryCase(connections_per_hour=240, auth_burst_multiplier=3.0),
        ):
            samples, beacons = synthesize(scenario, seed)
            window = Window(scenario.start, scenario.start + timedelta(hours=1))
            verdict = judge(CANARY, JudgeInput(samples, beacons, window, canary_share=0.1))
            assert verdict.overall != "GO", verdict.reason
            auth = next(g for g in verdict.gates if g.name == "auth_spike")
            assert auth.decision != "pass", auth.sentence


def test_settle_time_is_stated_and_roughly_right():
    """An inconclusive error-rate gate says how long it needs; given that much more data
    at the same traffic it settles more often than not."""
    scenario = CanaryCase(connections_per_hour=18_000)
    settled, told = 0, 0
    for seed in range(8):
        samples, beacons = synthesize(scenario, seed, beacons=False)
        window = Window(scenario.start, scenario.start + timedelta(hours=1))
        profile = CANARY.__class__(CANARY.name, "", (CANARY.gate("error_rate"),))
        verdict = judge(profile, JudgeInput(samples, beacons, window))
        if verdict.overall != "INCONCLUSIVE":
            continue
        told += 1
        wait = verdict.settle_in_s
        assert wait is not None and wait > 0
        assert verdict.to_json()["settle_in_s"] == wait
        hours = 1 + wait / 3600
        longer = CanaryCase(connections_per_hour=18_000, hours=round(hours * 60) / 60)
        samples, _ = synthesize(longer, seed, beacons=False)
        window = Window(longer.start, longer.start + timedelta(hours=longer.hours))
        settled += judge(profile, JudgeInput(samples, None, window)).overall != "INCONCLUSIVE"
    assert told >= 3 and settled >= told / 2, (told, settled)


# -- sequential: decisions do not drift as looks accumulate ------------------------------


def _first_pass_and_fail(found) -> tuple[bool, bool]:
    alpha = one_sided_alpha(CANARY.gate("error_rate"))
    return min(found.path_safe) <= alpha, min(found.path_harm) <= alpha


@pytest.mark.slow
def test_sequential_error_rate_looked_at_every_5_minutes_stays_calibrated():
    """72 looks over 6 h (the first hour a burn-in): ever passing at the tolerance, or ever
    failing at the margin, stays near the one-sided 2.5% however many looks were taken."""
    gate = CANARY.gate("error_rate")
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    passes = fails = 0
    for multiplier, seeds in ((1.5, range(60)), (1.1, range(60))):
        for seed in seeds:
            scenario = CanaryCase(
                connections_per_hour=100_000, hours=6, error_multiplier=multiplier
            )
            samples, _ = synthesize(scenario, seed, beacons=False)
            window = Window(scenario.start, scenario.start + timedelta(hours=6))
            found = evaluate_gate(gate, JudgeInput(samples, None, window, sequential=plan), window)
            ever_pass, ever_fail = _first_pass_and_fail(found)
            passes += ever_pass and multiplier == 1.5
            fails += ever_fail and multiplier == 1.1
    # 120 canaries at a line: 2 decisions against the truth here (the mixture is
    # conservative); with the one-sided alpha × 8, 10 (6 passes, 4 fails)
    assert passes + fails <= 5, (passes, fails)


@pytest.mark.slow
def test_sequential_error_rate_ever_passes_at_the_tolerance_rarely_over_1000_canaries():
    """1,000 canaries exactly at the ×1.5 tolerance, 100k connections/h, a look every 5 min
    for 12 h (the gate-level fast path): ever passing is a false GO. Measured: 1 in 1,000
    (nominal at most 2.5%; 10 with the one-sided alpha × 4); without the dispersion
    tempering, 115. The limit, 25, fails a 2× rate (5%: 50 expected) with certainty."""
    from wsanalysis.canary.anytime import rate_pass_path

    gate = CANARY.gate("error_rate")
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    alpha = one_sided_alpha(gate)
    ever = 0
    for seed in range(1000):
        scenario = CanaryCase(connections_per_hour=100_000, hours=12, error_multiplier=1.5)
        ever += bool(np.any(rate_pass_path(gate, gate_counts(scenario, seed), plan) <= alpha))
    assert ever <= 25, ever


def test_sequential_decisions_are_final():
    """Judged again on more of the same canary, a gate that passed still passes, and the
    p-values after the earlier looks are the same (but the last: the window's end cuts
    its last minute of counter increases differently)."""
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    scenario = CanaryCase(connections_per_hour=60_000, hours=3)
    samples, beacons = synthesize(scenario, 4)
    verdicts = []
    for hours in (2, 3):
        end = scenario.start + timedelta(hours=hours)
        window = Window(scenario.start, end)
        data = JudgeInput(
            samples.filter(samples["timestamp"] <= end),
            beacons.filter(beacons["ts"] <= end),
            window,
            0.1,
            sequential=plan,
        )
        verdicts.append(judge(CANARY, data))
    early, late = verdicts
    for a, b in zip(early.gates, late.gates, strict=True):
        if a.decision in ("pass", "fail"):
            assert b.decision == a.decision, (a.name, a.decision, b.decision)
        if a.evidence.path_safe and a.name == "error_rate":
            n = len(a.evidence.path_safe) - 1
            assert np.allclose(a.evidence.path_safe[:n], b.evidence.path_safe[:n])


# -- Kayenta parity on the bundled sample --------------------------------------------------


def test_kayenta_parity_verdict_on_the_sample(sample_dataset: Path, tmp_path: Path):
    """Kayenta's per-step Mann-Whitney sees nothing wrong in the sample (its one-hour
    reconnect burst is one step in 144), where this judge fails reconnect_rate."""
    out = tmp_path / "v.json"
    code = main(["judge", "--data", str(sample_dataset), "--judge", "kayenta", "--out", str(out)])
    document = json.loads(out.read_text())
    assert (code, document["verdict"]) == (0, "GO")
    assert document["kayenta"]["classification"] == "Pass"
    assert document["kayenta"]["score"] == 100.0
    assert document["kayenta"]["metrics"]["reconnect_rate"] == "Pass"


def test_quantile_design_effect_of_a_look_is_frozen():
    """A look's session design effect comes from the samples up to it: more data later
    (here clustered more strongly) never changes an earlier look's figure."""
    from wsanalysis.canary.anytime import design_effect_per_look

    rng = np.random.default_rng(3)
    sessions = np.repeat(np.arange(2000), 5)
    values = rng.lognormal(rng.normal(0, 0.4, 2000)[sessions], 0.3)
    looks = np.repeat(np.arange(20), 500)
    early = design_effect_per_look(values[:5000], sessions[:5000], looks[:5000], 20, 0.95, 4)
    late = design_effect_per_look(values, sessions, looks, 20, 0.95, 4)
    assert np.array_equal(early[:10], late[:10])
    assert late.min() >= 1.0 and np.all(np.diff(late[3:]) >= 0)  # running max after 1 h


def _durations(rng: np.random.Generator, mean_s: float, hours: float = 12.0, per_hour: int = 80):
    """Connections opened through the window (and some before it), exponential lives,
    still-open ones censored at the window's end: a `measures.Durations`."""
    import polars as pl

    from wsanalysis.frames.measures import Durations

    start = CanaryCase().start
    span = hours * 3600
    opened = rng.uniform(-3 * 3600, span, int(per_hour * (hours + 3)))
    lives = rng.exponential(mean_s, len(opened))
    closed = opened + lives <= span
    seen = closed & (opened + lives >= 0) | ~closed & (opened >= 0)  # what beacons show
    opened, lives, closed = opened[seen], lives[seen], closed[seen]
    frame = pl.DataFrame(
        {
            "variant": "canary",
            "duration": np.where(closed, lives, span - opened),
            "observed": closed,
            "opened": [start + timedelta(seconds=float(s)) for s in opened],
        }
    ).with_columns(pl.col("opened").cast(pl.Datetime("ms", "UTC")))
    return Durations(frame), Window(start, start + timedelta(hours=hours))


@pytest.mark.slow
def test_sequential_duration_p95_ever_passes_at_the_tolerance_rarely_over_1000_canaries():
    """p95 connection duration exactly at the 1 h 30 min tolerance (exponential lives,
    S(5400 s) = 5%), 12 h of 5-minute looks, 1,000 canaries: ever passing is a false GO.
    Connections already open when the window starts are there because they lived long
    (length bias) and are left out. Measured: 10 in 1,000; with the one-sided alpha × 2, 22;
    counting the pre-window connections, 660. The limit, 25, fails a 2× rate (5%: 50
    expected) with certainty."""
    from wsanalysis.canary import anytime, evidence

    gate = load_gate_file().profile("staging").gate("duration_p95")
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    alpha = one_sided_alpha(gate)
    rng = np.random.default_rng(11)
    ever = 0
    for _ in range(1000):
        durations, window = _durations(rng, 5400 / np.log(20))
        fixed = evidence.survival_evidence(gate, durations)
        found = anytime.survival_evidence(gate, durations, window, plan, fixed)
        ever += bool(np.any(np.asarray(found.path_safe) <= alpha))
    assert ever <= 25, ever


def test_sequential_duration_gate_passes_and_fails_what_it_should():
    """Lives of mean 2 h pass the p95 >= 2 h gate in 12 h; of mean 25 min they fail it;
    the push-down path (no open times) keeps the fixed test split over the planned looks."""
    from wsanalysis.canary import anytime, evidence
    from wsanalysis.canary.details import LooksCorrection
    from wsanalysis.frames.measures import Durations

    gate = load_gate_file().profile("staging").gate("duration_p95")
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    rng = np.random.default_rng(5)
    for mean, decision in ((7200.0, "pass"), (1500.0, "fail")):
        durations, window = _durations(rng, mean)
        found = anytime.survival_evidence(
            gate, durations, window, plan, evidence.survival_evidence(gate, durations)
        )
        assert found.anytime and "beta-binomial mixture" in found.method
        alpha = one_sided_alpha(gate)
        assert decide(found, found.p_harm, alpha, found.p_safe) == decision, found
    pushed = Durations(durations.frame.drop("opened"))
    found = anytime.survival_evidence(
        gate, pushed, window, plan, evidence.survival_evidence(gate, pushed)
    )
    assert isinstance(found.sequence, LooksCorrection)
    assert found.details_json()["looks_correction"] == "bonferroni"
