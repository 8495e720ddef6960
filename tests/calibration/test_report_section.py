"""The canary report's calibration section: read from a calibration.json path, checked
before any kernel starts, every string escaped, and a sentence where the calibration does
not fit the canary being judged."""

from __future__ import annotations

import copy
import json

import pytest

import wsanalysis
from wsanalysis.calibration.reading import load_calibration
from wsanalysis.cli import main
from wsanalysis.errors import DataError
from wsanalysis.report.calibration import NO_CALIBRATION, calibration_html
from wsanalysis.report.html import escape

from .conftest import DATA


@pytest.fixture(scope="module")
def bad_pod(calibrated, tmp_path_factory):
    """one_bad_pod's calibration file and its canary's verdict (as the report judges it)."""
    code, document = calibrated("one_bad_pod")
    assert code == 0
    path = tmp_path_factory.mktemp("section") / "calibration.json"
    path.write_text(json.dumps(document))
    verdict = wsanalysis.judge(str(DATA / "one_bad_pod"), canary_share=0.1, frames=True)
    return path, document, verdict


def test_the_section_shows_the_sentences_and_the_table(bad_pod) -> None:
    path, document, verdict = bad_pod
    html = calibration_html(str(path), verdict)
    for sentence in document["sentences"]:
        assert escape(sentence) in html
    assert "<table" in html and "healthy canary passes in" in html
    # same profile, gate file and share; only the length differs (1 h windows, a 4 h canary)
    assert html.count("Does not fit") == 1 and "canaries of 1 h; this one ran 4 h" in html
    assert calibration_html(None, verdict) == f"<p>{escape(NO_CALIBRATION)}</p>"


def test_a_calibration_of_another_setting_says_so(bad_pod, tmp_path) -> None:
    path, document, verdict = bad_pod
    other = copy.deepcopy(document)
    other["settings"] |= {
        "profile": "staging", "canary_share": 0.25, "window_s": 600.0,
        "gate_file": "/elsewhere/gates.yaml", "gate_file_sha256": "0" * 64,
    }  # fmt: skip
    moved = tmp_path / "other.json"
    moved.write_text(json.dumps(other))
    html = calibration_html(str(moved), verdict)
    assert html.count("Does not fit") == 4
    assert "profile staging, the verdict of canary" in html
    assert "another gate file (/elsewhere/gates.yaml)" in html
    assert "share of 25%; this canary declared 10%" in html
    assert "canaries of 10 min; this one ran 4 h" in html


def test_hostile_strings_in_a_calibration_are_escaped(bad_pod, tmp_path) -> None:
    path, document, verdict = bad_pod
    hostile = copy.deepcopy(document)
    hostile["notes"] = ['<script>alert("note")</script>']
    hostile["sentences"] = [*hostile["sentences"], '<img src=x onerror="alert(1)">']
    gates = hostile["gates"]
    gates['<b onmouseover="x">gate</b>'] = gates.pop("error_rate")
    moved = tmp_path / "hostile.json"
    moved.write_text(json.dumps(hostile))
    html = calibration_html(str(moved), verdict)
    assert "<script>" not in html and "<img" not in html and "<b " not in html
    assert "&lt;img src=x" in html and "&lt;b onmouseover" in html


def test_a_file_that_is_not_a_calibration_is_a_data_error(tmp_path) -> None:
    verdict = tmp_path / "verdict.json"
    verdict.write_text(json.dumps({"verdict": "GO"}))
    with pytest.raises(DataError, match="is not a calibration"):
        load_calibration(verdict)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(DataError, match="cannot read the calibration"):
        load_calibration(broken)


def test_the_report_refuses_a_bad_calibration_before_any_kernel(tmp_path, capsys) -> None:
    verdict = tmp_path / "verdict.json"
    verdict.write_text(json.dumps({"verdict": "GO"}))
    for value, said in [
        (verdict, "is not a calibration"),
        (tmp_path / "no.json", "does not exist"),
    ]:
        out = tmp_path / "report"
        code = main(
            ["canary", "--param", f"data={DATA / 'one_bad_pod'}",
             "--param", f"calibration={value}", "--out", str(out)]
        )  # fmt: skip
        assert code == 3 and said in capsys.readouterr().err
        assert not (out / "report.html").exists()


def test_the_canary_report_shows_the_calibration(bad_pod, tmp_path) -> None:
    path, document, _ = bad_pod
    out = tmp_path / "report"
    code = main(
        ["canary", "--param", f"data={DATA / 'one_bad_pod'}", "--param", "canary_share=0.1",
         "--param", f"calibration={path}", "--out", str(out)]
    )  # fmt: skip
    assert code == 0  # the canary itself is GO: the bad pod is in control
    page = (out / "report.html").read_text()
    assert "Calibration on your own history" in page
    assert escape("control-3 is not like the others") in page
    assert escape(document["sentences"][0]) in page
