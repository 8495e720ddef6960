"""Executed reports shared by the report tests, and a headless Chromium to read them.

Kernel start-ups are slow, so every report a test reads is executed once per session,
all of them at the same time (one `wsanalysis canary` process each), and the browser
opens each page once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pytest
from report_support import (
    ARTIFACTS,
    HOSTILE,
    HOSTILE_RELEASE,
    REPO,
    SAMPLE,
    SECRET,
    WSANALYSIS,
    Chromium,
    Executed,
    PageLoad,
    hostile_dataset,
)

from wsanalysis.sources.local_prometheus import BasicAuthUser, LocalPrometheus, backfill

RUNS: dict[str, list[str]] = {
    "sample": [
        "--param",
        "data={data}",
        "--param",
        "canary_share=0.1",
        "--service",
        "checkout",
        "--release",
        "v2.3.1",
        "--environment",
        "production",
    ],
    "staging": [
        "--param",
        "data={data}",
        "--param",
        "profile=staging",
        "--param",
        "service=checkout",
        "--param",
        "release=v2.4.0",
        "--param",
        "environment=staging",
    ],
    "narrow": ["--params", "{params_file}"],
    "hostile": [
        "--param",
        "data={hostile}",
        "--param",
        "canary_share=0.1",
        "--service",
        HOSTILE,
        "--release",
        HOSTILE_RELEASE,
    ],
    "broken": ["--param", "data={empty}"],
    "prometheus": [
        "--param",
        "prometheus={prometheus}",
        "--param",
        "start=2026-11-02T06:00:00Z",
        "--param",
        "end=2026-11-02T12:00:00Z",
        "--param",
        "rum={data}/rum.ndjson.gz",
        "--param",
        "canary_share=0.1",
    ],
}
#: bcrypt (cost 4) of SECRET, the Prometheus password the runs get from the environment.
PROMETHEUS_USER = BasicAuthUser(
    user="analyst",
    password=SECRET,
    bcrypt_hash="$2b$04$85B0vGwbbytam9EBPet1Jeoz7zNq./UiIIi4bsUNSPbtbgoaDYx1O",
)


@pytest.fixture(scope="session")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Executed]:
    """Every report of the suite, executed in parallel processes."""
    root = tmp_path_factory.mktemp("reports")
    empty = root / "empty-dataset"
    empty.mkdir()
    (empty / "README").write_text("no metrics here\n")
    params_file = root / "narrow.yaml"
    params_file.write_text(
        f"data: {SAMPLE}\nstart: 2026-11-02T06:00:00Z\nend: '2026-11-02T09:30:00Z'\n"
        "canary_share: 0.1\nbucket: 15m\nsequential: on\n"
    )
    values = {
        "data": str(SAMPLE),
        "hostile": str(hostile_dataset(root / "hostile-dataset")),
        "empty": str(empty),
        "params_file": str(params_file),
    }
    env = {
        **os.environ,
        "WSANALYSIS_PROM_USER": PROMETHEUS_USER.user,
        "WSANALYSIS_PROM_PASSWORD": SECRET,
    }
    env.pop("WSANALYSIS_PROM_BEARER_TOKEN", None)
    with contextlib.ExitStack() as stack:
        if shutil.which("prometheus") and shutil.which("promtool"):
            tsdb = root / "tsdb"
            backfill(SAMPLE, tsdb)
            server = stack.enter_context(LocalPrometheus(tsdb, basic_auth=PROMETHEUS_USER))
            values["prometheus"] = server.url
        return _execute_all(root, values, env)


def _execute_all(root, values: dict[str, str], env: dict[str, str]) -> dict[str, Executed]:
    processes = {}
    for name, argv in RUNS.items():
        if name == "prometheus" and "prometheus" not in values:
            continue
        out = root / name
        command = [*WSANALYSIS, "canary", *(a.format(**values) for a in argv), "--out", str(out)]
        processes[name] = (
            out,
            subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    results = {}
    for name, (out, process) in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = Executed(out, process.returncode, stdout, stderr)
    return results


@pytest.fixture(scope="session")
def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    browser = Chromium(binary)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def opened(reports: dict[str, Executed], chromium: Chromium):
    """Each report's page as the browser saw it (opened once, screenshots kept)."""
    cache: dict[str, PageLoad] = {}

    def open_report(name: str) -> PageLoad:
        if name not in cache:
            shot = ARTIFACTS / f"report-{name}.png"
            cache[name] = chromium.open(reports[name].out / "report.html", shot)
        return cache[name]

    return open_report
