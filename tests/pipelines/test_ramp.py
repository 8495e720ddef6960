"""A weight ramp keeps its state: one canary judged across setWeight stages (issue 25, 2).

Argo resolves a run's args when the run is created (utils/analysis/factory.go), so the
weight reaches the service per stage only through an inline analysis after each
setWeight, each declaring `canary_weight`. Flagger's payload carries no weight at all.
The service accepts the field per look; judging across stages (each stage's share and
time span, the sample ratio per stage) needs the state to record stages. Until it does,
a changed weight is refused (400, an Error for Argo), and the rollout below fails: it
is marked xfail(strict) so that it turns green, and must be unmarked, when stages land.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tests.pipelines.conftest import RAMP, RAMP_STAGES, RAMP_START, TOKEN, ramp_samples
from tests.pipelines.controllers import ArgoRollout, Clock, run_argo
from tests.pipelines.test_controllers import documents
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.judge import JudgeInput, SequentialPlan, judge
from wsanalysis.frames.measures import Window

pytestmark = pytest.mark.prometheus

DEFAULT_GATES = Path(__file__).resolve().parents[2] / "wsanalysis" / "canary" / "default_gates.yaml"
END = RAMP_START + timedelta(hours=sum(hours for hours, _ in RAMP_STAGES))


def server_gates(folder: Path) -> Path:
    """The default canary profile without its TTFB gate (the synthetic ramp has no TTFB)."""
    spec = yaml.safe_load(DEFAULT_GATES.read_text())
    profile = spec["profiles"]["canary"]
    profile["gates"] = [g for g in profile["gates"] if g["name"] != "ttfb_p95"]
    spec["profiles"] = {"canary": profile}
    path = folder / "gates.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def ramp_rollout(base: str) -> ArgoRollout:
    """The example's template, declaring the stage's weight; one inline run per stage.

    A stage run watches for the stage's hour (count 13 looks at 5 minutes: 0 to 60 min)
    and ends Successful unless a NO_GO fails it; the last stage is the example's gate.
    """
    template, rollout = copy.deepcopy(documents("argo-web-analysis.yaml"))
    template["spec"]["args"].append({"name": "canary-weight"})
    metric = template["spec"]["metrics"][0]
    metric["provider"]["web"]["jsonBody"] |= {
        "canary_weight": "{{args.canary-weight}}", "gates": "gates.yaml",
    }  # fmt: skip
    stage = copy.deepcopy(template)
    stage["metadata"]["name"] = "wsanalysis-judge-stage"
    stage_metric = stage["spec"]["metrics"][0]
    stage_metric.pop("consecutiveSuccessLimit")
    stage_metric |= {"count": 13, "inconclusiveLimit": 13}
    hashes = rollout["spec"]["strategy"]["canary"]["analysis"]["args"]
    steps = []
    for number, (_, share) in enumerate(RAMP_STAGES):
        weight = round(share * 100)
        name = "wsanalysis-judge" if number == len(RAMP_STAGES) - 1 else "wsanalysis-judge-stage"
        args = [*hashes, {"name": "canary-weight", "value": str(weight)}]
        steps += [{"setWeight": weight}, {"analysis": {"templates": [{"templateName": name}],
                                                       "args": args}}]  # fmt: skip
    canary = rollout["spec"]["strategy"]["canary"]
    canary.pop("analysis")  # a background run could only send the first stage's weight
    canary["steps"] = steps
    return ArgoRollout(
        rollout,
        {"wsanalysis-judge": template, "wsanalysis-judge-stage": stage},
        {"Latest": RAMP.canary_hash, "Stable": RAMP.stable_hash},
        {("wsanalysis-judge", "token"): TOKEN},
        base,
    )


def test_the_ramp_data_is_a_healthy_canary_when_judged_whole(tmp_path: Path):
    """The ramp rollout below fails for want of stages, not for its data."""
    samples = ramp_samples()
    profile = load_gate_file(server_gates(tmp_path)).profile("canary")
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    verdict = judge(profile, JudgeInput(samples, None, Window(RAMP_START, END), None, {}, plan))
    assert verdict.overall == "GO", verdict.reason
    opened = samples.filter(samples["metric"] == "ws_connections_total")
    stage_two = opened.filter(
        (opened["timestamp"] == RAMP_START + timedelta(hours=1))
        | (opened["timestamp"] == RAMP_START + timedelta(hours=2))
    ).sort("timestamp")
    canary, control = (
        stage_two.filter(stage_two["variant"] == v)["value"].diff()[-1]
        for v in ("canary", "control")
    )
    assert canary / (canary + control) == pytest.approx(0.25, abs=0.01)


@pytest.mark.xfail(
    strict=True,
    reason="ramp stages (share and time span per stage, SRM per stage, judging across stages) "
    "need the service's stage state (issue 25 item 2, the lead's, on issue 23's state)",
)
def test_a_weight_ramp_keeps_its_state(judge_service, tmp_path: Path):
    server_gates(tmp_path)
    clock = Clock(RAMP_START)
    service = judge_service(clock, files_root=tmp_path)
    rollout = run_argo(ramp_rollout(service.url), clock, END)
    looks = [m for run in rollout.runs for m in run.measurements]
    assert [m for m in looks if m[1] == "Error"] == []  # a changed weight is not refused
    assert [run.phase for run in rollout.runs] == ["Successful"] * len(RAMP_STAGES)
    assert rollout.phase == "Healthy" and rollout.weight == 100
    assert looks[-1][2] == "GO" and [m[0] for m in looks] == sorted(m[0] for m in looks)
