"""Per-minute counts and exposures built by hand: what every scanned signal stands on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from wsanalysis.incident.findings import Finding, dumps, severity_from
from wsanalysis.incident.impact import severity
from wsanalysis.incident.inputs import from_frames
from wsanalysis.incident.signals import (
    SIGNALS,
    active_connections,
    rum_live,
    server_signal,
    sessions_hit,
    sessions_in,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _samples(rows: list[tuple[int, str, str, float, str | None]]) -> pl.DataFrame:
    """(second, metric, variant, value, code) -> a samples frame."""
    return pl.DataFrame(
        {
            "timestamp": [T0 + timedelta(seconds=s) for s, *_ in rows],
            "metric": [m for _, m, *_ in rows],
            "variant": [v for _, _, v, *_ in rows],
            "value": [x for *_, x, _ in rows],
            "code": [c for *_, c in rows],
        },
        schema_overrides={"code": pl.Utf8},
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))


def test_a_series_seen_in_one_scrape_is_counted_where_it_was_scraped():
    # a labelled counter created just before its process restarted is in one scrape only:
    # its step cannot be told from itself, so the other scrapes tell it (30 s here)
    opened = [(s, "ws_connections_total", v, float(s), None)
              for s in range(0, 7200, 30) for v in ("canary", "control")]  # fmt: skip
    closes = [(3630, "ws_closes_total", "control", 476.0, "1012"),
              (5430, "ws_closes_total", "canary", 239.0, "1012")]  # fmt: skip
    data = from_frames(_samples(opened + closes), None)
    counts = server_signal(data, SIGNALS["restarts"]).filter(pl.col("n") > 0)
    assert sorted((r["variant"], r["bucket"], r["n"]) for r in counts.iter_rows(named=True)) == [
        ("canary", T0 + timedelta(minutes=90), 239.0),
        ("control", T0 + timedelta(minutes=60), 476.0),
    ]


def test_open_connections_sum_pods_and_carry_into_minutes_without_a_scrape():
    rows = [(s, "ws_connections_active", "canary", 10.0, None) for s in range(0, 600, 120)]
    rows += [(s, "ws_connections_active", "canary", 5.0, None) for s in range(0, 600, 120)]
    frame = _samples(rows).with_columns(
        pl.Series("pod", ["a"] * 5 + ["b"] * 5)
    )  # two pods: 10 + 5 open connections
    active = active_connections(from_frames(frame, None))
    assert active["n"].to_list() == [15.0] * active.height
    assert active.height == 8  # every minute of the window, scraped or not


def test_rum_live_counts_sockets_open_in_each_minute():
    ms = 60_000
    beacons = pl.DataFrame(
        {
            "ts": [0, 3 * ms, 1 * ms, 9 * ms - 1, 2 * ms],
            "type": ["ws.open", "ws.close", "ws.open", "ws.close", "ws.close"],
            "session_id": ["a", "a", "b", "b", "c"],
            "socket_id": ["a1", "a1", "b1", "b1", "c0"],  # c0 opened before the window
            "variant": "canary",
        }
    ).with_columns((pl.col("ts") + int(T0.timestamp() * 1000)).cast(pl.Datetime("ms", "UTC")))
    live = rum_live(from_frames(None, beacons))
    assert live["n"].to_list() == [2.0, 3.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_severity_needs_the_strict_level_and_the_share_of_users_hit():
    assert severity(0.20, True) == "high"
    assert severity(0.02, True) == "medium"
    assert severity(0.002, True) == "low"
    assert severity(0.20, False) == "low"  # a large share on weak evidence stays low
    assert severity(None, True) == "low"


def test_severity_and_dumps():
    assert severity_from(5, 2, 4) == "high"
    assert severity_from(3, 2, 4) == "medium"
    assert severity_from(1, 2, 4) == "low"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    text = dumps([Finding("x", at, at, "canary", "low", "s", {"r": float("nan")})], [], {})
    assert '"r": null' in text


def test_sessions_in_a_span_are_those_a_filter_of_every_beacon_finds_sorted_or_not():
    # sessions_in / sessions_hit slice the beacons in time order (found once per data):
    # the same sessions as a filter over all of them, whether the beacons came sorted
    # or not, at spans ending anywhere (a microsecond past a beacon's millisecond too)
    from tests.incident.conftest import loaded

    given = loaded("network_outage")
    shuffled = from_frames(given.samples, given.beacons.sample(fraction=1.0, shuffle=True, seed=1))
    where = SIGNALS["1006"].rum_where()
    stamps = given.beacons["ts"].to_list()
    spans = [(stamps[i], stamps[j] + timedelta(microseconds=k))
             for i, j, k in ((0, 10, 0), (5, 5000, 1), (100, 90, 0), (3000, len(stamps) - 1, 0),
                             (2000, 2500, 999))]  # fmt: skip
    checked = 0
    for start, end in spans:
        for variant in ("canary", "control"):
            inside = given.beacons.filter(
                (pl.col("variant") == variant) & (pl.col("ts") >= start) & (pl.col("ts") < end)
            )
            for data in (given, shuffled):
                assert sessions_in(data, variant, start, end) == inside["session_id"].n_unique()
                hit = inside.filter(where)["session_id"].n_unique()
                assert sessions_hit(data, variant, start, end, where) == hit
                checked += hit
    assert checked > 0  # some spans hold 1006 closes


def test_previous_row_of_a_group_and_session_spans_match_polars():
    from wsanalysis.incident.shifts import _previous, _spans

    rng = np.random.default_rng(7)
    group = rng.integers(0, 40, 2000).astype(np.uint32)
    ms = rng.integers(0, 10**9, 2000)
    frame = pl.DataFrame({"g": group, "ms": ms}).with_row_index("row")
    want = frame.select(pl.col("row").shift(1).over("g").fill_null(-1))["row"].to_numpy()
    assert np.array_equal(_previous(group), want)
    spans = frame.group_by("g").agg(pl.col("ms").min().alias("first"),
                                    pl.col("ms").max().alias("last")).sort("g")  # fmt: skip
    got = _spans({"ms": ms, "code": group})
    assert np.array_equal(got["code"], spans["g"].to_numpy())
    assert np.array_equal(got["first"], spans["first"].to_numpy())
    assert np.array_equal(got["last"], spans["last"].to_numpy())
