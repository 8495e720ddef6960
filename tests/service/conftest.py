"""A real Prometheus holding two labelled datasets side by side, and a real judge-server.

`aa_baseline` (expected GO) and `error_rate_x2` (expected NO_GO) cover the same 12 h;
each series gets a `dataset` label so one server holds both and a canary is picked by
selectors, as a rollout picks its pods by their template hash.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import requests

from tests.prometheus.fixtures import require_prometheus
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill, free_port
from wsanalysis.sources.openmetrics import write_openmetrics

REPO = Path(__file__).resolve().parents[2]
DATASETS = {"aa": "aa_baseline", "x2": "error_rate_x2"}
TOKEN = "test-judge-token-0123456789abcdef"


@pytest.fixture(scope="session")
def two_datasets_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    require_prometheus()
    folder = tmp_path_factory.mktemp("two-datasets")
    frames = [
        Dataset.open(REPO / "data" / name).metrics().with_columns(dataset=pl.lit(key))
        for key, name in DATASETS.items()
    ]
    write_openmetrics(pl.concat(frames, how="diagonal_relaxed"), folder / "metrics.om")
    tsdb = tmp_path_factory.mktemp("two-datasets-tsdb")
    backfill(folder, tsdb, replace=True)
    with LocalPrometheus(tsdb) as prometheus:
        yield prometheus


BUNDLED = sorted(p.name for p in (REPO / "data").iterdir() if (p / "metrics.om.gz").exists()
                 or (p / "metrics.om").exists())  # fmt: skip


@pytest.fixture(scope="session")
def bundled_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """Every bundled dataset in one real Prometheus, told apart by a `dataset` label."""
    require_prometheus()
    folder = tmp_path_factory.mktemp("bundled")
    frames = [
        Dataset.open(REPO / "data" / name).metrics().with_columns(dataset=pl.lit(name))
        for name in BUNDLED
    ]
    write_openmetrics(pl.concat(frames, how="diagonal_relaxed"), folder / "metrics.om")
    tsdb = tmp_path_factory.mktemp("bundled-tsdb")
    backfill(folder, tsdb, replace=True)
    with LocalPrometheus(tsdb) as prometheus:
        yield prometheus


@dataclass
class JudgeServer:
    """`wsanalysis judge-server` in its own process; `restart()` keeps the state file."""

    prometheus: str
    state: Path
    token: str | None = TOKEN
    process: subprocess.Popen | None = None
    port: int = 0
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> JudgeServer:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WSANALYSIS_")}
        args = [sys.executable, "-m", "wsanalysis.cli", "judge-server", "--prometheus",
                self.prometheus, "--port", str(self.port), "--state", str(self.state)]  # fmt: skip
        if self.token is None:
            args.append("--no-auth")
        else:
            env["WSANALYSIS_JUDGE_TOKEN"] = self.token
        self.log = self.state.with_suffix(f".{self.port}.log")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"judge-server exited: {self.log.read_text()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"judge-server did not answer: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def post(self, path: str, body: dict, *, token: str | None = TOKEN) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{self.url}{path}", json=body, headers=headers, timeout=60)


@pytest.fixture
def judge_server(two_datasets_prometheus: LocalPrometheus, tmp_path: Path) -> Iterator[JudgeServer]:
    server = JudgeServer(two_datasets_prometheus.url, tmp_path / "state.sqlite").start()
    yield server
    server.stop()
