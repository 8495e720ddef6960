"""`wsanalysis report index`: the release history over a folder of reports.

Fast tests build folders of result documents by hand (every shape the index must read,
every broken file it must survive, hostile names); the browser tests index real reports:
the session's executed canary reports (NO_GO, GO, a failed run, hostile names), an
INCONCLUSIVE `wsanalysis judge` and a `wsanalysis incident` run, opened in headless
Chromium with networking closed, at desktop width and at 390 px.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from report_support import ARTIFACTS, HOSTILE, HOSTILE_RELEASE, PHONE_WIDTH, REPO

from wsanalysis.cli import main
from wsanalysis.errors import UsageError
from wsanalysis.report.history import (
    blocking_gates,
    decision_times_per_week,
    incidents_per_week,
    read_history,
    runs_frame,
    verdicts_per_week,
)
from wsanalysis.report.index import render_index
from wsanalysis.run_metadata import checked_label, stamp
from wsanalysis.sources.dataset import file_fingerprint

MONDAY = datetime(2026, 11, 2, 9, tzinfo=UTC)  # a Monday


def canary_document(
    verdict: str,
    *,
    finished: datetime,
    gates: dict[str, str] | None = None,
    service: str | None = "checkout",
    release: str | None = "v1",
    environment: str | None = "production",
    decided_look: int | None = None,
    settle_in_s: float | None = None,
) -> dict:
    """A verdict.json as `wsanalysis judge` writes it (only the fields the index reads)."""
    gates = gates or {"error_rate": "pass", "ttfb_p95": "pass"}
    document = {
        "verdict": verdict,
        "reason": f"{verdict} because",
        "settle_in_s": settle_in_s,
        "gates": [{"name": name, "decision": d} for name, d in gates.items()],
        "window": {"start": "2026-11-02T06:00:00+00:00", "end": "2026-11-02T18:00:00+00:00"},
    }
    if decided_look is not None:
        key = "go_at_look" if verdict == "GO" else "no_go_at_look"
        document["sequential"] = {
            "look_minutes": 5.0,
            "planned_looks": 576,
            "go_at_look": None,
            "no_go_at_look": None,
            key: decided_look,
        }
    names = {"service": service, "release": release, "environment": environment}
    return stamp(document, "canary", producer="judge", names=names, finished=finished)


def incident_document(scopes: list[str], *, finished: datetime) -> dict:
    episodes = [
        {"start": "2026-11-02T09:00:00+00:00", "end": "2026-11-02T09:31:00+00:00",
         "scope": scope, "severity": "high", "kinds": ["network_outage"]}
        for scope in scopes
    ]  # fmt: skip
    document = {"window": {"start": "2026-11-02T06:00:00Z", "end": "2026-11-02T12:00:00Z"},
                "episodes": episodes, "findings": [], "not_run": []}  # fmt: skip
    names = {"service": "checkout", "release": None, "environment": "production"}
    return stamp(document, "incident", producer="incident", names=names, finished=finished)


def put(folder: Path, relative: str, content: dict | str | bytes) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# -- reading a folder --------------------------------------------------------------------------


def test_every_run_is_read_newest_first_with_its_decision(tmp_path):
    put(tmp_path, "a/verdict.json",
        canary_document("NO_GO", finished=MONDAY, gates={"error_rate": "fail",
                        "ttfb_p95": "inconclusive"}, decided_look=71))  # fmt: skip
    put(tmp_path, "b/deep/er/verdict.json",
        canary_document("GO", finished=MONDAY + timedelta(days=1)))  # fmt: skip
    put(tmp_path, "c/verdict.json",
        canary_document("INCONCLUSIVE", finished=MONDAY + timedelta(days=2), settle_in_s=5400,
                        gates={"error_rate": "pass", "ttfb_p95": "no_data"}))  # fmt: skip
    put(tmp_path, "d/findings.json",
        incident_document(["fleet", "canary"], finished=MONDAY + timedelta(days=3)))  # fmt: skip

    history = read_history(tmp_path)
    assert history.unreadable == []
    assert [r.outcome for r in history.runs] == ["incident", "INCONCLUSIVE", "GO", "NO_GO"]
    incident, unsettled, go, no_go = history.runs
    assert no_go.decided_s == 72 * 5 * 60 and no_go.decided_at == "look 72 of 576"
    assert no_go.failed_gates == ("error_rate",) and no_go.open_gates == ("ttfb_p95",)
    assert go.decided_s == 12 * 3600 and go.decided_at == "end of the window"  # fixed horizon
    assert go.open_gates == () and go.failed_gates == ()
    assert unsettled.decided_s is None and unsettled.settle_in_s == 5400
    assert unsettled.open_gates == ("ttfb_p95",)
    assert [e.scope for e in incident.episodes] == ["fleet", "canary"]
    assert {r.service for r in history.runs} == {"checkout"}
    assert all(r.finished_recorded and r.window_s for r in history.runs)
    assert history.summary().startswith("3 canary runs (1 GO, 1 NO_GO, 1 INCONCLUSIVE), 1 ")


def test_broken_and_foreign_files_are_listed_never_fatal(tmp_path):
    good = put(tmp_path, "good/verdict.json", canary_document("GO", finished=MONDAY))
    broken = {
        "not-json/verdict.json": '{"verdict": ',
        "binary/verdict.json": b"\x80\x81garbage",
        "list/findings.json": "[1, 2]",
        "other-tool/verdict.json": {"status": "ok", "score": 97},
        "odd-word/verdict.json": {"verdict": "MAYBE", "gates": []},
        "no-gates/verdict.json": {"verdict": "GO"},
        "bad-gates/verdict.json": {"verdict": "GO", "gates": ["error_rate"]},
        "null-without-failure/verdict.json": {"verdict": None},
        "no-episodes/findings.json": {"episodes": "three"},
        "nested/verdict.json": "[" * 100_000 + "]" * 100_000,
    }
    for relative, content in broken.items():
        put(tmp_path, relative, content)
    put(tmp_path, "notes/readme.json", {"not": "a result file name"})  # never read

    out = tmp_path / "site" / "index.html"
    assert main(["report", "index", str(tmp_path), "--out", str(out)]) == 0
    history = read_history(tmp_path)
    assert [r.path for r in history.runs] == [good]
    problems = {u.path.relative_to(tmp_path).as_posix(): u.problem for u in history.unreadable}
    assert set(problems) == set(broken)
    assert problems["not-json/verdict.json"].startswith("broken: not JSON")
    assert problems["binary/verdict.json"] == "broken: not UTF-8 text"
    assert problems["nested/verdict.json"].startswith("broken")
    assert problems["list/findings.json"].startswith("foreign: a JSON list")
    assert all(p.startswith(("broken", "foreign")) for p in problems.values())
    page = out.read_text()
    assert "Files that are not reports" in page
    assert page.count('<td data-label="problem">') == len(broken)
    assert '<a href="../not-json/verdict.json">' in page  # relative to the page, not DIR


def test_documents_without_about_fall_back_to_what_every_producer_writes(tmp_path):
    """Reports written before run metadata existed still list, with their own times."""
    old = canary_document("NO_GO", finished=MONDAY, gates={"error_rate": "fail"})
    del old["about"]
    old["run"] = {"created": "2026-11-20T10:00:00+00:00"}
    put(tmp_path, "old/verdict.json", old)
    bare = canary_document("GO", finished=MONDAY)
    del bare["about"]
    put(tmp_path, "bare/verdict.json", bare)
    failed = {"verdict": None, "reason": "report failed (failed cell): DataError",
              "failure": {"kind": "failed cell", "message": "DataError"}}  # fmt: skip
    put(tmp_path, "failed/verdict.json", failed)
    put(tmp_path, "failed/report.html", "<html></html>")

    runs = {r.path.parent.name: r for r in read_history(tmp_path).runs}
    assert runs["old"].finished == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert runs["old"].finished_recorded and runs["old"].window_s == 12 * 3600
    assert runs["old"].service is None and runs["old"].failed_gates == ("error_rate",)
    assert not runs["bare"].finished_recorded  # the file's time, and the page says so
    assert runs["failed"].outcome == "FAILED" and runs["failed"].report is not None
    page = render_index(read_history(tmp_path), tmp_path / "index.html")
    assert "(file time)" in page
    assert '<a href="failed/report.html">report.html</a>' in page


def test_trends_are_counted_per_week(tmp_path):
    week2 = MONDAY + timedelta(days=7)
    documents = [
        canary_document("GO", finished=MONDAY, decided_look=11),  # 1 h
        canary_document("GO", finished=MONDAY + timedelta(days=2), decided_look=23),  # 2 h
        canary_document("NO_GO", finished=MONDAY + timedelta(days=6, hours=14),
                        gates={"error_rate": "fail", "ttfb_p95": "inconclusive"},
                        decided_look=59),  # 5 h, Sunday: still week 1
        canary_document("NO_GO", finished=week2, decided_look=None,
                        gates={"error_rate": "fail", "auth_spike": "fail"}),  # 12 h window
        canary_document("INCONCLUSIVE", finished=week2 + timedelta(days=1),
                        gates={"ttfb_p95": "inconclusive", "error_rate": "pass"}),
        incident_document(["fleet", "canary", "fleet"], finished=MONDAY + timedelta(days=1)),
        incident_document(["control"], finished=week2 + timedelta(days=3)),
    ]  # fmt: skip
    for n, document in enumerate(documents):
        name = "findings.json" if "episodes" in document else "verdict.json"
        put(tmp_path, f"run-{n}/{name}", document)
    frame = runs_frame(read_history(tmp_path).runs)
    w1, w2 = date(2026, 11, 2), date(2026, 11, 9)

    verdicts = {(r["week"], r["outcome"]): r["runs"] for r in verdicts_per_week(frame).to_dicts()}
    assert verdicts == {(w1, "GO"): 2, (w1, "NO_GO"): 1, (w2, "NO_GO"): 1,
                        (w2, "INCONCLUSIVE"): 1}  # fmt: skip

    times = decision_times_per_week(frame).to_dicts()
    assert [(t["week"], t["runs"]) for t in times] == [(w1, 3), (w2, 1)]
    assert times[0]["median_h"] == pytest.approx(2.0)
    assert times[0]["p90_h"] == pytest.approx(2.0 + 0.8 * 3.0)  # linear between 2 h and 5 h
    assert times[1]["median_h"] == times[1]["p90_h"] == pytest.approx(12.0)

    gates = blocking_gates(frame).to_dicts()
    assert gates == [
        {"gate": "error_rate", "failed": 2, "open": 0, "total": 2},
        {"gate": "ttfb_p95", "failed": 0, "open": 2, "total": 2},
        {"gate": "auth_spike", "failed": 1, "open": 0, "total": 1},
    ]
    incidents = {(r["week"], r["scope"]): r["episodes"]
                 for r in incidents_per_week(frame).to_dicts()}  # fmt: skip
    assert incidents == {(w1, "canary"): 1, (w1, "fleet"): 2, (w2, "control"): 1}


def test_an_empty_folder_gives_a_page_that_says_so(tmp_path, capsys):
    assert main(["report", "index", str(tmp_path)]) == 0
    page = (tmp_path / "index.html").read_text()
    assert "No verdict.json or findings.json was found" in page
    assert "Plotly" not in page  # nothing to draw: no plotly.js either
    assert "no verdict.json or findings.json under" in capsys.readouterr().out


def test_a_missing_folder_or_an_unwritable_page_is_exit_3(tmp_path, capsys):
    assert main(["report", "index", str(tmp_path / "nowhere")]) == 3
    assert "is not a folder" in capsys.readouterr().err
    put(tmp_path, "a/verdict.json", canary_document("GO", finished=MONDAY))
    blocker = put(tmp_path, "file", "a file where the page's folder should be")
    assert main(["report", "index", str(tmp_path), "--out", str(blocker / "index.html")]) == 3
    assert "cannot write index page" in capsys.readouterr().err


def test_hostile_names_are_escaped_everywhere(tmp_path):
    hostile = canary_document(
        "NO_GO",
        finished=MONDAY,
        service=HOSTILE,
        release=HOSTILE_RELEASE,
        environment="prod</td></tr><tr><td>",
        gates={HOSTILE: "fail"},
    )
    hostile["reason"] = HOSTILE
    put(tmp_path, "x/verdict.json", hostile)
    weird = tmp_path / 'odd "name" #1 <b>'
    put(weird, "verdict.json", canary_document("GO", finished=MONDAY))
    page = render_index(read_history(tmp_path), tmp_path / "index.html")
    for text in (HOSTILE, HOSTILE_RELEASE, "prod</td>", "<b>"):
        assert text not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-service="&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "odd%20%22name%22%20%231%20%3Cb%3E/verdict.json" in page  # a link that stays one


def test_run_names_are_one_printable_line():
    assert checked_label("service", "  checkout ") == "checkout"
    assert checked_label("service", "") is None and checked_label("service", None) is None
    assert checked_label("release", HOSTILE) == HOSTILE  # kept as typed; pages escape it
    for bad in ("two\nlines", "tab\there", "x" * 201):
        with pytest.raises(UsageError, match="service"):
            checked_label("service", bad)


def test_bad_names_on_the_command_line_exit_3(tmp_path, capsys):
    out = tmp_path / "v.json"
    argv = ["judge", "--data", str(REPO / "data" / "sample"), "--out", str(out)]
    assert main([*argv, "--service", "x" * 300]) == 3
    sample = f"data={REPO / 'data' / 'sample'}"
    assert main(["canary", "--param", sample, "--param", "release=a\tb"]) == 3
    assert "release" in capsys.readouterr().err
    assert not out.exists()


# -- the page over real reports, in headless Chromium -----------------------------------------


@pytest.fixture(scope="module")
def history_folder(reports, tmp_path_factory) -> Path:
    """Executed canary reports (NO_GO, GO, a failed run, hostile names), an INCONCLUSIVE
    `wsanalysis judge` run, a `wsanalysis incident` run and some files that are not
    reports, in one folder."""
    folder = tmp_path_factory.mktemp("history")
    for name in ("sample", "staging", "broken", "hostile"):
        shutil.copytree(reports[name].out, folder / "reports" / name)
    data = REPO / "data"
    judged = folder / "pipeline" / "ttfb-7d9f8c1" / "verdict.json"
    # staging gates, sequential: duration_p95 is left open after 12 h (the canary profile's
    # ttfb_p95 fails this canary since #24a, so it cannot be the open gate here)
    code = main(["judge", "--data", str(data / "ttfb_p95_plus150"), "--sequential",
                 "--profile", "staging", "--service", "assistant", "--release", "7d9f8c1",
                 "--environment", "production", "--out", str(judged)])  # fmt: skip
    assert code == 2
    findings = folder / "incidents" / "outage" / "findings.json"
    code = main(["incident", "--data", str(data / "network_outage"), "--service", "chat",
                 "--environment", "production", "--out", str(findings)])  # fmt: skip
    assert code == 0
    put(folder, "junk/verdict.json", "{not json")
    put(folder, "junk/findings.json", {"hello": "world"})
    assert main(["report", "index", str(folder)]) == 0
    return folder


def test_results_record_who_and_what_with_window_gate_hash_and_finish(history_folder, reports):
    from wsanalysis.canary.gates import DEFAULT_GATE_FILE

    default_sha = file_fingerprint(DEFAULT_GATE_FILE)
    judged = json.loads((history_folder / "pipeline/ttfb-7d9f8c1/verdict.json").read_text())
    about = judged["about"]
    assert about["service"] == "assistant" and about["release"] == "7d9f8c1"
    assert about["environment"] == "production" and about["producer"] == "judge"
    assert about["window_s"] == 12 * 3600 and about["gate_file_sha256"] == default_sha
    finished = datetime.fromisoformat(about["finished"])
    assert timedelta(0) <= datetime.now(UTC) - finished < timedelta(hours=1)

    report = reports["sample"].verdict["about"]  # the canary report (`--service` etc.)
    assert (report["kind"], report["producer"]) == ("canary", "report")
    assert (report["service"], report["release"], report["environment"]) == (
        "checkout", "v2.3.1", "production")  # fmt: skip
    assert report["gate_file_sha256"] == default_sha and report["window_s"] == 6 * 3600
    assert reports["staging"].verdict["about"]["release"] == "v2.4.0"  # --param release=
    failed = reports["broken"].verdict["about"]  # a failed run is still stamped
    assert failed["kind"] == "canary" and failed["window"] is None and failed["finished"]
    assert "service checkout · release v2.3.1" in reports["sample"].html  # under the banner

    findings = json.loads((history_folder / "incidents/outage/findings.json").read_text())
    assert findings["about"]["kind"] == "incident" and findings["about"]["service"] == "chat"
    assert findings["about"]["gate_file_sha256"] is None and findings["about"]["window_s"]


ROWS_AND_FILTERS = """(() => {
  const rows = [...document.querySelectorAll('#runs tbody tr')];
  const visible = () => rows.filter(r => r.offsetParent !== null).map(r => r.dataset.outcome);
  const pick = (name, value) => {
    const select = document.querySelector(`select[data-filter="${name}"]`);
    select.value = value;
    select.dispatchEvent(new Event('change'));
  };
  const seen = {all: visible(), services: [...rows].map(r => r.dataset.service)};
  pick('outcome', 'NO_GO'); seen.no_go = visible();
  seen.shown = document.getElementById('shown').textContent;
  pick('outcome', ''); pick('service', 'chat'); seen.chat = visible();
  pick('service', ''); pick('environment', 'staging'); seen.staging = visible();
  pick('environment', '');
  const search = document.getElementById('search');
  search.value = 'Duration_P95'; search.dispatchEvent(new Event('input')); seen.search = visible();
  search.value = ''; search.dispatchEvent(new Event('input')); seen.cleared = visible();
  return seen;
})()"""


def test_index_over_real_reports_in_chromium(history_folder, reports, chromium):
    load = chromium.open(history_folder / "index.html", ARTIFACTS / "index.png",
                         script=ROWS_AND_FILTERS)  # fmt: skip
    assert load.requests == []  # nothing loaded from the network
    assert load.console_errors == [] and load.dialogs == []
    facts, seen = load.facts, load.facts["script"]
    assert facts["scripts_with_src"] == 0 and facts["links"] == 0
    hostile_verdict = reports["hostile"].verdict["verdict"]
    assert sorted(seen["all"]) == sorted(
        ["NO_GO", "GO", "FAILED", hostile_verdict, "INCONCLUSIVE", "incident"]
    )
    assert seen["no_go"] == ["NO_GO"] * seen["all"].count("NO_GO")
    assert seen["shown"] == f"{len(seen['no_go'])} of 6 runs shown"
    assert sorted(seen["chat"]) == ["incident"]
    assert seen["staging"] == ["GO"]
    assert seen["search"] == ["INCONCLUSIVE"]  # the gate left open, found case-blind
    assert seen["cleared"] == seen["all"]
    # the trends: verdicts, time to decision, blocking gates, incidents; every one drawn
    assert facts["plots"] == facts["rendered"] == 4
    assert all(n > 0 for n in facts["traces"]), facts["traces"]
    assert "junk/verdict.json" in facts["cells"]  # listed as not a report
    assert HOSTILE in facts["cells"] and HOSTILE_RELEASE in facts["cells"]  # text, never markup
    assert HOSTILE in seen["services"]


PHONE_PAGES = {
    "canary report": lambda reports, folder: reports["sample"].out / "report.html",
    "index": lambda reports, folder: folder / "index.html",
}


@pytest.mark.parametrize("page", PHONE_PAGES)
def test_no_sideways_scroll_on_a_phone(page, reports, history_folder, chromium):
    """At 390 px the tables become cards and the charts fit: nothing scrolls sideways."""
    path = PHONE_PAGES[page](reports, history_folder)
    shot = ARTIFACTS / f"phone-{page.replace(' ', '-')}.png"
    cards = "getComputedStyle(document.querySelector('table.data td')).display"
    load = chromium.open(path, shot, width=PHONE_WIDTH, script=cards)
    facts = load.facts
    assert facts["viewport_width"] == PHONE_WIDTH
    assert facts["scroll_width"] <= PHONE_WIDTH, facts["scroll_width"]
    assert facts["widest_plot"] <= PHONE_WIDTH and facts["rendered"] == facts["plots"] > 0
    assert facts["script"] == "block"  # a cell is a line of a card, not a table column
    assert load.console_errors == [] and load.requests == []


def test_on_paper_the_controls_give_way_to_the_runs(history_folder, chromium):
    shown = """(() => [...document.querySelectorAll('.filters, nav.toc, #runs, .plot')]
        .map(e => e.className + ':' + getComputedStyle(e).display))()"""
    load = chromium.open(history_folder / "index.html", media="print", script=shown)
    displays = dict(item.split(":") for item in load.facts["script"])
    assert displays["filters"] == "none" and displays["toc"] == "none"
    assert displays["data runs"] != "none" and displays["plot js-plotly-plot"] != "none"
