"""Each detector finds the labelled incident of its kind, on the right variant and time."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest

from tests.incident.conftest import DATA, analysed, loaded
from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.findings import severity_at_least
from wsanalysis.incident.inputs import from_frames


def labelled(name: str) -> list[dict]:
    return json.loads((DATA / name / "labels.json").read_text())["incidents"]


@pytest.mark.parametrize(
    "name",
    ["reconnect_storm", "herd_no_jitter", "network_outage", "auth_spike_token_change",
     "deploy_restart", "sample", "before_after_after", "before_after_before"],
)  # fmt: skip
def test_every_labelled_incident_is_found_in_its_window(name):
    result = analysed(name)
    for label in labelled(name):
        start, end = datetime.fromisoformat(label["start"]), datetime.fromisoformat(label["end"])
        hits = [
            f for f in result.of_kind(label["kind"])
            if f.variant == label["variant"] and f.overlaps(start, end)
        ]  # fmt: skip
        assert hits, f"{label} not found; findings: {[f.to_json() for f in result.findings]}"
        assert abs((hits[0].start - start).total_seconds()) <= 120


def test_storm_is_not_reported_where_a_restart_or_outage_explains_the_surge():
    for name in ("herd_no_jitter", "deploy_restart", "network_outage", "auth_spike_token_change"):
        assert analysed(name).of_kind("reconnect_storm") == [], name


def test_herd_only_on_the_variant_without_jitter():
    herds = analysed("herd_no_jitter").of_kind("thundering_herd")
    assert [f.variant for f in herds] == ["canary"]
    assert herds[0].numbers["peak_share"] >= 0.8
    assert herds[0].numbers["distinct_delay_share"] < 0.1  # every client waited the same delay
    assert analysed("deploy_restart").of_kind("thundering_herd") == []


def test_auth_spike_reports_code_and_share_of_sessions():
    spike = analysed("auth_spike_token_change").of_kind("auth_spike")[0]
    assert spike.numbers["code"] == 4401
    assert spike.numbers["sessions_affected_share"] > 0.5
    assert spike.severity == "high"
    assert "4401" in spike.sentence


def test_outage_is_bounded_by_the_users_coming_back():
    outage = [f for f in analysed("network_outage").of_kind("network_outage")
              if f.variant == "control"][0]  # fmt: skip
    assert outage.start.strftime("%H:%M") == "09:00"
    assert outage.end.strftime("%H:%M") in ("09:30", "09:31", "09:32")


@pytest.mark.parametrize("name", ["aa_baseline"])
def test_aa_gives_no_finding_above_low(name):
    assert not [f for f in analysed(name).findings if severity_at_least(f, "medium")]


def test_regressions_found_across_the_window():
    assert analysed("duration_p50_drops_10min").of_kind("duration_regression")
    dups = analysed("no_dedup").of_kind("duplicates_delivered")
    assert [f.variant for f in dups] == ["canary"]
    ttfb = [f for f in analysed("ttfb_p95_plus150").of_kind("ttfb_degradation")
            if severity_at_least(f, "medium")]  # fmt: skip
    assert ttfb and ttfb[0].numbers["difference_ms"] > 50
    assert not [f for f in analysed("ttfb_near_miss_plus40").of_kind("ttfb_degradation")
                if severity_at_least(f, "medium")]  # fmt: skip


def test_findings_serialise_to_json():
    finding = analysed("reconnect_storm").of_kind("reconnect_storm")[0]
    document = json.loads(json.dumps(finding.to_json()))
    assert document["kind"] == "reconnect_storm"
    assert document["severity"] in ("low", "medium", "high")
    assert datetime.fromisoformat(document["start"]) == finding.start
    assert document["numbers"]["ratio"] > 2


def test_detectors_side_by_side_split_the_beacons_once_and_agree_with_a_rerun():
    # analyze runs the detectors in threads over one shared split of the beacons
    fresh = from_frames(loaded("deploy_restart").samples, loaded("deploy_restart").beacons)
    start = threading.Barrier(8)
    splits = []

    def split() -> None:
        start.wait()
        splits.append(fresh.split_by_type())

    threads = [threading.Thread(target=split) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(splits) == 8 and all(s is splits[0] for s in splits)
    assert sorted(splits[0]) == sorted(fresh.beacons["type"].unique().to_list())
    again = analyze(loaded("deploy_restart"))
    first = analysed("deploy_restart")
    assert [f.to_json() for f in again.findings] == [f.to_json() for f in first.findings]
    assert again.not_run == first.not_run
