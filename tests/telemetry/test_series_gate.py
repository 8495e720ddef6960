"""`series` gates on any PromQL, on a real Prometheus: a CPU counter per pod, the canary at
×2 fails, at ×1 passes, read from a dataset folder (a local Prometheus behind it) and
from a server (one per case for the module); written with `{variant}` or grouped by the
variant label; judged by `judge-server`'s looks; exported."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.synthetic_series import CPU_METRIC, START, cpu_samples
from wsanalysis.cli import main
from wsanalysis.errors import UsageError
from wsanalysis.service.canary_looks import Judge
from wsanalysis.service.requests import parse_look
from wsanalysis.service.state import StateStore
from wsanalysis.sources.local_prometheus import prometheus_for_dataset
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.stats.series import compare_series

pytestmark = pytest.mark.prometheus

PLACEHOLDER = f'avg(rate({CPU_METRIC}{{container!="sidecar",{{variant}}}}[2m]))'
GROUPED = f"avg by (track) (rate({CPU_METRIC}[2m]))"
TELEMETRY = {"version": 1, "variants": {"label": "track", "values": {"control": "stable"}}}


def gate_file(folder: Path, promql: str) -> Path:
    gates = {
        "version": 1,
        "profiles": {
            "canary": {
                "gates": [
                    {
                        "name": "cpu_per_pod",
                        "title": "CPU per pod",
                        "statistic": "series",
                        "promql": promql,
                        "step": "1m",
                        "unit": "cores",
                        "compare": {"against": "control", "margin": 0.2},
                        "worse": "increase",
                        "tolerance": 1.5,
                        "critical": True,
                    }
                ]
            }
        },
    }
    path = folder / "gates.yaml"
    path.write_text(yaml.safe_dump(gates))
    return path


@pytest.fixture(scope="module")
def cpu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.skip("prometheus not installed: run `apt-get install prometheus`")
    root = tmp_path_factory.mktemp("cpu")
    folders = {}
    for name, factor in (("x2", 2.0), ("x1", 1.0)):
        folder = root / name
        folder.mkdir()
        write_openmetrics(cpu_samples(factor, seed=7), folder / "metrics.om", variant_label="track")
        folders[name] = folder
    (root / "telemetry.yaml").write_text(yaml.safe_dump(TELEMETRY))
    folders["telemetry"] = root / "telemetry.yaml"
    return folders


@pytest.fixture(scope="module")
def servers(cpu) -> Iterator[dict[str, str]]:
    """A Prometheus holding each case, for the server-side tests."""
    with prometheus_for_dataset(cpu["x2"]) as x2, prometheus_for_dataset(cpu["x1"]) as x1:
        yield {"x2": x2.url, "x1": x1.url}


def window(hours: float = 2) -> list[str]:
    return ["--start", str(START.timestamp()), "--end", str(START.timestamp() + hours * 3600)]


def verdict(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "verdict.json"
    code = main(["judge", *args, "--out", str(out)])
    document = json.loads(out.read_text())
    assert code == {"GO": 0, "NO_GO": 1, "INCONCLUSIVE": 2}[document["verdict"]]
    return document


def test_cpu_x2_fails_and_x1_passes_from_a_dataset_folder(cpu, tmp_path):
    gates = str(gate_file(tmp_path, PLACEHOLDER))
    for name, expected in (("x2", "NO_GO"), ("x1", "GO")):
        document = verdict(
            tmp_path, "--data", str(cpu[name]), "--gates", gates,
            "--telemetry", str(cpu["telemetry"]),
        )  # fmt: skip
        (gate,) = document["gates"]
        assert document["verdict"] == expected, gate["sentence"]
        effect = gate["evidence"]["effect"]
        assert effect == pytest.approx(2.0 if name == "x2" else 1.0, rel=0.2)
        assert gate["evidence"]["ci_low"] < effect < gate["evidence"]["ci_high"]
        assert gate["evidence"]["details"]["steps"] >= 100  # 2 h at 1 m


def test_grouped_by_the_variant_label_on_a_server(cpu, servers, tmp_path):
    gates = str(gate_file(tmp_path, GROUPED))
    for name, expected in (("x2", "NO_GO"), ("x1", "GO")):
        document = verdict(
            tmp_path, "--prometheus", servers[name], *window(), "--gates", gates,
            "--telemetry", str(cpu["telemetry"]),
        )  # fmt: skip
        (gate,) = document["gates"]
        assert document["verdict"] == expected, gate["sentence"]
        assert gate["evidence"]["effect"] == pytest.approx(2.0 if name == "x2" else 1.0, rel=0.2)


def test_from_a_server_with_selectors_and_sequential(servers, tmp_path):
    gates = str(gate_file(tmp_path, PLACEHOLDER))
    args = ["--prometheus", servers["x2"], *window(), "--canary-selector", 'track="canary"',
            "--control-selector", 'track="stable"', "--gates", gates]  # fmt: skip
    assert verdict(tmp_path, *args)["verdict"] == "NO_GO"
    sequential = verdict(tmp_path, *args, "--sequential", "--look", "5m", "--horizon", "2h")
    assert sequential["verdict"] == "NO_GO"


def test_judge_server_looks_judge_series_gates(servers, tmp_path):
    """Each look of `judge-server` asks the series through the same loader (the whole
    window at every look): the ×2 canary fails, on more steps at the later look."""
    gate_file(tmp_path, PLACEHOLDER)
    (tmp_path / "telemetry.yaml").write_text(yaml.safe_dump(TELEMETRY))
    fields = {"id": "cpu", "start": START.isoformat(), "gates": "gates.yaml",
              "telemetry": "telemetry.yaml", "look": "5m", "horizon": "2h"}  # fmt: skip
    judge_ = Judge(StateStore(tmp_path / "state.sqlite"), servers["x2"])
    answers = [
        judge_.look(parse_look(fields, now=START + timedelta(hours=h), files_root=tmp_path))
        for h in (1, 2)
    ]
    steps = [a.document["gates"][0]["evidence"]["details"]["steps"] for a in answers]
    assert steps[0] < steps[1], steps
    assert answers[1].verdict == "NO_GO", answers[1].document["gates"][0]["sentence"]


def test_a_grouped_query_with_selectors_is_refused_with_the_fix(servers, tmp_path, capsys):
    gates = str(gate_file(tmp_path, GROUPED))
    selectors = ["--canary-selector", 'track="canary"', "--control-selector", 'track="stable"']
    args = ["--prometheus", servers["x1"], *window(1), *selectors, "--gates", gates]
    assert main(["judge", *args, "--out", str(tmp_path / "v.json")]) == 3
    err = capsys.readouterr().err
    assert "groups by a variant label, and the variants are picked by selectors" in err
    assert "{variant}" in err


def test_series_gates_are_exported_with_their_own_promql(cpu, tmp_path):
    gates = str(gate_file(tmp_path, PLACEHOLDER))
    out = tmp_path / "rules.yml"
    code = main(["export", "rules", "--gates", gates, "--telemetry", str(cpu["telemetry"]),
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    check = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    alerts = {r["alert"]: r for r in yaml.safe_load(out.read_text())["groups"][1]["rules"]}
    expr = alerts["WsanalysisGateCanaryCpuPerPod"]["expr"]
    assert f'{CPU_METRIC}{{container!="sidecar",track="canary"}}' in expr
    assert f'{CPU_METRIC}{{container!="sidecar",track="stable"}}' in expr
    assert "1.2 * (" in expr  # the canary beyond control's limit (margin 20%)


def test_a_series_gate_needs_its_promql_and_control(tmp_path: Path):
    base = {"name": "cpu", "statistic": "series", "worse": "increase", "tolerance": 1.5,
            "compare": {"against": "control", "margin": 0.2}}  # fmt: skip
    for change, message in (
        ({"promql": None}, "is required for a series gate"),
        ({"promql": "x", "compare": {"against": "bound", "bound": 1.0}}, "against control"),
        ({"promql": "x", "step": "0s"}, "positive duration"),
        ({"promql": "sum(rate(x[5m])"}, "does not parse"),
    ):
        gate = {k: v for k, v in (base | change).items() if v is not None}
        document = {"version": 1, "profiles": {"canary": {"gates": [gate]}}}
        path = tmp_path / "gates.yaml"
        path.write_text(yaml.safe_dump(document))
        with pytest.raises(UsageError, match=message):
            load_gate_file(path)


def test_the_statistic_on_known_values():
    rng = np.random.default_rng(3)
    control = 1.0 + rng.normal(0, 0.05, 120)
    canary = 2.0 + rng.normal(0, 0.1, 120)
    ratio = compare_series(canary, control)
    assert ratio.statistic == pytest.approx(canary.mean() / control.mean())
    assert ratio.ci.low < ratio.statistic < ratio.ci.high and ratio.sufficient
    assert ratio.ci.high / ratio.ci.low < 1.05  # 120 steps of 5% noise: a narrow interval
    difference = compare_series(canary, control, effect="difference")
    assert difference.statistic == pytest.approx(canary.mean() - control.mean())
    assert not compare_series(canary[:5], control[:5]).sufficient
