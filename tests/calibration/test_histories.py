"""Histories that are not in the repository: short, oddly labelled, with gaps, pods that
change names, one source only. Each either calibrates and says what it left out, or
exits 3 with the problem and the fix."""

from __future__ import annotations

import copy
from datetime import timedelta

import polars as pl
import pytest

from tests.fleet.conftest import TINY
from wsanalysis.reference.fleet import simulate, write_dataset
from wsanalysis.reference.scenario import parse_scenario
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.rum import write_rum

from .conftest import run_calibrate


@pytest.fixture(scope="module")
def podded(tmp_path_factory) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A 2 h history of a small fleet, control on 3 pods, nothing injected."""
    raw = copy.deepcopy(TINY)
    raw["timeline"] = []
    raw["variants"]["control"] |= {"pods": 3, "server": {"internal_error_p": 0.02}}
    raw["variants"]["canary"] = copy.deepcopy(raw["variants"]["control"]) | {"share": 0.3}
    raw["variants"]["canary"].pop("pods")
    folder = write_dataset(simulate(parse_scenario(raw)), tmp_path_factory.mktemp("h") / "h")
    dataset = Dataset.open(folder)
    return dataset.metrics(), dataset.rum().frame


def _folder(tmp_path, samples: pl.DataFrame | None, beacons: pl.DataFrame | None):
    folder = tmp_path / "history"
    folder.mkdir()
    if samples is not None:
        write_openmetrics(samples, folder / "metrics.om")
    if beacons is not None:
        write_rum(beacons, folder / "rum.ndjson.gz")
    return folder


def _calibrate(tmp_path, folder, *extra: str, capsys=None):
    return run_calibrate(["--data", str(folder), *extra], tmp_path / "calibration.json", capsys)


def test_a_short_history_calibrates_in_short_windows(podded, tmp_path) -> None:
    folder = _folder(tmp_path, *podded)
    code, document, _ = _calibrate(tmp_path, folder, "--window", "30m", "--seeds", "4")
    assert code == 0
    assert document["history"]["windows"] == 4 and document["replays"] == 16
    assert document["gates"]["error_rate"]["replayed_on"] == "pods"
    assert document["pods"]["distinct_splits"] == 3  # one pod of three, every way
    assert sum(document["pods"]["by_pod"][p]["in_canary"] for p in document["pods"]["by_pod"]) == 16


def test_a_history_shorter_than_one_window_is_refused_with_the_fix(podded, tmp_path, capsys):
    folder = _folder(tmp_path, *podded)
    code, document, _ = _calibrate(tmp_path, folder, "--window", "3h")
    err = capsys.readouterr().err
    assert code == 3 and document is None
    assert "2 h of control data, less than one window of 3 h" in err
    assert "--window 2h or shorter" in err


def test_a_history_a_scrape_short_of_the_window_still_fills_it(podded, tmp_path, capsys):
    samples, beacons = podded
    start = samples["timestamp"].min()
    last = start + timedelta(minutes=59, seconds=30)  # a last scrape just before the hour
    folder = _folder(
        tmp_path, samples.filter(pl.col("timestamp") <= last), beacons.filter(pl.col("ts") <= last)
    )
    code, document, _ = _calibrate(tmp_path, folder, "--window", "1h", "--seeds", "2")
    assert code == 0 and document["history"]["windows"] == 1
    (tmp_path / "fifty").mkdir()
    fifty = samples.filter(pl.col("timestamp") <= start + timedelta(minutes=50))
    code, _, _ = _calibrate(tmp_path, _folder(tmp_path / "fifty", fifty, None), "--window", "1h")
    assert code == 3
    assert "holds 50 min of control data, less than one window of 1 h" in capsys.readouterr().err


def test_a_very_short_canary_window_says_no_gate_decided(podded, tmp_path) -> None:
    samples, beacons = podded
    start = samples["timestamp"].min()
    cut = start + timedelta(minutes=20)
    folder = _folder(
        tmp_path, samples.filter(pl.col("timestamp") <= cut), beacons.filter(pl.col("ts") < cut)
    )
    code, document, _ = _calibrate(tmp_path, folder, "--window", "10m", "--seeds", "2")
    assert code == 0 and document["replays"] == 4
    assert document["verdicts"]["GO"] == 0  # nothing passes on 10 minutes of a small fleet
    assert any(s.startswith("No decision in any replay") for s in document["sentences"])


def test_rum_only_history_replays_the_rum_gates(podded, tmp_path) -> None:
    folder = _folder(tmp_path, None, podded[1])
    code, document, _ = _calibrate(tmp_path, folder, "--window", "1h")
    assert code == 0
    assert document["gates"]["error_rate"]["not_replayable"] == (
        "the history has no control server series"
    )
    assert document["gates"]["ttfb_p95"]["replayed_on"] == "sessions"


def test_one_pod_and_no_rum_leaves_nothing_to_replay(podded, tmp_path, capsys) -> None:
    samples = podded[0].filter(pl.col("pod").is_null() | (pl.col("pod") == "control-0"))
    folder = _folder(tmp_path, samples, None)
    code, _, _ = _calibrate(tmp_path, folder)
    err = capsys.readouterr().err
    assert code == 3
    assert "no gate of profile canary can be replayed" in err
    assert "control runs on one pod (control-0)" in err and "no RUM beacons" in err
    assert "fix: give a history whose server series carry a pod or instance label" in err


def test_pods_renamed_by_a_deploy_are_split_per_window(podded, tmp_path) -> None:
    samples, beacons = podded
    halfway = samples["timestamp"].min() + timedelta(hours=1)
    renamed = samples.with_columns(
        pod=pl.when(pl.col("timestamp") > halfway)
        .then(pl.col("pod").str.replace("control-", "control-new-"))
        .otherwise(pl.col("pod"))
    )
    folder = _folder(tmp_path, renamed, beacons)
    code, document, _ = _calibrate(tmp_path, folder, "--window", "30m", "--seeds", "3")
    assert code == 0
    by_pod = document["pods"]["by_pod"]
    assert {p for p in by_pod if "new" in p} == {"control-new-0", "control-new-1", "control-new-2"}
    assert document["pods"]["per_window"] == {"min": 3, "max": 3}


def test_a_gap_in_the_history_is_skipped_and_said(podded, tmp_path) -> None:
    samples, beacons = podded
    start = samples["timestamp"].min()
    hole = (start + timedelta(minutes=35), start + timedelta(minutes=85))
    keep_s = ~pl.col("timestamp").is_between(*hole)
    keep_b = ~pl.col("ts").is_between(*hole)
    folder = _folder(tmp_path, samples.filter(keep_s), beacons.filter(keep_b))
    code, document, _ = _calibrate(tmp_path, folder, "--window", "15m", "--seeds", "2")
    assert code == 0
    assert document["history"]["windows"] == 8
    assert document["replays"] == 2 * 6  # two windows fell in the hole
    assert "2 window(s) held no control data and were not replayed." in document["notes"]


def test_a_history_with_other_variant_names_needs_selectors(podded, tmp_path, capsys) -> None:
    samples, beacons = podded
    stable = {"control": "stable"}
    folder = _folder(
        tmp_path,
        samples.with_columns(pl.col("variant").replace(stable)),
        beacons.with_columns(pl.col("variant").replace(stable)),
    )
    code, _, _ = _calibrate(tmp_path, folder)
    err = capsys.readouterr().err
    assert code == 3 and "the history holds no control: its variants are canary, stable" in err
    selectors = ["--canary-selector", 'variant="canary"', "--control-selector", 'variant="stable"']
    code, document, _ = _calibrate(tmp_path, folder, *selectors)
    assert code == 0 and document["gates"]["error_rate"]["replayed_on"] == "pods"
    # the selectors map the beacons as they map the series (#22): nothing is dropped
    assert not any("their variants" in note for note in document["notes"])
    assert document["gates"]["ttfb_p95"]["source"] == "rum"


def test_bad_options_exit_3_before_reading(podded, tmp_path, capsys) -> None:
    folder = _folder(tmp_path, *podded)
    for args, said in [
        (["--canary-share", "1.5"], "not between 0 and 1"),
        (["--seeds", "0"], "--seeds 0 is outside"),
        (["--window", "0s"], "not a positive duration"),
        (["--telemetry", str(tmp_path / "missing.yaml")], "No such file or directory"),
    ]:
        code, document, _ = _calibrate(tmp_path, folder, *args)
        assert code == 3 and document is None, args
        assert said in capsys.readouterr().err, args


@pytest.fixture(scope="module")
def reference(podded, tmp_path_factory) -> dict:
    """The podded history's calibration under the contract's own names."""
    tmp_path = tmp_path_factory.mktemp("reference")
    code, document, _ = _calibrate(tmp_path, _folder(tmp_path, *podded))
    assert code == 0
    return document


def _same_calibration(document: dict, reference: dict) -> None:
    """Two calibrations of one history (read under two namings) say the same."""
    for key in ("replays", "verdicts", "gates", "plan", "pods", "false_no_go"):
        assert document[key] == reference[key], key


def test_a_telemetry_files_variants_map_the_history(podded, reference, tmp_path) -> None:
    """A history whose server series call control `stable`, read with a telemetry file
    whose `variants` say so, calibrates as the same history under the contract's names
    (the beacons keep `control`: this build maps a beacon's variant by its field only)."""
    samples, beacons = podded
    stable = {"control": "stable"}
    folder = _folder(tmp_path, samples.with_columns(pl.col("variant").replace(stable)), beacons)
    mapping = tmp_path / "telemetry.yaml"
    mapping.write_text(
        "version: 1\nvariants:\n  label: variant\n  values: {canary: canary, control: stable}\n"
    )
    code, document, _ = _calibrate(tmp_path, folder, "--telemetry", str(mapping))
    assert code == 0
    _same_calibration(document, reference)
    assert document["history"]["inputs"]["telemetry"]["path"] == str(mapping)


def _renamed_history(podded, tmp_path):
    """The history with ws_connections_total called chat_opened_total, and the mapping."""
    samples, beacons = podded
    opened = {"ws_connections_total": "chat_opened_total"}
    folder = _folder(tmp_path, samples.with_columns(pl.col("metric").replace(opened)), beacons)
    mapping = tmp_path / "telemetry.yaml"
    mapping.write_text("version: 1\nmetrics: {ws_connections_total: chat_opened_total}\n")
    return folder, mapping


def test_a_telemetry_files_names_are_read(podded, reference, tmp_path) -> None:
    folder, mapping = _renamed_history(podded, tmp_path)
    code, document, _ = _calibrate(tmp_path, folder, "--telemetry", str(mapping))
    assert code == 0
    _same_calibration(document, reference)
