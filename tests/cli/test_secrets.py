"""No credential leaks: every command and both report kinds run with a bearer token, with a
basic-auth password, and with both set at once (refused), and neither secret (nor the
judge-server's own token) appears in stdout, stderr or any file any of them wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.prometheus.fixtures import require_prometheus
from wsanalysis.sources.local_prometheus import (
    BasicAuthUser,
    LocalPrometheus,
    backfill,
    free_port,
)

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
BEFORE, AFTER = (REPO / "data" / f"before_after_{s}" for s in ("before", "after"))
TOKEN = "tok-9c1e-bearer-secret-55d0"
PASSWORD = "open-sesame"  # bcrypt (cost 4) below, as in tests/prometheus/test_errors.py
USER = BasicAuthUser(
    "analyst", PASSWORD, "$2b$04$85B0vGwbbytam9EBPet1Jeoz7zNq./UiIIi4bsUNSPbtbgoaDYx1O"
)
JUDGE_TOKEN = "judge-7a2b-service-token-0f9e"
SECRETS = (TOKEN, PASSWORD, JUDGE_TOKEN)
START, END = "2026-11-02T06:00:00Z", "2026-11-02T07:00:00Z"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalPrometheus]]:
    """The sample dataset in two real Prometheus servers: one open, one with basic auth."""
    require_prometheus()
    found = {}
    with (
        LocalPrometheus(_tsdb(tmp_path_factory)) as open_,
        LocalPrometheus(_tsdb(tmp_path_factory), basic_auth=USER) as protected,
    ):
        found = {"bearer": open_, "basic": protected, "both": protected}
        yield found


def _tsdb(factory: pytest.TempPathFactory) -> Path:
    tsdb = factory.mktemp("tsdb")
    backfill(SAMPLE, tsdb, replace=True)
    return tsdb


def commands(url: str, out: Path) -> dict[str, list]:
    window = ["--start", START, "--end", END]
    report_window = ["--param", f"start={START}", "--param", f"end={END}"]
    return {
        "judge prometheus": [
            "judge",
            "--prometheus",
            url,
            *window,
            "--canary-share",
            "0.1",
            "--out",
            out / "judge.json",
        ],  # fmt: skip
        "judge data": ["judge", "--data", SAMPLE, *window, "--out", out / "judge-data.json"],
        "judge password URL": [
            "judge",
            "--prometheus",
            url.replace("//", f"//analyst:{PASSWORD}@"),
            *window,
            "--out",
            out / "refused.json",
        ],  # fmt: skip
        "incident prometheus": [
            "incident",
            "--prometheus",
            url,
            *window,
            "--out",
            out / "incident.json",
            "--plot",
            out / "timeline.html",
        ],  # fmt: skip
        "incident data": ["incident", "--data", SAMPLE, *window, "--out", out / "inc-data.json"],
        "compare": ["compare", BEFORE, AFTER, "--json", out / "compare.json"],
        "summary": ["summary", "--data", SAMPLE],
        "export dashboard": ["export", "dashboard", "--out", out / "dashboard.json"],
        "export rules": ["export", "rules", "--out", out / "rules.yaml"],
        "prom load": ["prom", "load", SAMPLE, "--tsdb", out / "tsdb"],
        "report canary": [
            "canary",
            "--param",
            f"prometheus={url}",
            *report_window,
            "--param",
            "canary_share=0.1",
            "--out",
            out / "canary",
        ],  # fmt: skip
        "report incident": [
            "report",
            "incident",
            "--param",
            f"prometheus={url}",
            *report_window,
            "--out",
            out / "incident-report",
        ],  # fmt: skip
        **{f"{name} --help": [name, "--help"] for name in ("serve", "client", "simulate")},
    }


#: What each pass runs: everything once; the credential paths with each kind.
PROMETHEUS_COMMANDS = ("judge prometheus", "judge password URL", "incident prometheus")
PASSES = {
    "bearer": None,  # every command
    "basic": (*PROMETHEUS_COMMANDS, "report canary", "report incident"),
    "both": PROMETHEUS_COMMANDS,  # refused before anything is read: no report needed
}


def environment(kind: str, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSANALYSIS_")}
    if kind in ("bearer", "both"):
        env["WSANALYSIS_PROM_BEARER_TOKEN"] = TOKEN
    if kind in ("basic", "both"):
        env["WSANALYSIS_PROM_USER"], env["WSANALYSIS_PROM_PASSWORD"] = USER.user, PASSWORD
    env["WSANALYSIS_JUDGE_TOKEN"] = JUDGE_TOKEN
    return env


def judge_server_look(url: str, out: Path, env: dict[str, str]) -> tuple[str, int]:
    port = free_port()
    log = out / "judge-server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "wsanalysis.cli", "judge-server", "--prometheus", url,
             "--port", str(port), "--state", str(out / "state.sqlite")],
            env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=out,
        )  # fmt: skip
    try:
        for _ in range(600):
            if process.poll() is not None:
                return log.read_text(), process.returncode  # refused to start
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        answer = requests.post(
            f"http://127.0.0.1:{port}/v1/judge",
            json={"id": "leak-check", "start": START, "end": END, "canary_share": "0.1"},
            headers={"Authorization": f"Bearer {JUDGE_TOKEN}"},
            timeout=60,
        )
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        process.terminate()
        process.wait(timeout=30)
    return answer.text + metrics, answer.status_code


@pytest.mark.parametrize("kind", ["bearer", "basic", "both"])
def test_no_command_prints_or_writes_a_credential(servers, kind: str, tmp_path: Path):
    url = servers[kind].url
    env = environment(kind, url)
    seen: list[tuple[str, str]] = []
    wanted = {n: a for n, a in commands(url, tmp_path).items() if PASSES[kind] is None
              or n in PASSES[kind]}  # fmt: skip
    running = {  # side by side: most of the time is interpreter start-up and the kernel
        name: subprocess.Popen(
            [sys.executable, "-m", "wsanalysis.cli", *map(str, argv)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name, argv in wanted.items()
    }
    codes = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=900)
        codes[name] = process.returncode
        seen += [(f"{name} stdout", stdout), (f"{name} stderr", stderr)]
    text, status = judge_server_look(url, tmp_path, env)
    seen.append(("judge-server answers", text))
    for path in tmp_path.rglob("*"):
        if path.is_file():
            seen.append((str(path), path.read_bytes().decode("utf-8", errors="replace")))

    leaks = [(where, s) for where, content in seen for s in SECRETS if s in content]
    assert leaks == []
    assert codes["judge password URL"] == 3 and not (tmp_path / "refused.json").exists()
    if kind == "both":  # two kinds of credentials: refused before anything is read
        assert codes["judge prometheus"] == codes["incident prometheus"] == 3
        assert status == 3  # the judge-server refuses to start
        return
    # the commands really ran against the server with the credentials
    assert codes["judge prometheus"] in (0, 1, 2) and codes["report canary"] in (0, 1, 2)
    assert codes["report incident"] == codes["incident prometheus"] == 0
    assert status == 200
    assert (tmp_path / "canary" / "report.html").exists()
    assert (tmp_path / "incident-report" / "report.html").exists()
    if kind == "bearer":
        assert all(codes[n] == 0 for n in ("compare", "summary", "export rules", "prom load"))
