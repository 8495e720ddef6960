"""judge-server end to end: a real Prometheus, a real server process, Argo's and Flagger's
request shapes, `end` advancing look by look, a restart midway, a GO and a NO_GO canary.

Every answer is checked against the library's judge run in one shot on the same window
(`load_judge_input` from the same Prometheus, sequential mode, push-down as the CLI): the
service reads only what is new (plus its late margin) and keeps per-bucket sums, and must
still say exactly what a full read says.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.service.conftest import TOKEN, JudgeServer
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import load_judge_input
from wsanalysis.canary.judge import judge

pytestmark = pytest.mark.prometheus

START = datetime(2026, 11, 2, 6, tzinfo=UTC)
LOOKS_H = (1, 3, 6, 9, 12)
RESTART_AFTER_H = 3
SETTINGS = {"canary_share": "0.1", "look": "1h", "horizon": "12h", "profile": "canary"}


def selectors(dataset: str) -> dict[str, str]:
    return {
        "canary_selector": f'dataset="{dataset}",variant="canary"',
        "control_selector": f'dataset="{dataset}",variant="control"',
    }


def argo_body(hours: int) -> dict:
    """What the documented AnalysisTemplate's `jsonBody` renders to (all strings)."""
    end = START + timedelta(hours=hours)
    return {"id": "shop/checkout-7d9f8c", "start": START.isoformat().replace("+00:00", "Z"),
            "end": end.isoformat().replace("+00:00", "Z"), **SETTINGS, **selectors("aa")}  # fmt: skip


def flagger_payload(hours: int) -> dict:
    """Flagger's webhook payload; the look's fields ride in `metadata`, all strings."""
    end = START + timedelta(hours=hours)
    metadata = {"start": str(int(START.timestamp())), "end": str(int(end.timestamp())),
                "token": TOKEN, **SETTINGS, **selectors("x2")}  # fmt: skip
    return {"name": "checkout", "namespace": "shop", "phase": "Progressing",
            "checksum": "85d557f47b", "metadata": metadata}  # fmt: skip


def one_shot(url: str, dataset: str, hours: int):
    """The library's verdict on [START, START + hours], everything read at once."""
    profile = load_gate_file(None).profile("canary")
    data = load_judge_input(
        profile, prometheus=url, start=START.isoformat(),
        end=(START + timedelta(hours=hours)).isoformat(), canary_share=0.1, sequential=True,
        look="1h", horizon="12h", **selectors(dataset),
    )  # fmt: skip
    return judge(profile, data), data.samples


def same_as_library(answer: dict, verdict) -> None:
    assert answer["verdict"] == verdict.overall
    assert answer["reason"] == verdict.reason
    assert [(g["name"], g["decision"]) for g in answer["gates"]] == [
        (g.name, g.decision) for g in verdict.gates
    ]
    for gate, result in zip(answer["gates"], verdict.gates, strict=True):
        effect = result.evidence.effect
        if effect is not None and math.isfinite(effect):
            assert gate["estimate"] == pytest.approx(effect, rel=1e-9)
        elif effect is not None:  # no finite estimate (e.g. no canary event): none or ±inf
            assert gate["estimate"] in (None, "inf" if effect > 0 else "-inf")
        assert gate["sentence"] == result.sentence


def test_argo_go_and_flagger_no_go_look_by_look_across_a_restart(judge_server: JudgeServer):
    seen: dict[str, list[dict]] = {"argo": [], "flagger": []}
    previous = None
    for hours in LOOKS_H:
        if hours == LOOKS_H[0]:  # two canaries at once
            with ThreadPoolExecutor(2) as pool:
                argo = pool.submit(judge_server.post, "/v1/judge", argo_body(hours))
                flagger = pool.submit(
                    judge_server.post, "/v1/flagger/rollout", flagger_payload(hours), token=None
                )
                argo, flagger = argo.result(), flagger.result()
        else:
            argo = judge_server.post("/v1/judge", argo_body(hours))
            flagger = judge_server.post("/v1/flagger/rollout", flagger_payload(hours), token=None)
        assert argo.status_code == 200, argo.text
        seen["argo"].append(argo.json())
        seen["flagger"].append(flagger.json())

        # the GO canary (Argo): same verdict as one full read, only new samples fetched
        verdict, samples = one_shot(judge_server.prometheus, "aa", hours)
        answer = argo.json()
        if len(seen["argo"]) > 1 and seen["argo"][-2].get("final"):
            # settled at an earlier look: the answer stays, nothing more is fetched
            assert answer["verdict"] == seen["argo"][-2]["verdict"]
            assert answer["fetched_samples"] == 0
        else:
            same_as_library(answer, verdict)
            # the first look reads the window, later ones what is new and the late margin
            if previous is None:
                assert answer["fetched_samples"] == samples.height > 0
            else:
                assert 0 < answer["fetched_samples"] < samples.height
        assert argo.json()["settle_in_s"] == getattr(verdict, "settle_in_s", None)

        # the NO_GO canary (Flagger): 200 while GO/INCONCLUSIVE, above 202 with the reason
        body = flagger.json()
        if not body.get("final") or body["looks"] == 1 or body["fetched_samples"] > 0:
            verdict, samples = one_shot(judge_server.prometheus, "x2", hours)
            same_as_library(body, verdict)
        if body["verdict"] == "NO_GO":
            assert flagger.status_code == 409 and "Error rate" in body["reason"]
        else:
            assert flagger.status_code == 200
        if hours == RESTART_AFTER_H:
            judge_server.restart()
        previous = hours

    argo_verdicts = [a["verdict"] for a in seen["argo"]]
    first_go = argo_verdicts.index("GO")  # GO comes before the horizon, then stays
    assert first_go < len(argo_verdicts) - 1
    assert set(argo_verdicts[:first_go]) <= {"INCONCLUSIVE"}
    assert set(argo_verdicts[first_go:]) == {"GO"}
    flagger_verdicts = [a["verdict"] for a in seen["flagger"]]
    first_no_go = flagger_verdicts.index("NO_GO")
    assert set(flagger_verdicts[:first_no_go]) == {"INCONCLUSIVE"}
    assert set(flagger_verdicts[first_no_go:]) == {"NO_GO"}  # final once taken
    assert all(a["final"] for a in seen["flagger"][first_no_go:])
    # the restart lost nothing: one more look per request until the answer was final
    looks = [a["looks"] for a in seen["argo"]]
    final_at = next(i for i, a in enumerate(seen["argo"]) if a.get("final"))
    assert looks[: final_at + 1] == list(range(1, final_at + 2))
    assert looks == sorted(looks) and looks[-1] <= len(looks)

    # Flagger's other hooks on the same canaries
    x2 = flagger_payload(12)
    assert judge_server.post("/v1/flagger/rollback", x2, token=None).status_code == 200
    assert judge_server.post("/v1/flagger/confirm-promotion", x2, token=None).status_code == 409
    assert judge_server.post("/v1/flagger/pre-rollout", x2, token=None).status_code == 409
    aa = {"name": "checkout", "namespace": "shop", "phase": "Promoting", "checksum": "aa",
          "metadata": {k: str(v) for k, v in argo_body(12).items()}}  # fmt: skip
    assert judge_server.post("/v1/flagger/confirm-promotion", aa).status_code == 200
    assert judge_server.post("/v1/flagger/rollback", aa).status_code == 409

    page = requests.get(f"{judge_server.url}/metrics", timeout=10).text
    assert 'wsanalysis_judge_verdicts_total{verdict="GO"}' in page
    assert 'wsanalysis_judge_verdicts_total{verdict="NO_GO"}' in page
    assert "wsanalysis_judge_look_seconds_bucket" in page


def test_requests_are_checked_and_the_token_is_required(judge_server: JudgeServer):
    body = argo_body(1)
    assert judge_server.post("/v1/judge", body, token=None).status_code == 401
    assert judge_server.post("/v1/judge", body, token="wrong-token-0123456789").status_code == 401
    payload = flagger_payload(1)
    payload["metadata"]["token"] = "wrong"
    assert judge_server.post("/v1/flagger/rollout", payload, token=None).status_code == 401

    bad = {**body, "canary_share": "1.5"}
    answer = judge_server.post("/v1/judge", bad)
    assert answer.status_code == 400 and "canary_share" in answer.json()["error"]
    for field, value in (("start", "yesterday"), ("look", "0m"), ("end", "2026-11-02T05:00:00Z")):
        answer = judge_server.post("/v1/judge", {**body, field: value})
        assert answer.status_code == 400, (field, answer.text)
        assert answer.json()["verdict"] is None
    assert judge_server.post("/v1/judge", {**body, "gates": "/etc/passwd"}).status_code == 400
    assert judge_server.post("/v1/flagger/post-rollout", payload).status_code == 400

    assert judge_server.post("/v1/judge", body).status_code == 200
    changed = judge_server.post("/v1/judge", {**argo_body(2), "canary_share": "0.2"})
    assert changed.status_code == 400 and "canary_share" in changed.json()["error"]
    back = judge_server.post("/v1/judge", {**argo_body(1), "end": START.isoformat()})
    assert back.status_code == 400


def test_the_server_refuses_to_start_without_a_token(tmp_path):
    from wsanalysis.cli import main

    assert main(["judge-server", "--prometheus", "http://127.0.0.1:9", "--state",
                 str(tmp_path / "s.sqlite")]) == 3  # fmt: skip
    assert not (tmp_path / "s.sqlite").exists()
