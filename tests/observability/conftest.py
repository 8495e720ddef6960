"""A real Prometheus over data/sample with the generated recording rules backfilled.

The sample's metrics are backfilled with `wsanalysis.sources.local_prometheus.backfill`;
a first prometheus serves them while `promtool tsdb create-blocks-from rules` evaluates
the generated recording rules over the whole window; its blocks join the TSDB and a
second prometheus serves both, so every dashboard query (which reads recorded series)
can be evaluated as Grafana would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from wsanalysis.canary.gates import GateFile, load_gate_file
from wsanalysis.observability.dashboard import build_dashboard
from wsanalysis.observability.rules import render_rules
from wsanalysis.sources.local_prometheus import INSTALL_COMMAND, LocalPrometheus, backfill

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the tests import promtool_cases, whatever pytest's import mode
    sys.path.insert(0, str(HERE))
REPO = HERE.parents[1]
SAMPLE = REPO / "data" / "sample"
WINDOW_START = "2026-11-02T06:00:00Z"
WINDOW_END = "2026-11-02T12:00:00Z"
QUERY_TIME = "2026-11-02T11:00:00Z"  # inside the sample's window, after every 1h warm-up


def require_tools() -> None:
    missing = [name for name in ("prometheus", "promtool") if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: run `{INSTALL_COMMAND}`")


@pytest.fixture(scope="session")
def promtool() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `promtool ARGS...` (the test skips when it is not installed)."""
    require_tools()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["promtool", *args], capture_output=True, text=True, check=False, timeout=120
        )

    return run


@pytest.fixture(scope="session")
def gate_file() -> GateFile:
    return load_gate_file()


@pytest.fixture(scope="session")
def rules_path(gate_file: GateFile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "websocket.rules.yml"
    path.write_text(render_rules(gate_file))
    return path


@pytest.fixture(scope="session")
def dashboard(gate_file: GateFile) -> dict[str, Any]:
    return build_dashboard(gate_file)


class Queries:
    """Instant queries against a running prometheus, at a fixed time in the data."""

    def __init__(self, url: str) -> None:
        self.url = url

    def instant(self, expr: str, at: str = QUERY_TIME) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.url}/api/v1/query", params={"query": expr, "time": at}, timeout=30
        )
        body = response.json()
        assert body.get("status") == "success", f"prometheus rejected {expr!r}: {body}"
        return body["data"]["result"]

    def range(
        self, expr: str, start: str = WINDOW_START, end: str = WINDOW_END, step: int = 60
    ) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.url}/api/v1/query_range",
            params={"query": expr, "start": start, "end": end, "step": step},
            timeout=60,
        )
        body = response.json()
        assert body.get("status") == "success", f"prometheus rejected {expr!r}: {body}"
        return body["data"]["result"]


@pytest.fixture(scope="session")
def sample_with_rules(
    rules_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Queries]:
    require_tools()
    tsdb = tmp_path_factory.mktemp("observability-tsdb")
    backfill(SAMPLE, tsdb, replace=True)
    recorded = tmp_path_factory.mktemp("recorded-blocks")
    with LocalPrometheus(tsdb) as prometheus:
        done = subprocess.run(
            [
                "promtool", "tsdb", "create-blocks-from", "rules",
                f"--start={WINDOW_START}", f"--end={WINDOW_END}",
                f"--url={prometheus.url}", f"--output-dir={recorded}",
                "--eval-interval=60s", str(rules_path),
            ],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
    assert done.returncode == 0, f"promtool could not backfill the rules: {done.stderr}"
    blocks = [block for block in recorded.iterdir() if (block / "meta.json").is_file()]
    assert blocks, f"promtool wrote no blocks of recorded series: {done.stderr[-2000:]}"
    for block in blocks:
        shutil.move(str(block), tsdb / block.name)
    with LocalPrometheus(tsdb) as prometheus:
        yield Queries(prometheus.url)
