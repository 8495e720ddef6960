"""A verdict on leniently read metrics says so: what a pipeline reads in verdict.json.

The bundled sample with one broken counter line and one stray comment: strict reading is
an error (exit 3, no verdict); `--lenient` drops the two lines, counts them per file and
rule under `inputs.dropped_lines`, says so in the reason, and leaves undecided the gate
that reads the broken series, so a GO on incomplete data becomes INCONCLUSIVE.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from wsanalysis.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def broken_sample(tmp_path: Path) -> Path:
    """data/sample with a negative counter total (ws_closes_total) and a stray comment."""
    folder = tmp_path / "sample"
    shutil.copytree(REPO / "data" / "sample", folder)
    lines = (folder / "metrics.om").read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("ws_closes_total{"))
    series, _, stamp = lines[at].split(" ")
    lines[at] = f"{series} -1 {stamp}"
    lines.insert(1, "# a comment")
    (folder / "metrics.om").write_text("\n".join(lines))
    return folder


def _judge(folder: Path, out: Path, *extra: str) -> tuple[int, dict]:
    code = main(["judge", "--data", str(folder), "--profile", "staging", "--out", str(out), *extra])
    return code, json.loads(out.read_text()) if out.exists() else {}


def test_strict_reading_of_a_broken_file_is_no_verdict(broken_sample: Path, tmp_path: Path):
    code, document = _judge(broken_sample, tmp_path / "v.json")
    assert code == 3 and document == {}


def test_a_lenient_verdict_counts_the_dropped_lines_and_decides_nothing_on_them(
    broken_sample: Path, tmp_path: Path
):
    code, clean = _judge(REPO / "data" / "sample", tmp_path / "clean.json")
    assert code == 0 and clean["verdict"] == "GO"
    assert clean["inputs"]["lenient"] is False and clean["inputs"]["dropped_lines"] == {}

    code, document = _judge(broken_sample, tmp_path / "v.json", "--lenient")
    inputs = document["inputs"]
    assert inputs["lenient"] is True
    assert inputs["dropped_lines"] == {"metrics.om": {"comment": 1, "counter-value": 1}}
    assert "Read leniently: 2 lines of metrics.om" in document["reason"]
    decisions = {g["name"]: g["decision"] for g in document["gates"]}
    before = {g["name"]: g["decision"] for g in clean["gates"]}
    # the gate reading ws_closes_total passed on clean data; on data with a line of that
    # series dropped it is not decided; the gates on other data keep their decisions
    assert before["auth_spike_after_login"] == "pass"
    assert decisions["auth_spike_after_login"] == "inconclusive"
    assert {k: v for k, v in decisions.items() if k != "auth_spike_after_login"} == {
        k: v for k, v in before.items() if k != "auth_spike_after_login"
    }
    assert document["verdict"] == "INCONCLUSIVE" and code == 2
    assert "ws_closes_total" in document["source_warnings"]


def test_a_kayenta_score_on_dropped_lines_is_no_go_ahead(broken_sample: Path, tmp_path: Path):
    code, clean = _judge(REPO / "data" / "sample", tmp_path / "clean.json", "--judge", "kayenta")
    assert clean["verdict"] == "GO"
    code, document = _judge(broken_sample, tmp_path / "v.json", "--judge", "kayenta", "--lenient")
    assert document["verdict"] == "INCONCLUSIVE" and code == 2
    assert "Read leniently" in document["reason"]


def test_summary_prints_the_dropped_counts_by_rule(
    broken_sample: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["summary", "--data", str(broken_sample)]) == 3
    assert "[rule comment]" in capsys.readouterr().err
    assert main(["summary", "--data", str(broken_sample), "--lenient"]) == 0
    out = capsys.readouterr().out
    assert "2 lines dropped" in out
    assert "1 × counter-value" in out and "1 × comment" in out
