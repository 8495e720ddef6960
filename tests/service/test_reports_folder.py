"""`judge-server --reports DIR`: each canary's final answer lands where the release
history reads it, with the service, release and environment its looks named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.service.conftest import JudgeServer
from tests.service.test_judge_server import LOOKS_H, flagger_payload
from wsanalysis.report.history import read_history
from wsanalysis.service.reports import canary_folder

pytestmark = pytest.mark.prometheus
NAMES = {"service": "checkout", "release": "v2.4.0-rc1", "environment": "production"}


@pytest.fixture
def reporting_server(two_datasets_prometheus, tmp_path: Path):
    reports = tmp_path / "reports"  # created by the server
    server = JudgeServer(two_datasets_prometheus.url, tmp_path / "state.sqlite",
                         options=("--reports", str(reports))).start()  # fmt: skip
    yield server, reports
    server.stop()


def test_a_final_answer_is_written_once_decided_and_a_failed_write_retries(reporting_server):
    server, reports = reporting_server
    payload = flagger_payload(LOOKS_H[0])
    payload["metadata"]["service"] = "two\nlines"
    refused = server.post("/v1/flagger/rollout", payload, token=None)
    assert refused.status_code == 400 and "control character" in refused.json()["error"]

    # the canary's folder is blocked by a file: the deciding look cannot write its answer
    folder = canary_folder(reports, "shop/checkout@85d557f47b")
    folder.write_text("in the way")
    answers = []
    for hours in LOOKS_H:
        payload = flagger_payload(hours)
        payload["metadata"].update(NAMES)
        response = server.post("/v1/flagger/rollout", payload, token=None)
        if response.status_code == 400:  # the decision, which could not be written
            break
        assert response.status_code == 200 and not response.json()["final"], response.text
        answers.append(response.json())
    else:
        raise AssertionError("no look reached a decision")
    refused = response.json()
    assert refused["verdict"] is None and "--reports" in refused["error"]
    assert str(reports) not in response.text  # no server path in an answer
    folder.unlink()
    decided = server.post("/v1/flagger/rollout", payload, token=None)  # the same look, again
    assert decided.status_code == 409 and decided.json()["final"]  # NO_GO: Flagger's refusal
    answers.append(decided.json())
    assert answers[-1]["verdict"] == "NO_GO"
    assert answers[-1]["looks"] == len(answers)  # the refused look was not counted

    written = json.loads((folder / "answer.json").read_text())
    assert written == answers[-1]  # what the controller was told, word for word
    verdict = json.loads((folder / "verdict.json").read_text())
    assert verdict["verdict"] == "NO_GO" and verdict["canary"]["id"] == "shop/checkout@85d557f47b"
    assert verdict["canary"]["looks"] == len(answers)
    assert [g["decision"] for g in verdict["gates"]] == [g["decision"] for g in written["gates"]]
    assert verdict["sequential"]["no_go_at_look"] is not None
    about = verdict["about"]
    assert {k: about[k] for k in NAMES} == NAMES and about["producer"] == "judge-server"
    assert about["window"]["start"].startswith("2026-11-02T06:00")
    assert about["gate_file_sha256"] and about["finished"]

    # a later look answers the stored decision and leaves the files alone
    before = (folder / "verdict.json").stat().st_mtime_ns
    again = server.post("/v1/flagger/rollout", {**payload}, token=None).json()
    assert again["verdict"] == "NO_GO"
    assert (folder / "verdict.json").stat().st_mtime_ns == before

    history = read_history(reports)
    assert history.unreadable == []
    (run,) = history.runs
    assert (run.service, run.release, run.environment) == tuple(NAMES.values())
    assert run.outcome == "NO_GO" and run.failed_gates == ("error_rate",)
    assert run.decided_at.startswith("look ")


def test_an_unwritable_reports_folder_stops_the_server_at_start(tmp_path):
    from wsanalysis.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = ["judge-server", "--prometheus", "http://127.0.0.1:9", "--no-auth",
            "--state", str(tmp_path / "s.sqlite"), "--reports", str(blocker / "reports")]  # fmt: skip
    assert main(argv) == 3
