"""Whole rollouts: the examples in docs/pipelines/, run by the controller double
(`controllers.py`) against a real judge-server over a real Prometheus, on a virtual clock.

A healthy canary is promoted, a canary with twice the errors is rolled back, and
Prometheus down for two analysis intervals neither promotes nor rolls back; with the
controllers' defaults (Flagger's threshold 1, Argo's consecutiveErrorLimit 4 and
inconclusiveLimit 0) the same events end the rollout, which is why the examples set them.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.pipelines.conftest import ERRORS_X2, HEALTHY, TOKEN, Deployment
from tests.pipelines.controllers import (
    ArgoRollout,
    Clock,
    FlaggerCanary,
    run_argo,
    run_flagger,
)

pytestmark = pytest.mark.prometheus

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pipelines"
#: The release is deployed at 10:00 of the datasets' 12 h (06:00-18:00; what came before
#: is history the canary's window does not reach): the healthy canary is shown good after
#: 3 h 45 min of 5-minute looks and the one with twice the errors bad after 1 h 15 min.
START = datetime(2026, 11, 2, 10, tzinfo=UTC)
UNTIL = datetime(2026, 11, 2, 17, 55, tzinfo=UTC)
#: Prometheus down for two 5-minute intervals, while the canary is watched at 10 % (Argo)
#: or waits at maxWeight for GO (Flagger).
OUTAGE = (START + timedelta(minutes=30), START + timedelta(minutes=40))


def documents(name: str) -> list[dict]:
    return list(yaml.safe_load_all((DOCS / name).read_text()))


def flagger_canary(deployment: Deployment, base: str, **analysis) -> FlaggerCanary:
    """The example Canary, applied in the deployment's namespace with the real token."""
    (canary,) = copy.deepcopy(documents("flagger-canary.yaml"))
    canary["metadata"]["namespace"] = deployment.namespace
    canary["spec"]["analysis"].update(analysis)
    for hook in canary["spec"]["analysis"]["webhooks"]:
        hook["metadata"] = {
            key: value.replace('namespace="shop"', f'namespace="{deployment.namespace}"')
            for key, value in hook["metadata"].items()
        } | {"token": TOKEN}
    return FlaggerCanary(canary, base)


def argo_rollout(deployment: Deployment, base: str, **metric) -> ArgoRollout:
    template, rollout = copy.deepcopy(documents("argo-web-analysis.yaml"))
    for name, value in metric.items():
        if value is None:
            template["spec"]["metrics"][0].pop(name)
        else:
            template["spec"]["metrics"][0][name] = value
    return ArgoRollout(
        rollout,
        {template["metadata"]["name"]: template},
        {"Latest": deployment.canary_hash, "Stable": deployment.stable_hash},
        {("wsanalysis-judge", "token"): TOKEN},
        base,
    )


def outage(service, clock: Clock):
    """Prometheus unreachable for the judge-server during OUTAGE (virtual time)."""

    def during(now: datetime) -> None:
        service.faults.down = OUTAGE[0] <= now < OUTAGE[1]

    return during


# --------------------------------------------------------------------------- Flagger


def test_flagger_promotes_a_healthy_canary_once_it_is_shown_good(judge_service):
    clock = Clock(START)
    service = judge_service(clock)
    canary = run_flagger(flagger_canary(HEALTHY, service.url), clock, UNTIL)
    assert canary.phase == "Succeeded" and canary.failed_checks == 0
    confirms = [(t, status) for t, hook, status in canary.log if hook == "confirm-promotion"]
    # weight 10 .. 50 in five intervals, then waiting at 50 % until the first GO
    assert confirms[0][0] == START + 5 * canary.interval
    assert [s for _, s in confirms[:-1]] == [409] * (len(confirms) - 1) and confirms[-1][1] == 200
    assert all(s == 409 for t, hook, s in canary.log if hook == "rollback")
    assert all(s == 200 for t, hook, s in canary.log if hook in ("rollout", "pre-rollout"))


def test_flagger_rolls_back_twice_the_errors_through_the_rollback_hook(judge_service):
    clock = Clock(START)
    service = judge_service(clock)
    canary = run_flagger(flagger_canary(ERRORS_X2, service.url), clock, UNTIL)
    assert canary.phase == "Failed" and canary.weight == 0
    assert not any(hook == "confirm-promotion" and s == 200 for _, hook, s in canary.log)
    last_time, last_hook, last_status = canary.log[-1]
    assert (last_hook, last_status) == ("rollback", 200)  # the NO_GO itself, not the threshold
    assert canary.failed_checks < canary.threshold
    # the NO_GO was seen at most one interval before the rollback it caused
    no_gos = [t for t, hook, s in canary.log if (hook, s) == ("rollout", 409)]
    assert all(last_time - t <= canary.interval for t in no_gos)


def test_flagger_rides_out_two_intervals_without_prometheus(judge_service):
    clock = Clock(START)
    service = judge_service(clock)
    canary = flagger_canary(HEALTHY, service.url)
    canary.clock = clock
    down = outage(service, clock)
    while clock.now <= OUTAGE[1] + canary.interval:
        down(clock.now)
        canary.tick()
        assert canary.phase in ("Progressing", "WaitingPromotion")  # not promoted, not failed
        clock.now += canary.interval
    during = [(hook, s) for t, hook, s in canary.log if OUTAGE[0] <= t < OUTAGE[1]]
    assert during == [("rollback", 503), ("rollout", 503)] * 2  # the rollout hook fails a check
    assert canary.failed_checks == 2 < canary.threshold
    after = [(hook, s) for t, hook, s in canary.log if t >= OUTAGE[1]]
    assert after == [("rollback", 409), ("rollout", 200), ("confirm-promotion", 409)] * 2


def test_flagger_default_threshold_rolls_back_on_the_same_outage(judge_service):
    clock = Clock(OUTAGE[0] - timedelta(minutes=10))  # a canary deployed just before
    service = judge_service(clock)
    canary = flagger_canary(HEALTHY, service.url, threshold=1)
    down = outage(service, clock)
    while not canary.done and clock.now <= OUTAGE[1] + canary.interval:
        down(clock.now)
        canary.clock = clock
        canary.tick()
        clock.now += canary.interval
    assert canary.phase == "Failed" and canary.failed_checks == 1  # one blip, rolled back


# --------------------------------------------------------------------------- Argo


def test_argo_promotes_a_healthy_canary_after_the_gate_sees_go(judge_service):
    clock = Clock(START)
    service = judge_service(clock)
    rollout = run_argo(argo_rollout(HEALTHY, service.url), clock, UNTIL)
    assert rollout.phase == "Healthy" and rollout.weight == 100
    background, gate = rollout.runs
    assert background.phase == "Successful" and gate.phase == "Successful"
    assert background.errors == gate.errors == 0
    go_at = background.measurements[-1][0]
    assert background.measurements[-1][2] == "GO" and go_at > START + timedelta(hours=2)
    assert {v for _, _, v in background.measurements[:-1]} == {"INCONCLUSIVE"}
    steps = [text for _, text in rollout.log]
    assert steps[-1] == "promoted" and "step 5 done, weight 50" in steps
    assert rollout.log[-1][0] == go_at  # promoted at the first GO, not before


def test_argo_aborts_twice_the_errors_from_the_background_run(judge_service):
    clock = Clock(START)
    service = judge_service(clock)
    rollout = run_argo(argo_rollout(ERRORS_X2, service.url), clock, UNTIL)
    assert rollout.phase == "Degraded" and rollout.weight == 0
    assert rollout.runs[0].phase == "Failed" and rollout.runs[0].measurements[-1][2] == "NO_GO"
    assert all(run.phase != "Successful" for run in rollout.runs)


def test_argo_rides_out_two_intervals_without_prometheus(judge_service):
    clock = Clock(START)
    service = judge_service(clock)
    rollout = argo_rollout(HEALTHY, service.url)
    run_argo(rollout, clock, OUTAGE[1] + timedelta(minutes=15), during=outage(service, clock))
    assert rollout.phase == "Progressing" and rollout.weight == 10  # neither promoted nor aborted
    (background,) = rollout.runs
    errors = [m for m in background.measurements if m[1] == "Error"]
    assert len(errors) == 60 and {v for _, _, v in errors} == {503}  # 10 min of 10 s retries
    assert errors[0][0] == OUTAGE[0] and background.phase == "Running"
    after = [m for m in background.measurements if m[0] >= OUTAGE[1]]
    assert [m[2] for m in after] == ["INCONCLUSIVE"] * 4  # watching again, every 5 minutes
    assert [m[0] - OUTAGE[1] for m in after] == [timedelta(minutes=5 * k) for k in range(4)]


def test_argo_default_error_limit_aborts_on_the_same_outage(judge_service):
    """Argo's consecutiveErrorLimit default (4): forty seconds of outage abort the canary."""
    clock = Clock(OUTAGE[0] - timedelta(minutes=10))  # a canary deployed just before
    service = judge_service(clock)
    rollout = argo_rollout(HEALTHY, service.url, consecutiveErrorLimit=None)
    run_argo(rollout, clock, OUTAGE[1], during=outage(service, clock))
    assert rollout.phase == "Degraded" and rollout.runs[0].phase == "Error"
    assert [m[1] for m in rollout.runs[0].measurements].count("Error") == 5


def test_argo_default_inconclusive_limit_pauses_at_the_first_look(judge_service):
    """Argo's inconclusiveLimit default (0): the first look, inconclusive by design, pauses."""
    clock = Clock(START)
    service = judge_service(clock)
    rollout = run_argo(argo_rollout(HEALTHY, service.url, inconclusiveLimit=None), clock, UNTIL)
    assert rollout.phase == "Paused"  # pauses hold the weight for a human to decide
    assert [m[2] for m in rollout.runs[0].measurements] == ["INCONCLUSIVE"]
