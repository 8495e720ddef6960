"""`wsanalysis prom up DATASET --engine victoriametrics`: a real VictoriaMetrics, months-old data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

from tests.prometheus.fixtures import REPO, SYNTHETIC_END, SYNTHETIC_START
from tests.pushdown.test_promql_pushdown import require_victoriametrics


def test_prom_up_serves_the_dataset_from_victoriametrics(synthetic_dataset):
    require_victoriametrics()
    command = [sys.executable, "-m", "wsanalysis.cli", "prom", "up", str(synthetic_dataset)]
    command += ["--engine", "victoriametrics"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stdout:
            if " is up at " in line:
                url = line.split(" is up at ")[1].strip()
                break
        assert url and url.startswith("http://127.0.0.1:")
        at = (SYNTHETIC_START.timestamp() + SYNTHETIC_END.timestamp()) / 2  # March 2024
        query = f"{url}/api/v1/query?query=count(ws_connections_active)&time={at}"
        with urllib.request.urlopen(query, timeout=10) as response:
            body = json.load(response)
        assert body["data"]["result"][0]["value"][1] == "2"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
