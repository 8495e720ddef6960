"""The canary notebook executed by papermill over several parameter sets on data/sample."""

from __future__ import annotations

import json
import re

import pytest
from report_support import HOSTILE, SECRET, Executed

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.report.html import SIZE_BUDGET
from wsanalysis.sources.dataset import Dataset


def _injected(executed: Executed) -> str:
    cells = [
        c
        for c in executed.notebook["cells"]
        if "injected-parameters" in c["metadata"].get("tags", [])
    ]
    assert len(cells) == 1
    return "".join(cells[0]["source"])


def _outputs(executed: Executed) -> list[dict]:
    return [o for c in executed.notebook["cells"] for o in c.get("outputs", [])]


def test_sample_is_no_go_on_reconnect_rate(reports):
    run = reports["sample"]
    assert run.exit_code == 1, run.stderr
    verdict = run.verdict
    assert verdict["verdict"] == "NO_GO"
    assert verdict["exit_code"] == 1
    decisions = {g["name"]: g["decision"] for g in verdict["gates"]}
    assert decisions["reconnect_rate"] == "fail"
    assert "NO_GO" in run.stdout


def test_verdict_matches_the_judge_on_the_same_data(reports, sample_dataset):
    """The notebook's verdict is the judge's: same sources, same gates, same numbers."""
    dataset = Dataset.open(sample_dataset)
    profile = load_gate_file().profile("canary")
    direct = judge(profile, JudgeInput(dataset.metrics(), dataset.rum().frame, None, 0.1))
    recorded = reports["sample"].verdict
    assert recorded["verdict"] == direct.overall
    for mine, theirs in zip(recorded["gates"], direct.to_json()["gates"], strict=True):
        assert mine["decision"] == theirs["decision"]
        assert mine["evidence"]["canary"] == theirs["evidence"]["canary"]


def test_verdict_carries_run_metadata(reports, sample_dataset):
    run = reports["sample"].verdict["run"]
    assert re.fullmatch(r"canary-\d{8}T\d{6}Z-[0-9a-f]{6}", run["run_id"])
    assert run["parameters"]["data"] == str(sample_dataset)
    assert run["parameters"]["canary_share"] == 0.1
    assert run["parameters"]["output_dir"] == str(reports["sample"].out)
    assert {"python", "wsanalysis", "polars", "plotly", "papermill"} <= set(run["versions"])
    fingerprints = reports["sample"].verdict["inputs"]["fingerprints"]
    assert fingerprints == Dataset.open(sample_dataset).fingerprints()
    assert reports["sample"].verdict["gate_file"]["sha256"]


def test_executed_notebook_records_injected_parameters_and_verdict(reports):
    executed = reports["sample"]
    injected = _injected(executed)
    assert "canary_share = 0.1" in injected
    assert "output_dir = " in injected
    texts = ["".join(o.get("data", {}).get("text/html", "")) for o in _outputs(executed)]
    banner = next(t for t in texts if 'class="banner' in t)
    assert "NO-GO" in banner
    assert "Reconnect rate" in banner
    assert executed.notebook["metadata"]["papermill"]["exception"] is None


def test_staging_profile_is_go(reports):
    run = reports["staging"]
    assert run.exit_code == 0, run.stderr
    assert run.verdict["verdict"] == "GO"
    assert all(g["decision"] == "pass" for g in run.verdict["gates"])
    assert "profile = " in _injected(run) and '"staging"' in _injected(run)


def test_yaml_params_narrow_the_window_in_sequential_mode(reports):
    """A YAML file (a datetime, a quoted string, YAML's `on`) sets a window that ends
    before the 10:00 restart, in sequential mode: reconnects no longer fail, and before
    the planned horizon the answer is "keep watching", never GO."""
    run = reports["narrow"]
    assert run.exit_code == 2, run.stderr
    verdict = run.verdict
    assert verdict["verdict"] == "INCONCLUSIVE" and "keep watching" in verdict["reason"]
    assert verdict["window"]["end"].startswith("2026-11-02T09:30")
    assert verdict["sequential"]["elapsed_hours"] == 3.5
    decisions = {g["name"]: g["decision"] for g in verdict["gates"]}
    assert decisions["reconnect_rate"] != "fail"
    parameters = verdict["run"]["parameters"]
    assert parameters["start"].startswith("2026-11-02T06:00:00")
    assert parameters["bucket"] == "15m" and parameters["sequential"] is True


def test_failed_cell_gives_exit_3_and_a_failed_banner(reports):
    run = reports["broken"]
    assert run.exit_code == 3
    verdict = run.verdict
    assert verdict["verdict"] is None
    assert verdict["failure"]["kind"] == "failed cell"
    assert "DataError" in verdict["failure"]["message"]
    page = run.html
    assert "REPORT FAILED" in page
    assert '<div class="word">GO</div>' not in page
    assert "REPORT FAILED" in run.stderr


def test_html_is_self_contained_and_within_budget(reports):
    for name in ("sample", "staging", "narrow"):
        page = reports[name].html
        assert len(page.encode()) <= SIZE_BUDGET
        assert page.count("Plotly.newPlot") == 1  # one loader
        assert page.count("plotly.js v") <= 1 and "plotly" in page.lower()
        assert not re.search(r"<script[^>]+src=", page)
        assert not re.search(r"<link[^>]+href=", page)
        assert "@import" not in page and "@font-face" not in page
        markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)  # plotly.js aside
        assert "require" not in markup and "MathJax" not in markup
        assert "http://" not in markup and "https://" not in markup
        assert page.count('class="plotly-figure"') == 6  # with the settle chart


def test_hostile_strings_are_escaped(reports):
    run = reports["hostile"]
    assert run.exit_code in (0, 1, 2), run.stderr
    page = run.html
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the RUM reason, as text
    # the label reached a chart legend, escaped, inside JSON that cannot close the tag
    assert "\\u0026lt;script\\u0026gt;alert(1)" in page


def test_secrets_from_the_environment_are_nowhere(reports):
    for executed in reports.values():
        for name in ("report.ipynb", "report.html", "verdict.json"):
            path = executed.out / name
            if path.exists():
                assert SECRET not in path.read_text(), f"{executed.out.name}/{name}"
        assert "WSANALYSIS_PROM" not in json.dumps(executed.verdict["run"]["parameters"])


def test_report_against_a_real_prometheus_with_credentials_from_the_environment(reports):
    """data/sample backfilled into a real Prometheus behind basic auth; the password
    comes from WSANALYSIS_PROM_PASSWORD only."""
    if "prometheus" not in reports:
        pytest.skip("prometheus/promtool not installed")
    run = reports["prometheus"]
    assert run.exit_code == 1, run.stderr
    verdict = run.verdict
    assert verdict["verdict"] == "NO_GO"
    assert verdict["inputs"]["prometheus"].startswith("http://127.0.0.1:")
    assert "rum.ndjson.gz" in verdict["inputs"]["fingerprints"]
    decisions = {g["name"]: g["decision"] for g in verdict["gates"]}
    assert decisions["reconnect_rate"] == "fail"
    sources = {g["name"]: g["evidence"]["source"] for g in verdict["gates"]}
    assert sources["error_rate"] == "prometheus"
