"""The incident notebook executed by papermill on bundled datasets, and its page in Chromium.

Every run is one `wsanalysis report incident` process, all started at once (kernel
start-ups are slow) and shared by the tests of this module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime

import pytest
from report_support import (
    ARTIFACTS,
    HOSTILE,
    PHONE_WIDTH,
    REPO,
    WSANALYSIS,
    Executed,
    hostile_dataset,
)

from wsanalysis.cli import main
from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.findings import dumps
from wsanalysis.incident.inputs import load_dataset
from wsanalysis.report.incident import FINDINGS_FILE, headline, investigate, severity_counts

OUTAGE = REPO / "data" / "network_outage"
BASELINE = REPO / "data" / "aa_baseline"
NARROW = ("2026-11-02T08:30:00Z", "2026-11-02T10:00:00Z")
SAMPLE_RUM = REPO / "data" / "sample" / "rum.ndjson.gz"
SAMPLE_WINDOW = ("2026-11-02T06:00:00Z", "2026-11-02T12:00:00Z")
RUNS: dict[str, list[str]] = {
    "outage": ["--param", f"data={OUTAGE}"],
    "baseline": ["--param", f"data={BASELINE}", "--param", "bucket=15m"],
    "narrow": [
        "--param",
        f"data={OUTAGE}",
        "--param",
        f"start={NARROW[0]}",
        "--param",
        f"end={NARROW[1]}",
    ],  # fmt: skip
    "hostile": ["--param", "data={hostile}"],
    "empty_window": [
        "--param",
        f"data={OUTAGE}",
        "--param",
        "start=2030-01-01T00:00:00Z",
        "--param",
        "end=2030-01-01T01:00:00Z",
    ],  # fmt: skip
    "bad_share": ["--param", f"data={OUTAGE}", "--param", "rum_sample=2"],
    "bad_window": [
        "--param",
        f"data={OUTAGE}",
        "--param",
        f"start={NARROW[1]}",
        "--param",
        f"end={NARROW[0]}",
    ],  # fmt: skip
    "unknown": ["--param", f"data={OUTAGE}", "--param", "gates=x.yaml"],
    "both_sources": ["--param", f"data={OUTAGE}", "--param", "prometheus=http://127.0.0.1:9"],
    # run only where the prometheus binaries are (always under `make test`)
    "prometheus": [
        "--param",
        "prometheus={prometheus}",
        "--param",
        f"start={SAMPLE_WINDOW[0]}",
        "--param",
        f"end={SAMPLE_WINDOW[1]}",
        "--param",
        f"rum={SAMPLE_RUM}",
    ],  # fmt: skip
}


class Incident(Executed):
    @property
    def findings(self) -> dict:
        return json.loads((self.out / FINDINGS_FILE).read_text())


@pytest.fixture(scope="module")
def incidents(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[str, Incident]:
    root = tmp_path_factory.mktemp("incidents")
    values = {"hostile": hostile_dataset(root / "hostile-dataset")}
    if shutil.which("prometheus") and shutil.which("promtool"):
        values["prometheus"] = request.getfixturevalue("sample_prometheus").url
    processes = {}
    for name, argv in RUNS.items():
        if name == "prometheus" and "prometheus" not in values:
            continue
        out = root / name
        command = [*WSANALYSIS, "report", "incident",
                   *(a.format(**values) for a in argv), "--out", str(out)]  # fmt: skip
        processes[name] = (out, subprocess.Popen(command, cwd=REPO, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE))  # fmt: skip
    results = {}
    for name, (out, process) in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = Incident(out, process.returncode, stdout, stderr)
    return results


def _outputs_html(run: Executed) -> list[str]:
    return [
        "".join(o.get("data", {}).get("text/html", ""))
        for c in run.notebook["cells"]
        for o in c.get("outputs", [])
    ]


def test_outage_findings_are_what_the_incident_command_finds(incidents):
    run = incidents["outage"]
    assert run.exit_code == 0, run.stderr
    recorded = run.findings
    data = load_dataset(OUTAGE)
    result = analyze(data)
    direct = json.loads(dumps(result.findings, result.not_run, {}))
    assert recorded["findings"] == direct["findings"]
    assert recorded["not_run"] == direct["not_run"]
    assert recorded["rum_sample"] == data.rum_sample == 0.2
    assert recorded["inputs"]["fingerprints"] == data.origin["fingerprints"]
    outage = [f for f in recorded["findings"] if f["kind"] == "network_outage"]
    assert {f["variant"] for f in outage} == {"canary", "control"}  # both lost the network
    assert all(f["start"].startswith("2026-11-02T09:0") for f in outage)  # injected at 09:00


def test_report_from_prometheus_finds_what_the_incident_command_finds(
    incidents, sample_prometheus, tmp_path
):
    # the report's Prometheus path (server series from a real prometheus, RUM from a file)
    # against `wsanalysis incident` on the same inputs
    run = incidents["prometheus"]
    assert run.exit_code == 0, run.stderr
    out = tmp_path / "findings.json"
    assert main([
        "incident", "--prometheus", sample_prometheus.url, "--start", SAMPLE_WINDOW[0],
        "--end", SAMPLE_WINDOW[1], "--rum", str(SAMPLE_RUM), "--out", str(out),
    ]) == 0  # fmt: skip
    direct = json.loads(out.read_text())
    recorded = run.findings
    assert recorded["findings"] == direct["findings"]
    assert recorded["not_run"] == direct["not_run"]
    assert recorded["inputs"]["prometheus"] == sample_prometheus.url
    assert "server_restart" in {f["kind"] for f in recorded["findings"]}
    assert recorded["window"]["start"].startswith("2026-11-02T06:00:00")
    assert recorded["verdict"] in run.html


def test_report_run_is_quiet_about_the_kernel_transport(incidents):
    """The kernel listens on Unix sockets (report.execute), so ipykernel has no
    "running over TCP without encryption" to warn about; other warnings stay visible."""
    run = incidents["outage"]
    assert run.exit_code == 0, run.stderr
    assert "without encryption" not in run.stderr
    assert "WARNING" not in run.stderr.upper(), run.stderr


def test_outage_document_has_banner_counts_and_run_metadata(incidents):
    run = incidents["outage"]
    document = run.findings
    counts = document["severity_counts"]
    assert sum(counts.values()) == len(document["findings"]) > 0
    assert document["verdict"] == "1 EPISODE"  # the 09:00 outage, on both variants
    assert document["reason"].startswith("1 high, 0 medium, 0 low")
    (episode,) = document["episodes"]
    assert episode["scope"] == "fleet"
    assert "not the release" in episode["sentence"]
    assert document["reason"].endswith(episode["sentence"])
    assert len(episode["findings"]) == len(document["findings"])
    assert document["exit_code"] == 0
    assert document["run"]["report"] == "incident"
    assert document["run"]["parameters"]["data"] == str(OUTAGE)
    assert document["run"]["parameters"]["output_dir"] == str(run.out)
    assert document["verdict"] in run.stdout
    assert document["banner_class"] == ("nogo" if counts["high"] else "inconclusive")
    assert f'class="banner {document["banner_class"]}"' in (run.out / "report.html").read_text()


def test_executed_notebook_records_parameters_banner_and_tables(incidents):
    run = incidents["outage"]
    notebook = run.notebook
    assert notebook["metadata"]["papermill"]["exception"] is None
    injected = next(
        c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    )
    assert f"data = {json.dumps(str(OUTAGE))}" in "".join(injected["source"])
    texts = _outputs_html(run)
    banner = next(t for t in texts if 'class="banner' in t)
    assert run.findings["verdict"] in banner
    assert any('<td data-label="kind">network_outage</td>' in t for t in texts)  # findings
    assert any('<td data-label="detector">herd</td>' in t for t in texts)  # not run


def test_baseline_has_no_serious_finding(incidents):
    run = incidents["baseline"]
    assert run.exit_code == 0, run.stderr
    document = run.findings
    assert document["severity_counts"]["high"] == 0
    assert document["severity_counts"]["medium"] == 0
    assert not {f["kind"] for f in document["findings"]} & {"network_outage", "reconnect_storm"}
    assert document["banner_class"] in ("go", "inconclusive")  # never the red of a high


def test_narrowed_window_is_the_one_analysed(incidents):
    run = incidents["narrow"]
    assert run.exit_code == 0, run.stderr
    window = run.findings["window"]
    assert window["start"].startswith("2026-11-02T08:30:00")
    assert window["end"].startswith("2026-11-02T10:00:00")
    start, end = (datetime.fromisoformat(window[k]) for k in ("start", "end"))
    for finding in run.findings["findings"]:
        assert datetime.fromisoformat(finding["end"]) >= start
        assert datetime.fromisoformat(finding["start"]) <= end
    assert any(f["kind"] == "network_outage" for f in run.findings["findings"])


@pytest.mark.parametrize(
    ("name", "culprit"),
    [
        ("bad_share", "'rum_sample'"),
        ("bad_window", "'end'"),
        ("unknown", "'gates'"),
        ("both_sources", "data, prometheus"),
    ],
)
def test_bad_parameters_exit_3_naming_the_parameter(incidents, name, culprit):
    run = incidents[name]
    assert run.exit_code == 3
    assert culprit in run.stderr
    assert not (run.out / FINDINGS_FILE).exists()  # refused before anything ran


def test_window_without_data_fails_visibly(incidents):
    run = incidents["empty_window"]
    assert run.exit_code == 3
    document = run.findings
    assert document["verdict"] is None
    assert "DataError" in document["failure"]["message"]
    assert "REPORT FAILED" in run.html


def test_headline_counts_episodes_and_names_the_first():
    report = investigate(data=str(OUTAGE))
    word, reason = headline(report.episodes)
    counts = severity_counts(report.findings)
    assert word == "1 EPISODE"
    high = [f for f in report.findings if f.severity == "high"]
    assert counts["high"] == len(high)
    assert f"({len(report.findings)} findings)" in reason
    assert report.episodes[0].sentence in reason
    assert headline([]) == ("NO FINDINGS", "No detector found an incident in this window.")


def test_headline_puts_canary_only_above_fleet_wide_of_equal_severity():
    report = investigate(data=str(OUTAGE))
    (fleet,) = report.episodes
    canary = replace(fleet, scope="canary", sentence="canary only", start=fleet.end)
    for order in ([fleet, canary], [canary, fleet]):
        assert headline(order)[1].endswith("First (high, canary): canary only")
    quieter = replace(canary, severity="medium")
    assert headline([quieter, fleet])[1].endswith(fleet.sentence)


# -- the page, in headless Chromium with networking closed ------------------------------------


def test_page_shows_banner_and_renders_every_chart_offline(incidents, chromium):
    run = incidents["outage"]
    load = chromium.open(run.out / "report.html", ARTIFACTS / "report-incident-outage.png")
    facts = load.facts
    assert load.requests == [] and load.console_errors == [] and load.dialogs == []
    assert facts["banner"].splitlines()[0].strip() == run.findings["verdict"]
    assert "First (high, fleet)" in facts["banner"]
    assert facts["plots"] == 3 and facts["rendered"] == 3  # timeline, close codes, backoff
    assert all(n > 0 for n in facts["traces"]), facts["traces"]
    assert facts["empty_plots"] == 0
    assert facts["scripts_with_src"] == 0 and facts["links"] == 0
    assert "network_outage" in facts["cells"]
    assert any("network_outage" in text for text in facts["svg_text"])  # timeline annotation
    assert load.screenshot is not None and load.screenshot.stat().st_size > 50_000


def test_hostile_strings_show_as_text(incidents, chromium):
    run = incidents["hostile"]
    assert run.exit_code == 0, run.stderr
    assert HOSTILE not in run.html  # only ever escaped in the page's source
    load = chromium.open(run.out / "report.html")
    assert load.dialogs == []  # alert(1) never ran
    assert HOSTILE in load.facts["cells"]  # the RUM close reason, as text
    assert load.requests == [] and load.console_errors == []


def test_no_sideways_scroll_on_a_phone(incidents, chromium):
    """At 390 px the tables become cards and the charts fit: nothing scrolls sideways."""
    run = incidents["outage"]
    cards = "getComputedStyle(document.querySelector('table.data td')).display"
    load = chromium.open(run.out / "report.html", ARTIFACTS / "phone-incident-report.png",
                         width=PHONE_WIDTH, script=cards)  # fmt: skip
    facts = load.facts
    assert facts["viewport_width"] == PHONE_WIDTH
    assert facts["scroll_width"] <= PHONE_WIDTH, facts["scroll_width"]
    assert facts["widest_plot"] <= PHONE_WIDTH and facts["rendered"] == facts["plots"] == 3
    assert facts["script"] == "block"  # a cell is a line of a card, not a table column
    assert load.console_errors == [] and load.requests == []
