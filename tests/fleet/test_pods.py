"""Pods: a variant served by several replicas, each scraped as its own target.

Dealing connections to pods takes no random draw, so a run with pods is the run without
them, split: every per-variant counter, bucket and gauge sums back exactly (a
histogram's `_sum` up to float addition order), and the beacons are the same bytes.
One bad pod changes only what that pod serves.
"""

from __future__ import annotations

import copy

import polars as pl
import pytest

from wsanalysis.errors import UsageError
from wsanalysis.reference.fleet import simulate
from wsanalysis.reference.fleet_sockets import check_supported
from wsanalysis.reference.scenario import ScenarioError, parse_scenario

from .conftest import TINY

KEYS = ["timestamp", "metric", "variant", "code", "reason", "le", "event", "why"]


def _with_pods(control: object, canary: object = None) -> dict:
    raw = copy.deepcopy(TINY)
    raw["variants"]["control"]["pods"] = control
    if canary is not None:
        raw["variants"]["canary"]["pods"] = canary
    return raw


@pytest.fixture(scope="module")
def runs():
    plain = simulate(parse_scenario(copy.deepcopy(TINY)))
    podded = simulate(parse_scenario(_with_pods(3, 2)))
    return plain, podded


def _by_variant(frame: pl.DataFrame) -> pl.DataFrame:
    keys = [k for k in KEYS if k in frame.columns]
    filled = frame.with_columns(pl.col(k).fill_null("") for k in keys if k != "timestamp")
    return filled.group_by(keys).agg(pl.col("value").sum()).sort(keys)


def test_pods_split_the_variants_series_and_sum_back_to_them(runs) -> None:
    plain, podded = runs
    assert "pod" not in plain.samples.columns  # one pod: no pod label, as before pods
    pods = podded.samples.group_by("variant").agg(pl.col("pod").unique().sort())
    assert {r["variant"]: r["pod"] for r in pods.iter_rows(named=True)} == {
        "control": ["control-0", "control-1", "control-2"],
        "canary": ["canary-0", "canary-1"],
    }
    before, after = _by_variant(plain.samples), _by_variant(podded.samples)
    assert before.drop("value").equals(after.drop("value"))
    exact = ~pl.col("metric").str.ends_with("_sum")
    assert before.filter(exact).equals(after.filter(exact))
    sums = before.filter(~exact)["value"].to_numpy(), after.filter(~exact)["value"].to_numpy()
    assert sums[0] == pytest.approx(sums[1], rel=1e-12)
    assert plain.beacons == podded.beacons  # no random stream moved
    assert plain.labels["truth"] == podded.labels["truth"]


def test_connections_are_dealt_to_the_pods_in_turn(runs) -> None:
    _, podded = runs
    last = podded.samples.filter(pl.col("metric") == "ws_connections_total").group_by(
        "variant", "pod"
    ).agg(pl.col("value").max())  # fmt: skip
    for variant in ("control", "canary"):
        opened = last.filter(pl.col("variant") == variant)["value"]
        assert opened.min() > 0 and opened.max() - opened.min() <= 1, opened.to_list()
    labels = podded.labels["variants"]
    assert labels["control"]["pods"] == ["control-0", "control-1", "control-2"]


def test_one_bad_pod_misbehaves_alone() -> None:
    raw = _with_pods(
        {"count": 3, "bad": {"pod": 1, "server": {"internal_error_p": 0.5}, "note": "bad node"}}
    )
    raw["variants"]["control"]["server"] = {"internal_error_p": 0.0}
    raw["timeline"] = [t for t in raw["timeline"] if t["kind"] != "server_faults"]
    result = simulate(parse_scenario(raw))
    errors = result.samples.filter(
        (pl.col("metric") == "ws_frames_sent_total")
        & (pl.col("event") == "error")
        & (pl.col("variant") == "control")
    )
    per_pod = errors.group_by("pod").agg(pl.col("value").max())
    assert per_pod["pod"].to_list() == ["control-1"], per_pod  # nobody else ever erred
    assert per_pod["value"][0] > 20
    fault = next(
        f for f in result.labels["variants"]["control"]["faults"] if f["kind"] == "bad_pod"
    )
    assert fault["pod"] == "control-1" and fault["server"] == {"internal_error_p": 0.5}
    assert fault["note"] == "bad node"


@pytest.mark.parametrize(
    ("pods", "field", "reason"),
    [
        (0, "variants.control.pods", "outside"),
        (2.5, "variants.control.pods", "whole number"),
        ({"bad": {"pod": 0}}, "variants.control.pods.count", "required"),
        ({"count": 1, "bad": {"pod": 0, "server": {"internal_error_p": 0.1}}},
         "variants.control.pods.bad", "at least two pods"),
        ({"count": 3, "bad": {"pod": 3, "server": {"internal_error_p": 0.1}}},
         "variants.control.pods.bad.pod", "outside"),
        ({"count": 3, "bad": {"pod": 0}}, "variants.control.pods.bad", "`server` settings"),
        ({"count": 3, "bad": {"pod": 0, "server": {"colour": 1}}},
         "variants.control.pods.bad.server.colour", "unknown field"),
        ({"count": 3, "spare": 1}, "variants.control.pods.spare", "unknown field"),
    ],
)  # fmt: skip
def test_malformed_pods_name_the_field(pods: object, field: str, reason: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(_with_pods(pods))
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_the_sockets_engine_refuses_several_pods() -> None:
    raw = _with_pods(2)
    raw["timeline"] = []
    with pytest.raises(UsageError, match="one server per variant"):
        check_supported(parse_scenario(raw))


def test_the_overview_of_a_run_with_pods_is_the_run_without(runs) -> None:
    from wsanalysis.overview import metrics_overview

    plain, podded = runs
    before, after = metrics_overview(plain.samples), metrics_overview(podded.samples)
    # open connections at a scrape are the sum over the pods; connections opened too.
    # (A close code a pod first sees inside the window starts a new series whose first
    # count no increase() sees, as in PromQL: closes by code may read lower with pods.)
    for column in ("connections", "active_mean"):
        assert after[column].to_list() == pytest.approx(before[column].to_list()), column
