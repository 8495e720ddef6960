"""A weight ramp keeps its state: one canary judged across setWeight stages (issue 25, 2).

Argo resolves a run's args when the run is created (utils/analysis/factory.go), so the
weight reaches the service per stage only through an inline analysis after each
setWeight, each declaring `canary_weight`. Flagger's payload carries no weight at all.
The service keeps each look's share: a changed weight opens a new stage (no 400), the
split is checked per stage against that stage's share, and the rates against control are
weighted per stage; the answer records the stages.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
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
    """The ramp example (docs/pipelines/argo-ramp-analysis.yaml) on the synthetic ramp,
    whose server gates leave out TTFB (`gates.yaml`, under the service's --files-root)."""
    stage, gate, rollout = copy.deepcopy(documents("argo-ramp-analysis.yaml"))
    templates = {t["metadata"]["name"]: t for t in (stage, gate)}
    for template in templates.values():
        template["spec"]["metrics"][0]["provider"]["web"]["jsonBody"]["gates"] = "gates.yaml"
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [
        round(share * 100) for _, share in RAMP_STAGES
    ]
    return ArgoRollout(
        rollout,
        templates,
        {"Latest": RAMP.canary_hash, "Stable": RAMP.stable_hash},
        {("wsanalysis-judge", "token"): TOKEN},
        base,
    )


def test_the_ramp_data_is_a_healthy_canary_when_judged_whole(tmp_path: Path):
    """The ramp's data are a healthy canary whose share really moves to 25 %."""
    samples = ramp_samples()
    profile = load_gate_file(server_gates(tmp_path)).profile("canary")
    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    verdict = judge(profile, JudgeInput(samples, None, Window(RAMP_START, END), None, plan))
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
    # the last answer, asked again at its end, is returned as it was: the ramp's record
    body = {"id": f"checkout/{RAMP.canary_hash}", "end": looks[-1][0].isoformat(),
            "canary_selector": f'rollouts_pod_template_hash="{RAMP.canary_hash}"',
            "control_selector": f'rollouts_pod_template_hash="{RAMP.stable_hash}"',
            "profile": "canary", "look": "5m", "horizon": "48h", "gates": "gates.yaml",
            "canary_weight": "50"}  # fmt: skip
    answer = requests.post(f"{service.url}/v1/judge", json=body, timeout=30,
                           headers={"Authorization": f"Bearer {TOKEN}"}).json()  # fmt: skip
    assert answer["verdict"] == "GO" and answer["fetched_samples"] == 0
    # decided in a later stage (a GO is final: later looks return it)
    stages = answer["stages"]
    assert [s["share"] for s in stages] == [share for _, share in RAMP_STAGES][: len(stages)]
    assert len(stages) >= 2 and stages[1]["start"] == (RAMP_START + timedelta(hours=1)).isoformat()
    for stage in stages:  # each stage's split against its own share, none mismatched
        assert stage["unit"] == "connections" and stage["srm_p"] > 0.001
        span = datetime.fromisoformat(stage["end"]) - datetime.fromisoformat(stage["start"])
        if span >= timedelta(hours=1):  # a whole stage; the GO's stage may have 10 minutes
            assert stage["observed_share"] == pytest.approx(stage["share"], abs=0.02), stage
    assert answer["across_stages"]["weighted"] == ["error_rate", "auth_spike"]
    assert f"moved over {len(stages)} stages (10%, 25%" in answer["reason"]
