"""The README's pipeline command, exactly as written, on a real Prometheus and a real
VictoriaMetrics: the push-down with variant selectors (it used to crash with
`ComputeError ... group_by ... over([])`), and selector values outside ASCII (`canäry`)
reaching the server intact."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest

from wsanalysis.cli import main
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.local_prometheus import prometheus_for_dataset
from wsanalysis.sources.local_victoriametrics import victoriametrics_for_dataset
from wsanalysis.sources.openmetrics import write_openmetrics

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"


def readme_command() -> str:
    """The README's CLI example, the code block that runs `wsanalysis judge`."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    return next(b for b in blocks if b.startswith("wsanalysis judge --prometheus"))


def _tracked(folder: Path, canary: str) -> tuple[Path, int, int]:
    """data/sample's metrics with the variant in a `track` label (canary: `canary`'s
    value, control: stable), as the README's selectors expect; and its window (epoch s)."""
    frame = Dataset.open(SAMPLE).metrics()
    frame = frame.with_columns(pl.col("variant").replace({"canary": canary, "control": "stable"}))
    folder.mkdir(parents=True, exist_ok=True)
    write_openmetrics(frame, folder / "metrics.om", variant_label="track")
    start, end = frame["timestamp"].min(), frame["timestamp"].max()
    return folder, int(start.timestamp()), int(end.timestamp())


@contextmanager
def serving(engine: str, folder: Path) -> Iterator[str]:
    binary = "prometheus" if engine == "prometheus" else "victoria-metrics"
    if shutil.which(binary) is None or shutil.which("promtool") is None:
        pytest.skip(f"{binary} not installed: run `apt-get install prometheus victoria-metrics`")
    serve = prometheus_for_dataset if engine == "prometheus" else victoriametrics_for_dataset
    with serve(folder) as server:
        yield server.url


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    return _tracked(tmp_path_factory.mktemp("tracked"), "canary")


def _expected(folder: Path, canary: str, tmp: Path) -> dict:
    """The same judge on the folder itself (no server): what the server must agree with."""
    out = tmp / "files.json"
    args = ["--canary-selector", f'track="{canary}"', "--control-selector", 'track="stable"']
    main(["judge", "--data", str(folder), *args, "--canary-share", "0.1", "--out", str(out)])
    return json.loads(out.read_text())


@pytest.mark.parametrize("engine", ["prometheus", "victoriametrics"])
def test_the_readme_command_as_written(engine: str, tracked, tmp_path: Path):
    folder, start, end = tracked
    expected = _expected(folder, "canary", tmp_path)
    # the block runs unchanged: `date` answers the data's end, the branches say their name
    script = (
        f"date() {{ echo {end}; }}\n"
        "promote() { echo promote; }\nroll_back() { echo roll_back; }\n"
        "wait_and_ask_again() { echo wait_and_ask_again; }\n"
        "page_someone() { echo page_someone; }\n" + readme_command()
    )
    with serving(engine, folder) as url:
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "WSANALYSIS_PROM_URL": url,
            "CANARY_START": str(start),
        }
        run = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
        )
    assert "internal error" not in run.stderr, run.stderr
    branch = run.stdout.strip().splitlines()[-1]
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert (
        branch
        == {"GO": "promote", "NO_GO": "roll_back", "INCONCLUSIVE": "wait_and_ask_again"}[
            verdict["verdict"]
        ]
    )
    assert verdict["verdict"] == expected["verdict"]
    decisions = [(g["name"], g["decision"]) for g in verdict["gates"]]
    assert decisions == [(g["name"], g["decision"]) for g in expected["gates"]]
    assert verdict["srm"] == expected["srm"]  # the split, checked on the same connections


@pytest.mark.parametrize("engine", ["prometheus", "victoriametrics"])
def test_a_selector_value_outside_ascii_reaches_the_server(engine: str, tracked, tmp_path: Path):
    folder, start, end = _tracked(tmp_path / "umlaut", "canäry")
    expected = _expected(tracked[0], "canary", tmp_path)  # the same data, spelled in ASCII
    with serving(engine, folder) as url:
        args = ["--canary-selector", 'track="canäry"', "--control-selector", 'track="stable"']
        out = tmp_path / "server.json"
        code = main(
            ["judge", "--prometheus", url, "--start", str(start), "--end", str(end), *args,
             "--canary-share", "0.1", "--out", str(out)]
        )  # fmt: skip
    assert code in (0, 1, 2)  # canÃ¤ry would match no series: exit 3
    verdict = json.loads(out.read_text())
    assert verdict["inputs"]["selectors"]["canary"] == 'track="canäry"'
    assert [(g["name"], g["decision"]) for g in verdict["gates"]] == [
        (g["name"], g["decision"]) for g in expected["gates"]
    ]
