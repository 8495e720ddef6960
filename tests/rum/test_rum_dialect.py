"""Beacons in another service's dialect, read through a telemetry mapping: the same RUM
frame as the contract's beacons (NDJSON, Parquet, Datadog), and its errors in the user's
field names."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from wsanalysis.sources.rum import read_rum
from wsanalysis.sources.telemetry import parse_telemetry

T0 = 1_795_564_800_000
FIELDS = {"ts": "time_ms", "type": "event", "session_id": "sid", "variant": "track",
          "code": "close_code", "ttfb_ms": "reply_ms", "socket_id": "sock"}  # fmt: skip
TYPES = {"ws.open": "socket.opened", "ws.close": "socket.closed", "ws.ttfb": "chat.first_token"}
MAPPING = parse_telemetry(
    {
        "variants": {"label": "track", "values": {"canary": "canary", "control": "stable"}},
        "label_values": {"code": {"4401": "4003"}},
        "rum": {"fields": FIELDS, "types": TYPES},
    }
)


def reference_beacons(n: int = 60) -> list[dict]:
    beacons = []
    for i in range(n):
        kind = ("ws.open", "ws.close", "ws.ttfb")[i % 3]
        beacon = {"v": 1, "ts": T0 + i * 1000, "type": kind, "session_id": f"s{i % 7}",
                  "variant": "canary" if i % 2 else "control", "socket_id": f"k{i}"}  # fmt: skip
        if kind == "ws.close":
            beacon["code"] = 4401 if i % 4 == 1 else 1000
        if kind == "ws.ttfb":
            beacon["ttfb_ms"] = 100.0 + i
        if i % 5 == 0:
            beacon["note"] = {"free": i}  # an unknown field: kept in `extra`
        beacons.append(beacon)
    return beacons


def in_dialect(beacon: dict) -> dict:
    out = {}
    for key, value in beacon.items():
        if key == "v":
            continue  # a mapped dialect need not send the contract's version
        if key == "type":
            value = TYPES[value]
        elif key == "variant":
            value = {"control": "stable"}.get(value, value)
        elif key == "code":
            value = 4003 if value == 4401 else value
        out[FIELDS.get(key, key)] = value
    return out


def ndjson(path: Path, beacons: list[dict]) -> Path:
    lines = "".join(json.dumps(b, ensure_ascii=False) + "\n" for b in beacons)
    path.write_bytes(gzip.compress(lines.encode()))
    return path


def same_frames(dialect: pl.DataFrame, reference: pl.DataFrame) -> None:
    assert dialect.columns == reference.columns
    assert dialect.drop("v").equals(reference.drop("v"))
    assert dialect["v"].null_count() == dialect.height


def test_ndjson_in_a_dialect_reads_as_the_contract(tmp_path: Path):
    beacons = reference_beacons()
    reference = read_rum(ndjson(tmp_path / "ref.ndjson.gz", beacons))
    dialect = read_rum(
        ndjson(tmp_path / "dialect.ndjson.gz", [in_dialect(b) for b in beacons]), telemetry=MAPPING
    )
    assert dialect.bad_lines == 0
    same_frames(dialect.frame, reference.frame)
    assert set(dialect.frame["variant"]) == {"canary", "control"}
    assert dialect.frame.filter(pl.col("code") == 4401).height == 5


def test_a_missing_field_is_named_as_the_user_spells_it(tmp_path: Path):
    beacon = in_dialect(reference_beacons(1)[0])
    del beacon["track"]
    load = read_rum(ndjson(tmp_path / "x.ndjson.gz", [beacon]), telemetry=MAPPING)
    assert load.bad_lines == 1
    assert load.examples[0].reason == "missing required field: track"


def test_parquet_in_a_dialect(tmp_path: Path):
    beacons = reference_beacons()
    reference = read_rum(ndjson(tmp_path / "ref.ndjson.gz", beacons))
    rows = [in_dialect({k: v for k, v in b.items() if k != "note"}) for b in beacons]
    pl.DataFrame(rows).write_parquet(tmp_path / "dialect.parquet")
    dialect = read_rum(tmp_path / "dialect.parquet", telemetry=MAPPING).frame
    expected = reference.frame.drop("extra", "v")
    assert dialect.drop("extra", "v").sort("ts").equals(expected.sort("ts"))


def test_datadog_context_in_a_dialect(tmp_path: Path):
    context = in_dialect(reference_beacons(2)[1])  # a close with 4401, spelled 4003
    context.pop("time_ms")
    event = {
        "attributes": {
            "attributes": {"date": T0, "context": context, "session": {"id": "dd-1"}},
            "tags": [],
        }
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"data": [event]}))
    frame = read_rum(path, telemetry=MAPPING).frame
    assert frame.row(0, named=True) | {"extra": None} == {
        "v": 1, "ts": frame["ts"][0], "type": "ws.close", "session_id": "s1", "variant": "canary",
        "socket_id": "k1", "user": None, "thread_id": None, "trace": None, "code": 4401,
        "reason": None, "attempt": None, "backoff_ms": None, "duration_ms": None,
        "ttfb_ms": None, "online": None, "extra": None,
    }  # fmt: skip


@pytest.mark.parametrize("field", [None, "track"])
def test_variant_selectors_reach_the_beacons(tmp_path: Path, field: str | None):
    """Selectors are matched on the beacon fields of their labels' names; with
    `rum.fields.variant` the beacons' own variant field names the variant instead."""
    beacons = [dict(in_dialect(b), pod=f"p{i % 3}") for i, b in enumerate(reference_beacons())]
    fields = {k: v for k, v in FIELDS.items() if k != "variant"}
    rum = {"fields": {**fields, **({"variant": field} if field else {})}, "types": TYPES}
    if field:  # the field holds the roles' own names then
        for b in beacons:
            b["track"] = {"stable": "control"}.get(b["track"], b["track"])
    selectors = {"canary": 'track="canary"', "control": 'track="stable",pod!="p2"'}
    mapping = parse_telemetry({"variants": {"selectors": selectors}, "rum": rum})
    load = read_rum(ndjson(tmp_path / "s.ndjson.gz", beacons), telemetry=mapping)
    if field:
        assert load.unassigned == 0 and load.frame.height == len(beacons)
    else:
        left_out = sum(1 for b in beacons if b["track"] == "stable" and b["pod"] == "p2")
        assert load.unassigned == left_out > 0
        assert load.frame.height == len(beacons) - left_out
    assert set(load.frame["variant"]) == {"canary", "control"}
