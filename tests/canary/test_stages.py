"""A ramp's stages in the judge: the split per stage, rates weighted per stage, and what
the verdict says when a share moved or was never declared (`canary.stages`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tests.canary.ramps import declared, ramp_cases, ramp_samples
from wsanalysis.canary import evidence
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.canary.stages import Stage, weighted
from wsanalysis.canary.synthetic import CanaryCase
from wsanalysis.frames.measures import Counts, Window
from wsanalysis.sources.schema import TIMESTAMP

CANARY = load_gate_file().profile("canary")
ERROR_RATE = next(g for g in CANARY.gates if g.name == "error_rate")
START = datetime(2026, 11, 2, 10, tzinfo=UTC)
LOAD = 60_000  # connections per hour, both variants


def drifting(shares=(0.1, 0.5), rates=(0.005, 0.02)) -> list[CanaryCase]:
    """An A/A ramp whose base error rate moves with the hour (both variants alike)."""
    stages = [(2.0, CanaryCase(connections_per_hour=LOAD, canary_share=s, error_rate=r))
              for s, r in zip(shares, rates, strict=True)]  # fmt: skip
    return ramp_cases(START, stages)


def verdict_of(cases, stages=(), share=None):
    window = Window(cases[0].start, cases[-1].start + timedelta(hours=cases[-1].hours))
    data = JudgeInput(ramp_samples(cases), None, window, share, stages=tuple(stages))
    return judge(CANARY, data)


def gate(verdict, name: str):
    return next(g for g in verdict.gates if g.name == name)


def test_a_drifting_base_rate_pooled_over_a_ramp_fails_an_aa_canary_and_weighted_does_not():
    """Simpson: at 10 % then 50 %, the canary's connections are mostly in the error-prone
    hours, control's mostly in the quiet ones; pooled, the canary's rate reads 1.7x."""
    cases = drifting()
    pooled = verdict_of(cases)
    assert gate(pooled, "error_rate").decision == "fail"
    assert gate(pooled, "error_rate").evidence.effect > 1.5
    staged = verdict_of(cases, declared(cases))
    error_rate = gate(staged, "error_rate")
    assert error_rate.decision != "fail" and error_rate.evidence.effect == pytest.approx(1, abs=0.1)
    assert staged.metadata["across_stages"] == {
        "weighted": ["error_rate", "auth_spike"], "pooled": ["ttfb_p95"],
        "canary only": ["reconnect_rate"],
    }  # fmt: skip
    assert "moved over 2 stages (10%, 50%): error_rate, auth_spike weighted per stage" in (
        staged.reason
    )
    assert "ttfb_p95 pooled over the stages" in staged.reason


def test_the_split_is_checked_per_stage_against_each_stages_share():
    cases = drifting(rates=(0.01, 0.01))
    right = verdict_of(cases, declared(cases))
    assert right.metadata["srm"] is None
    records = right.metadata["stages"]
    assert [r["share"] for r in records] == [0.1, 0.5]
    assert [r["observed_share"] for r in records] == pytest.approx([0.1, 0.5], abs=0.01)
    assert all(r["unit"] == "connections" and r["srm_p"] > 0.001 for r in records)
    # one share for the whole ramp is a mismatch, whichever is declared
    assert verdict_of(cases, share=0.1).reason.startswith("Sample-ratio mismatch")
    # the controller says 25 % in the second stage while the canary got 50 %
    wrong = verdict_of(cases, declared(cases, [0.1, 0.25]))
    assert wrong.overall == "INCONCLUSIVE"
    assert wrong.reason.startswith(
        "Sample-ratio mismatch in stage 2 (12:00-14:00, 25%), Bonferroni over 2 stages: "
        "the canary has "
    )
    assert "of connections against the declared 25%" in wrong.reason
    assert wrong.metadata["stages"][0]["srm_p"] > 0.001


def test_a_share_not_declared_is_said_never_passed_over():
    cases = drifting(rates=(0.01, 0.01))
    none = verdict_of(cases, [Stage(None, START, START + timedelta(hours=4))])
    assert "No canary share was declared, so the traffic split was not checked" in none.reason
    assert none.metadata["stages"][0]["share"] is None
    assert "srm_p" not in none.metadata["stages"][0]
    some = verdict_of(cases, declared(cases, [0.1, None]))
    assert "The traffic split was not checked in stage 2 (12:00-14:00, no share declared)." in (
        some.reason
    )
    assert "moved over 2 stages (10%, ?)" in some.reason


def test_a_declared_stage_without_units_of_both_variants_is_said_not_checked():
    cases = drifting(rates=(0.01, 0.01))
    after = Stage(0.5, START + timedelta(hours=4), START + timedelta(hours=5))  # no data yet
    verdict = verdict_of(cases, [*declared(cases), after])
    assert "srm_p" not in verdict.metadata["stages"][2]
    assert (
        "The traffic split could not be checked in stage 3 (14:00-15:00, 50%): no unit was "
        "counted there for both variants." in verdict.reason
    )
    assert "could not be checked" not in verdict_of(cases, declared(cases)).reason


def test_one_stage_reads_as_the_whole_window():
    (case,) = ramp_cases(START, [(2.0, CanaryCase(connections_per_hour=LOAD))])
    plain = verdict_of([case], share=0.1)
    staged = verdict_of([case], declared([case]), share=0.1)
    assert staged.reason == plain.reason and staged.metadata["srm"] == plain.metadata["srm"]
    assert [g.evidence for g in staged.gates] == [g.evidence for g in plain.gates]
    assert "across_stages" not in staged.metadata and "stages" not in plain.metadata


# -- the weighted rate ratio's error rates, on Poisson counts ----------------------------


def poisson_ramp(rng, theta: float, shares=(0.1, 0.5), rates=(0.005, 0.02), minutes=120):
    """Per-minute Poisson counts of a two-stage ramp whose canary rate is `theta` x control's."""
    rows = []
    for stage, (share, rate) in enumerate(zip(shares, rates, strict=True)):
        for minute in range(minutes):
            at = START + timedelta(minutes=stage * minutes + minute)
            e, f = rng.poisson(1000 * share), rng.poisson(1000 * (1 - share))
            rows += [(at, "canary", rng.poisson(theta * rate * e), e),
                     (at, "control", rng.poisson(rate * f), f)]  # fmt: skip
    frame = pl.DataFrame(rows, schema=["bucket", "variant", "events", "exposure"], orient="row")
    frame = frame.with_columns(
        pl.col("bucket").cast(TIMESTAMP), pl.col("events", "exposure").cast(pl.Float64)
    )
    end = START + timedelta(minutes=len(shares) * minutes)
    stages = tuple(
        Stage(
            s, START + timedelta(minutes=k * minutes), START + timedelta(minutes=(k + 1) * minutes)
        )
        for k, s in enumerate(shares)
    )
    return Counts(frame, "prometheus", timedelta(minutes=1), Window(START, end)), stages


@pytest.mark.parametrize(("theta", "claim"), [(1.1, "p_harm"), (1.5, "p_safe")])
def test_weighted_per_stage_the_ratio_keeps_its_error_rates_where_pooling_does_not(theta, claim):
    """At the margin (x1.1) a fail, at the tolerance (x1.5) a pass, each at most alpha
    (2.5 %) of the time: 1,000 ramps, Poisson counts, a base rate x4 from one stage to the
    next. Pooled, the canary reads about 1.7x its true ratio: wrong almost every time."""
    rng = np.random.default_rng(25)
    alpha = evidence.one_sided_alpha(ERROR_RATE)
    runs, wrong, pooled_wrong, covered = 1000, 0, 0, 0
    for _ in range(runs):
        counts, stages = poisson_ramp(rng, theta)
        found = evidence.rate_evidence(ERROR_RATE, weighted(counts, stages))
        wrong += getattr(found, claim) <= alpha
        covered += found.ci_low <= theta <= found.ci_high
        if claim == "p_harm":
            pooled_wrong += evidence.rate_evidence(ERROR_RATE, counts).p_harm <= alpha
        else:  # pooled is biased upwards: it never wrongly passes, it wrongly fails
            pooled_wrong += evidence.rate_evidence(ERROR_RATE, counts).ci_low > theta
    assert wrong / runs <= 0.04, wrong  # 2.5 % + 3 sd of 1,000 runs
    assert covered / runs >= 0.94
    assert pooled_wrong / runs >= 0.5
