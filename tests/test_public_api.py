"""The public face: `wsanalysis.judge` and `wsanalysis.incident`, the result types, a
curated `__all__`, and an `import wsanalysis` that loads nothing it does not need."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import wsanalysis
from wsanalysis.cli import main
from wsanalysis.errors import UsageError

REPO = Path(__file__).resolve().parents[1]
X2 = REPO / "data" / "error_rate_x2"


def test_judge_in_one_call_says_what_the_cli_says(tmp_path: Path):
    verdict = wsanalysis.judge(data=str(X2), canary_share=0.1)
    assert verdict.overall == "NO_GO"
    assert isinstance(verdict, wsanalysis.Verdict)
    assert all(isinstance(g, wsanalysis.GateResult) for g in verdict.gates)
    out = tmp_path / "verdict.json"
    assert main(["judge", "--data", str(X2), "--canary-share", "0.1", "--out", str(out)]) == 1
    written = json.loads(out.read_text())
    document = json.loads(json.dumps(verdict.to_json(), default=str))
    assert {k: v for k, v in written.items() if k != "run"} == document


def test_a_dataset_or_a_source_judges_the_same():
    by_path = wsanalysis.judge(data=str(X2), canary_share=0.1, sequential=True)
    by_dataset = wsanalysis.judge(wsanalysis.Dataset.open(X2), canary_share=0.1, sequential=True)
    source = wsanalysis.DataSource.of(data=X2)
    by_source = wsanalysis.judge(source, canary_share=0.1, sequential=True)
    assert by_path.to_json() == by_dataset.to_json() == by_source.to_json()


def test_incident_in_one_call():
    analysis = wsanalysis.incident(data=str(REPO / "data" / "network_outage"))
    assert isinstance(analysis, wsanalysis.Analysis)
    assert any(f.kind == "network_outage" for f in analysis.findings)
    assert all(isinstance(e, wsanalysis.Episode) for e in analysis.episodes)


def test_mistakes_say_what_to_do():
    with pytest.raises(UsageError) as caught:
        wsanalysis.judge(data=str(X2), prometheus="http://127.0.0.1:9")
    assert "exactly one data source" in caught.value.problem
    with pytest.raises(UsageError):
        wsanalysis.judge(data=str(X2), profile="nonsense")


def test_the_face_is_small_and_every_name_resolves():
    assert sorted(dir(wsanalysis)) == sorted(wsanalysis.__all__)
    for name in wsanalysis.__all__:
        assert getattr(wsanalysis, name) is not None
    with pytest.raises(AttributeError):
        wsanalysis.load_judge_input  # noqa: B018 - behind the face, not on it


def test_importing_the_package_loads_no_analysis():
    code = "import sys, wsanalysis; print(sorted(m for m in sys.modules if m.startswith(('wsanalysis.', 'polars', 'scipy'))))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "['wsanalysis.version']"
