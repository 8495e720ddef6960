"""Dataset folders, the overview `make demo` prints, and the CLI around them."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from wsanalysis.cli import main
from wsanalysis.errors import DataError
from wsanalysis.frames.counters import total_increase
from wsanalysis.overview import metrics_overview, rum_overview
from wsanalysis.sources.dataset import Dataset


def test_sample_dataset_loads_both_sources(sample_dataset: Path):
    dataset = Dataset.open(sample_dataset)
    samples = dataset.metrics()
    assert set(samples["variant"].unique()) == {"canary", "control"}
    contract = {
        "ws_connections_active",
        "ws_connections_total",
        "ws_closes_total",
        "ws_connection_duration_seconds_bucket",
        "ws_frames_sent_total",
        "ws_reconnect_advice_total",
        "ws_assistant_ttfb_seconds_bucket",
    }
    assert contract <= set(samples["metric"].unique())
    span = samples["timestamp"].max() - samples["timestamp"].min()
    assert span.total_seconds() >= 6 * 3600
    load = dataset.rum()
    assert load is not None and load.bad_lines == 0
    assert set(load.frame["variant"].unique()) == {"canary", "control"}
    assert dataset.labels is not None and dataset.labels["seed"] == 7
    assert set(dataset.fingerprints()) == {"metrics.om", "rum.ndjson.gz", "labels.json"}


def test_overview_matches_independent_counts(sample_dataset: Path):
    dataset = Dataset.open(sample_dataset)
    samples = dataset.metrics()
    overview = metrics_overview(samples)
    closes = total_increase(
        samples.filter(pl.col("metric") == "ws_closes_total"), by=["variant", "code"]
    )
    for row in closes.iter_rows(named=True):
        got = overview.filter(pl.col("variant") == row["variant"])[f"closes_{row['code']}"]
        assert got.item() == row["increase"]
    # the canary was restarted at 4 h: 1012 closes on canary only
    assert overview.filter(pl.col("variant") == "canary")["closes_1012"].item() > 0
    assert overview.filter(pl.col("variant") == "control")["closes_1012"].item() == 0
    beacons = dataset.rum().frame
    rum = rum_overview(beacons)
    canary_sessions = beacons.filter(pl.col("variant") == "canary")["session_id"].n_unique()
    assert rum.filter(pl.col("variant") == "canary")["sessions"].item() == canary_sessions


def test_production_export_without_labels_or_rum(tmp_path: Path, sample_dataset: Path):
    shutil.copy(sample_dataset / "metrics.om", tmp_path / "metrics.om")
    dataset = Dataset.open(tmp_path)
    assert dataset.labels is None and dataset.rum() is None
    assert not dataset.metrics().is_empty()


def test_rum_only_folder(tmp_path: Path, sample_dataset: Path):
    shutil.copy(sample_dataset / "rum.ndjson.gz", tmp_path / "rum.ndjson.gz")
    dataset = Dataset.open(tmp_path)
    assert dataset.metrics().is_empty() and dataset.rum().frame.height > 0


def test_empty_or_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DataError, match="neither server metrics nor RUM"):
        Dataset.open(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        Dataset.open(tmp_path / "absent")


def test_broken_labels_json_names_the_line(tmp_path: Path):
    (tmp_path / "rum.ndjson.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "labels.json").write_text('{"a": 1,\n oops}')
    with pytest.raises(DataError, match="line 2"):
        _ = Dataset.open(tmp_path).labels


def test_cli_summary_prints_both_variants(sample_dataset: Path, capsys):
    assert main(["summary", "--data", str(sample_dataset)]) == 0
    out = capsys.readouterr().out
    assert "canary" in out and "control" in out and "closes_1012" in out
    assert "0 bad lines" in out


def test_cli_errors_exit_3_with_the_fix(tmp_path: Path, capsys):
    assert main(["summary", "--data", str(tmp_path / "nope")]) == 3
    err = capsys.readouterr().err
    assert "does not exist" in err and "fix:" in err
    assert main(["summary"]) == 3  # argparse usage error: the contract's 3, not argparse's 2
    assert main([]) == 3


def test_labels_are_ground_truth_of_the_restart(sample_dataset: Path):
    labels = json.loads((sample_dataset / "labels.json").read_text())
    incident = labels["incidents"][0]
    assert incident["kind"] == "server_restart" and incident["variant"] == "canary"


def test_cli_lists_every_command_and_rejects_unknown_ones(capsys):
    from wsanalysis.cli import build_parser, command_names

    assert {"summary", "judge", "prom", "export", "serve", "client"} <= set(command_names())
    help_text = build_parser().format_help()
    assert all(name in help_text for name in command_names())
    assert main(["no-such-command"]) == 3


def test_broken_metrics_are_an_error_unless_lenient_then_counted(tmp_path: Path):
    text = (
        "# TYPE ws_connections counter\n"
        'ws_connections_total{variant="canary"} 5 1700000000\n'
        'ws_connections_total{variant="canary"} -1 1700000060\n'  # a counter below zero
        'ws_connections_total{variant="canary"} 9 1700000120\n'
        "# EOF\n"
    )
    (tmp_path / "metrics.om").write_text(text)
    dataset = Dataset.open(tmp_path)
    with pytest.raises(DataError, match=r"line 3: .*\[rule counter-value\]"):
        dataset.metrics()
    load = dataset.metrics_load(lenient=True)
    assert load.frame["value"].to_list() == [5.0, 9.0]
    assert load.dropped == {"counter-value": 1}
    assert dataset.metrics(lenient=True).equals(load.frame)
