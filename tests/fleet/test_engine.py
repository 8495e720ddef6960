"""The simulated engine on a tiny scenario: determinism, output, the policy's behaviour."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest
import yaml

from wsanalysis.cli import main
from wsanalysis.reference.fleet import _snapshot, simulate, write_dataset
from wsanalysis.reference.scenario import load_scenario, parse_scenario
from wsanalysis.reference.server import ServerMetrics
from wsanalysis.sources.dataset import Dataset

from .conftest import DATA


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from .conftest import TINY

    scenario = parse_scenario(TINY)
    result = simulate(scenario)
    folder = write_dataset(result, tmp_path_factory.mktemp("tiny") / "tiny")
    return scenario, result, folder


def test_same_seed_same_dataset_byte_for_byte(tiny_run, tmp_path) -> None:
    scenario, _, folder = tiny_run
    again = write_dataset(simulate(scenario), tmp_path / "again")
    for name in ("metrics.om", "rum.ndjson.gz", "labels.json", "scenario.yaml"):
        assert (folder / name).read_bytes() == (again / name).read_bytes(), name


def test_gzipped_metrics_are_reproducible_too(tiny_run, tmp_path) -> None:
    scenario, result, folder = tiny_run
    result.scenario = replace(scenario, metrics_gzip=True)
    try:
        written = write_dataset(result, tmp_path / "gz")
    finally:
        result.scenario = scenario
    raw = (written / "metrics.om.gz").read_bytes()
    assert raw[4:8] == bytes(4)  # no timestamp in the gzip header
    assert gzip.decompress(raw) == (folder / "metrics.om").read_bytes()
    assert not (written / "metrics.om").exists()
    assert Dataset.open(written).metrics().height == result.samples.height


def test_another_seed_changes_the_data(tiny_run) -> None:
    scenario, result, _ = tiny_run
    other = simulate(scenario.with_seed(scenario.seed + 1))
    assert other.labels["seed"] == scenario.seed + 1
    assert other.labels["truth"] != result.labels["truth"]


def test_dataset_folder_loads_through_the_sources(tiny_run) -> None:
    scenario, result, folder = tiny_run
    dataset = Dataset.open(folder)
    samples = dataset.metrics()
    assert set(samples["variant"].unique()) == {"control", "canary"}
    assert {
        "ws_connections_active", "ws_connections_total", "ws_closes_total",
        "ws_connection_duration_seconds_bucket", "ws_frames_sent_total",
        "ws_reconnect_advice_total", "ws_assistant_ttfb_seconds_bucket",
    } <= set(samples["metric"].unique())  # fmt: skip
    # one scrape per interval over the window, first at its start, with virtual timestamps
    times = samples["timestamp"].unique().sort()
    assert times[0] == scenario.start
    assert times[-1] == scenario.start + timedelta(hours=2)
    assert times.len() == 121
    load = dataset.rum()
    assert load.bad_lines == 0 and load.frame.height == len(result.beacons)
    assert load.frame["ts"].min() >= scenario.start  # warm-up beacons are not kept
    labels = dataset.labels
    assert labels["seed"] == scenario.seed and labels["engine"] == "simulated"
    assert yaml.safe_load((folder / "scenario.yaml").read_text())["seed"] == scenario.seed


def test_counters_match_the_ground_truth(tiny_run) -> None:
    """The scraped counters end where the run's own accounting says (window part only)."""
    _, result, _ = tiny_run
    samples = result.samples
    for variant, truth in result.labels["truth"].items():
        last = samples.filter(
            (pl.col("variant") == variant) & (pl.col("timestamp") == samples["timestamp"].max())
        )
        opened = last.filter(pl.col("metric") == "ws_connections_total")["value"].item()
        assert opened == truth["connections_opened"]
        closes = last.filter(pl.col("metric") == "ws_closes_total")
        by_code = closes.group_by("code").agg(pl.col("value").sum())
        assert {r["code"]: int(r["value"]) for r in by_code.to_dicts()} == truth["closes"]


def test_timeline_faults_reach_server_and_clients(tiny_run) -> None:
    _, result, _ = tiny_run
    truth = result.labels["truth"]
    closes = {v: t["closes"] for v, t in truth.items()}
    assert closes["canary"].get("1012", 0) > 0 and closes["control"].get("1012", 0) > 0
    assert closes["canary"].get("4401", 0) > 0  # rotation, and tokens never refreshed
    assert closes["control"].get("4401", 0) == 0
    assert closes["control"].get("1013", 0) > 0  # drain
    assert truth["canary"]["duplicates_delivered"] > 0  # no dedup on the canary
    assert truth["canary"]["dedup_drops"] == 0
    # a 5-minute outage outlasts the 10 attempts: clients give up, users reload the page
    assert truth["control"]["give_ups"] > 0 and truth["control"]["manual_refreshes"] > 0
    frame = pl.DataFrame(result.beacons, infer_schema_length=None)
    herd = frame.filter(
        (pl.col("type") == "ws.reconnect_scheduled") & (pl.col("code") == 1012)
    ).select("variant", "backoff_ms")
    canary = herd.filter(pl.col("variant") == "canary")["backoff_ms"]
    control = herd.filter(pl.col("variant") == "control")["backoff_ms"]
    assert canary.len() > 0 and (canary == 1000.0).all()  # no jitter: everyone at 1 s
    assert control.min() >= 800 and control.max() <= 1200 and control.std() > 20


def test_incident_labels_follow_the_timeline(tiny_run) -> None:
    _, result, _ = tiny_run
    kinds = {(i["kind"], i["variant"]) for i in result.labels["incidents"]}
    assert ("server_restart", "canary") in kinds and ("server_drain", "control") in kinds
    assert ("auth_spike", "canary") in kinds and ("auth_spike", "control") not in kinds
    outage = next(i for i in result.labels["incidents"] if i["kind"] == "network_outage")
    assert outage["start"] == "2026-11-02T06:50:00+00:00"
    assert outage["end"] == "2026-11-02T06:55:00+00:00"


def test_cli_simulate_writes_the_folder_and_a_summary(tmp_path, tiny, capsys) -> None:
    tiny["duration"] = "30m"
    tiny["timeline"] = [{"kind": "restart", "at": "10m"}]
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(tiny))
    out = tmp_path / "out"
    assert main(["simulate", str(path), "--out", str(out), "--seed", "9", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "virtual h" in text and "events" in text and str(out) in text
    assert json.loads((out / "labels.json").read_text())["seed"] == 9
    assert yaml.safe_load((out / "scenario.yaml").read_text())["seed"] == 9
    assert (out / "metrics.om").read_text().endswith("# EOF\n")


def test_bundled_scenarios_are_found_by_name() -> None:
    assert load_scenario("aa_baseline").expect["canary_share"] == 0.1


def test_fast_scrape_sees_exactly_what_prometheus_client_exposes() -> None:
    """The engine reads collector values directly; it must match `registry.collect()`
    (a metric added to ServerMetrics and missed here would fail this test)."""
    metrics = ServerMetrics()
    metrics.opened(0.0, 1)
    metrics.opened(1.0, 2)
    metrics.closed(65.0, 1, 1006, "abnormal")
    metrics.frame_sent("typing")
    metrics.frame_sent("assistant_message", 3)
    metrics.advice("restart")
    metrics.ttfb(0.3)
    metrics.ttfb(12.0)

    def rows(samples):
        return sorted(
            (name, tuple(sorted(labels.items())), value) for name, labels, value in samples
        )

    expected = [
        (s.name, s.labels, float(s.value))
        for family in metrics.registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    ]
    assert rows(_snapshot(metrics)) == rows(expected)


def test_a_bundled_dataset_is_what_its_scenario_and_this_code_produce(tmp_path) -> None:
    """Regenerating a bundled dataset gives the same data back (else: regenerate data/
    with `wsanalysis simulate NAME --out data/NAME` for every bundled scenario)."""
    name = "before_after_after"
    bundled = DATA / name
    again = write_dataset(simulate(load_scenario(bundled / "scenario.yaml")), tmp_path / name)
    for file in ("rum.ndjson.gz", "labels.json", "scenario.yaml"):
        new, old = (again / file).read_bytes(), (bundled / file).read_bytes()
        if file.endswith(".gz"):  # the content, whatever compression level a writer picks
            new, old = gzip.decompress(new), gzip.decompress(old)
        assert new == old, file
    # the same samples; the writer now puts histogram buckets in increasing `le` (the
    # OpenMetrics order), so the bundled files' line order may differ from today's
    assert Dataset.open(again).metrics().equals(Dataset.open(bundled).metrics())
