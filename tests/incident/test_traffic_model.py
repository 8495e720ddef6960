"""The second traffic model (`wsanalysis.traffic`): seeded, in the contract's dataset
layout, and as rough as production traffic (bursty arrivals, heavy-tailed sessions,
errors clustered on a few users), with labels that say how many users an injection hit."""

from __future__ import annotations

import gzip
import json

import numpy as np
import polars as pl

from wsanalysis.incident.inputs import load_dataset
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.metric_names import (
    ASSISTANT_TTFB,
    CLOSES_TOTAL,
    CONNECTION_DURATION,
    CONNECTIONS_ACTIVE,
    CONNECTIONS_TOTAL,
    FRAMES_SENT_TOTAL,
)
from wsanalysis.traffic import generate, simulate, traffic
from wsanalysis.traffic.dataset import incidents


def _files(folder) -> dict[str, bytes]:
    return {
        "metrics": (folder / "metrics.om").read_bytes(),
        "rum": gzip.decompress((folder / "rum.ndjson.gz").read_bytes()),
        "labels": (folder / "labels.json").read_bytes(),
    }


def test_one_seed_one_dataset(tmp_path):
    a = _files(generate("restarts", tmp_path / "a", seed=5, hours=2))
    b = _files(generate("restarts", tmp_path / "b", seed=5, hours=2))
    c = _files(generate("restarts", tmp_path / "c", seed=6, hours=2))
    assert a == b
    assert a["metrics"] != c["metrics"] and a["rum"] != c["rum"]


def test_a_dataset_folder_in_the_contracts_layout(tmp_path):
    folder = generate("restarts", tmp_path / "d", seed=7, hours=9)
    labels = json.loads((folder / "labels.json").read_text())
    assert {"window", "rum", "variants", "incidents", "truth"} <= labels.keys()
    assert labels["rum"]["session_sample"] == 0.1
    (control, canary) = sorted(labels["incidents"], key=lambda i: i["start"])
    assert (control["kind"], control["variant"], control["scope"]) == (
        "server_restart", "control", "control")  # fmt: skip
    assert (canary["variant"], canary["start"][11:16]) == ("canary", "14:00")
    data = load_dataset(folder)
    names = set(data.samples["metric"].unique())
    assert {CONNECTIONS_TOTAL, CONNECTIONS_ACTIVE, CLOSES_TOTAL, FRAMES_SENT_TOTAL,
            f"{CONNECTION_DURATION}_bucket", f"{ASSISTANT_TTFB}_bucket"} <= names  # fmt: skip
    assert data.samples["pod"].n_unique() == 4  # one canary pod, three control pods
    types = set(data.beacons["type"].unique())
    assert {"ws.open", "ws.close", "ws.reconnect_scheduled", "ws.ttfb"} <= types
    assert data.window.duration.total_seconds() == 9 * 3600
    # the restarted pod's counters start again from zero: the reset a restart leaves
    opened = data.samples.filter(
        (pl.col("metric") == CONNECTIONS_TOTAL) & (pl.col("pod") == "control-1")
    ).sort("timestamp")["value"]
    assert (opened.diff().drop_nulls() < 0).sum() == 1
    assert Dataset.open(folder).metrics_load().dropped_lines == 0


def test_traffic_is_bursty_heavy_tailed_and_clustered():
    run = simulate(traffic("aa_bursty", seed=3, hours=6))
    start = run.traffic.window_start
    lengths = run.sessions["leave"] - run.sessions["arrive"]
    whole = lengths[run.sessions["leave"] < run.traffic.horizon]
    assert np.quantile(whole, 0.99) > 10 * np.median(whole)  # heavy-tailed sessions
    arrivals = np.bincount(((run.sessions["arrive"][run.sessions["arrive"] >= start]
                             - start) // 60).astype(int))  # fmt: skip
    assert arrivals.var() > 3 * arrivals.mean()  # batch arrivals and load swings
    frames = run.error_frames["time"]
    per_minute = np.bincount(((frames[frames >= start] - start) // 60).astype(int))
    assert per_minute.var() > 3 * per_minute.mean()  # errors come in bursts
    conn = run.connections
    owner = np.concatenate([conn["session"][conn["code"] == 1011]])
    counts = np.sort(np.bincount(owner))[::-1]
    assert counts[: max(1, len(counts) // 20)].sum() > 0.2 * counts.sum()  # on few users


def test_labels_say_how_many_users_an_injection_hit():
    run = simulate(traffic("auth_hour_x30", seed=4, hours=8))
    (spike,) = incidents(run)
    assert (spike["kind"], spike["variant"], spike["scope"]) == ("auth_spike", "canary", "canary")
    assert spike["start"][11:16] == "12:00" and spike["end"][11:16] == "13:00"
    assert spike["share_hit"] > 0.05 and spike["severity"] == "high"
    harmless = simulate(traffic("aa_ttfb_plus30", seed=4, hours=3))
    assert incidents(harmless) == []  # an injection without a label is no incident
