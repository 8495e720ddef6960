"""What a calibration says: the interval on the false NO_GO rate holds its level when the
seeds of a window agree (they split the same data), and the sentences say what the
replays can and cannot tell."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import stats

from wsanalysis.calibration.reading import (
    detectable_rate,
    effective_replays,
    replays_to_tell,
    sentences,
    table_text,
    wilson_interval,
    within_level,
)


@pytest.mark.parametrize(("k", "n"), [(0, 12), (1, 60), (7, 60), (30, 40), (12, 12)])
def test_wilson_is_scipys_on_whole_counts(k: int, n: int) -> None:
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson_interval(k / n, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_effective_replays_between_windows_and_replays() -> None:
    # seeds that disagree as much as separate windows would: every replay counts
    independent = [(1, 5), (0, 5), (2, 5), (0, 5), (1, 5), (0, 5), (1, 5), (0, 5), (1, 5), (0, 5)]
    assert effective_replays(independent) == pytest.approx(50, rel=0.2)
    # the seeds of a window always agree: a window is one replay
    alike = [(5, 5), (0, 5), (5, 5), (0, 5), (0, 5), (5, 5), (0, 5), (5, 5), (5, 5), (0, 5)] * 2
    assert effective_replays(alike) == pytest.approx(20, rel=0.05)
    assert effective_replays([(0, 5)] * 12) == 12  # no NO_GO: nothing tells the seeds apart
    assert effective_replays([(0, 1)] * 12) == 12  # one seed: windows are replays
    assert effective_replays([(1, 5)]) == 1


@pytest.mark.parametrize(("rate", "rho", "windows"), [(0.05, 0.3, 30), (0.05, 0.8, 30),
                                                      (0.025, 0.5, 30), (0.1, 0.3, 12),
                                                      (0.2, 0.3, 30), (0.05, 0.0, 20)])  # fmt: skip
def test_the_interval_covers_the_rate_when_seeds_of_a_window_agree(
    rate: float, rho: float, windows: int
) -> None:
    """2,000 calibrations of 5 seeds per window, NO_GO clustered by window (a beta-
    binomial with intraclass correlation rho): the 95% interval covers the true rate in
    at least 93% of them (binomial SE 0.5%). Counting replays as independent covers
    64-82% at rho 0.3-0.8, and fails this."""
    rng = np.random.default_rng(int(rate * 1000 + rho * 100 + windows))
    runs, seeds, covered = 2000, 5, 0
    spread = 1 / max(rho, 1e-9) - 1
    for _ in range(runs):
        per_window = rng.beta(rate * spread, (1 - rate) * spread, windows) if rho else rate
        hits = rng.binomial(seeds, per_window, windows)
        clusters = [(int(k), seeds) for k in hits]
        low, high = wilson_interval(hits.sum() / (windows * seeds), effective_replays(clusters))
        covered += low <= rate <= high
    assert covered / runs >= 0.93, covered / runs


def test_what_a_replay_count_can_tell() -> None:
    assert within_level(0.0, 0.02, 0.025) is True
    assert within_level(0.03, 0.2, 0.025) is False
    assert within_level(0.0, 0.2, 0.025) is None
    seen = detectable_rate(60, 0.025)
    assert wilson_interval(seen, 60)[0] == pytest.approx(0.025, abs=1e-6)
    assert detectable_rate(60, 0.025) > detectable_rate(600, 0.025) > 0.025
    assert detectable_rate(1, 0.9) is None  # one replay shows nothing above 90%
    # the brief's own figure: 60 runs cannot tell 2.5% from 6%
    assert replays_to_tell(0.025, 0.06) > 60
    assert 250 < replays_to_tell(0.025, 0.05) < 400


DOCUMENT = {
    "replays": 60,
    "verdicts": {"GO": 40, "NO_GO": 1, "INCONCLUSIVE": 19},
    "gates": {
        "error_rate": {"pass": 45, "fail": 1, "inconclusive": 14, "no_data": 0,
                       "comparison": "control", "dispersion": 1.8, "replayed_on": "pods",
                       "source": "prometheus", "not_replayable": None, "no_data_why": None},
        "reconnect_rate": {"pass": 50, "fail": 2, "inconclusive": 8, "no_data": 0,
                           "comparison": "bound", "dispersion": 1.0, "replayed_on": "sessions",
                           "source": "rum", "not_replayable": None, "no_data_why": None},
        "ttfb_p95": {"pass": 0, "fail": 0, "inconclusive": 0, "no_data": 60,
                     "comparison": "control", "dispersion": None, "replayed_on": "sessions",
                     "source": "rum", "not_replayable": None,
                     "no_data_why": "the canary's exposure was below the gate's minimum"},
        "auth_spike": {"pass": 0, "fail": 0, "inconclusive": 0, "no_data": 0,
                       "comparison": "control", "dispersion": None, "replayed_on": None,
                       "source": None, "not_replayable": "control runs on one pod (c-0)",
                       "no_data_why": None},
    },
    "plan": {"error_rate": {"settle_in_s": 5400.0}, "reconnect_rate": {"settle_in_s": 1800.0},
             "ttfb_p95": {"settle_in_s": None}, "auth_spike": {"settle_in_s": None}},
    "false_no_go": {"rate": 1 / 60, "low": 0.003, "high": 0.089, "level": 0.025,
                    "effective_replays": 40.0, "within_level": None},
    "srm": {"checked": True, "trips": 2, "alpha": 0.001, "why_not": None},
    "pods": None,
    "settings": {"profile": "canary", "window_s": 3600.0, "canary_share": 0.1, "seeds": 5,
                 "gates_replayed": ["error_rate", "ttfb_p95", "reconnect_rate"]},
    "history": {"windows": 12},
    "notes": ["A note."],
}  # fmt: skip


def test_the_sentences_say_level_limits_gaps_and_checks() -> None:
    said = sentences(DOCUMENT)
    assert said[0].startswith("60 A/A replays (12 windows of 1 h × 5 split seeds")
    assert "1.7% (95% CI 0.3% to 8.9%, as 40 independent replays)" in said[0]
    assert "consistent with the judge's 2.5% level, but these replays cannot show" in said[0]
    assert said[1].startswith("What 40 independent replays can tell")
    assert "Not replayed: auth_spike (control runs on one pod (c-0))." in said
    assert any(s.startswith("No decision in any replay: ttfb_p95") for s in said)
    assert any(s.startswith("reconnect_rate failed in 2 replays against its absolute bound")
               for s in said)  # fmt: skip
    assert any("sample-ratio check tripped in 2 of 60" in s for s in said)
    assert said[-1] == "A note."
    above = copy.deepcopy(DOCUMENT)
    above["false_no_go"] |= {"within_level": False}
    assert "above the judge's 2.5% level" in sentences(above)[0]
    table = table_text(DOCUMENT).splitlines()
    assert table[1].split()[:3] == ["error_rate", "pods", "45"]
    assert "about 1 h 30 min" in table[1]
    assert table[4].startswith("auth_spike") and "not replayed" in table[4]


def test_the_plan_projects_a_healthy_canary_to_the_declared_share() -> None:
    """se 0.2 on the log scale at a 25% pod split, tolerance ×1.5: a canary at ×1 passes
    with 80% power after ((z_0.975 + z_0.8) · 0.2 / ln 1.5)² windows at 25%, and
    0.25·0.75 / (0.1·0.9) times that at the declared 10%."""
    from datetime import timedelta

    from wsanalysis.calibration.replay import healthy_settle_seconds
    from wsanalysis.canary.gates import load_gate_file
    from wsanalysis.canary.verdict import GateEvidence, GateResult

    gate = load_gate_file(None).profile("canary").gate("error_rate")
    evidence = GateEvidence(
        canary=0.01, control=0.01, effect=1.0, ci_low=0.7, ci_high=1.4, limit=1.1,
        p_harm=0.5, power=0.5, sufficient=True, method="m", source="prometheus",
        tolerance=1.5, se=0.2, log_scale=True, exposure=5000.0,
    )  # fmt: skip
    result = GateResult(
        "error_rate", "Error rate", True, "rate", "", "control", "increase", evidence, 0.5,
        "inconclusive", "",
    )  # fmt: skip
    z = stats.norm.isf(0.025) + stats.norm.ppf(0.8)
    windows = (z * 0.2 / np.log(1.5)) ** 2 * (0.25 * 0.75) / (0.1 * 0.9)
    seconds = healthy_settle_seconds(gate, result, timedelta(hours=1), 0.25, 0.1)
    assert seconds == pytest.approx(windows * 3600, rel=1e-9)
    # below the minimum exposure (200 connections at 10%: 80 at 25% here) it waits for it
    tiny = GateResult(
        **{
            **result.__dict__,
            "evidence": GateEvidence(**{**evidence.__dict__, "exposure": 50.0, "se": 0.01}),
        }
    )
    assert healthy_settle_seconds(gate, tiny, timedelta(hours=1), 0.25, 0.1) == pytest.approx(
        200 / 50 * 0.25 / 0.1 * 3600
    )
    # control's own level beyond the tolerance: a healthy canary never passes
    bound = GateResult(
        **{
            **result.__dict__,
            "comparison": "bound",
            "evidence": GateEvidence(**{**evidence.__dict__, "effect": 1.6}),
        }
    )
    assert healthy_settle_seconds(gate, bound, timedelta(hours=1), 0.25, 0.1) is None
