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

from wsanalysis.canary.evidence import one_sided_alpha
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.judge import JudgeInput, SequentialPlan, evaluate_gate, judge
from wsanalysis.canary.synthetic import CanaryCase, synthesize
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


@pytest.mark.slow
def test_error_rate_false_fails_at_the_margin_are_rare():
    decided = _decisions(
        "error_rate", CanaryCase(**ROUGH, error_multiplier=1.1), range(80), beacons=False
    )
    assert decided.count("fail") <= 8, decided.count("fail")  # 2.5% nominal; 10% allowed
    assert decided.count("pass") >= 8  # the test can pass at all: not vacuous


@pytest.mark.slow
def test_error_rate_false_passes_at_the_tolerance_are_rare():
    decided = _decisions(
        "error_rate", CanaryCase(**ROUGH, error_multiplier=1.5), range(80), beacons=False
    )
    assert decided.count("pass") <= 8, decided.count("pass")
    assert decided.count("fail") >= 8  # ×1.5 is beyond the ×1.1 bound: it can fail


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


def test_quantile_confidence_sequence_covers_at_every_look():
    from wsanalysis.stats.sequential import QuantileLooks

    rng = np.random.default_rng(0)
    misses = 0
    truth = float(np.exp(1.6448536))  # p95 of a standard log-normal
    for _ in range(200):
        values = rng.lognormal(0, 1, 4000)
        looks = np.repeat(np.arange(40), 100)
        low, high = QuantileLooks(values, looks, 40).bounds(0.95, 0.025, tuned_for=1000)
        misses += bool(np.any(low > truth) or np.any(high < truth))
    assert misses <= 10  # at most 5% miss anywhere over the 40 looks (both sides at 2.5%)


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
