"""write_rum → read_rum gives the same frame, in every format; bulk parsing agrees
with the line-by-line reference rules."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.rum import beacons_frame, read_rum, write_rum
from wsanalysis.sources.schema import RUM_SCHEMA

HOSTILE = "<script>alert(1)</script>"


def sample_beacons() -> list[dict]:
    return [
        {"v": 1, "ts": 1_795_564_800_000, "type": "ws.open", "session_id": "s1",
         "variant": "canary", "socket_id": "k1", "attempt": 1},
        {"v": 1, "ts": 1_795_564_801_000, "type": "ws.close", "session_id": "s1",
         "variant": "canary", "code": 4401, "reason": HOSTILE, "duration_ms": 1000.0},
        {"v": 1, "ts": 1_795_564_802_000, "type": "ws.summary", "session_id": "s2",
         "variant": "control", "close_codes": {"1000": 2, "1006": 1}, "avg_backoff_ms": 1.5,
         "note": "naïve \u2028 \"quoted\" \\ back"},
        {"v": 1, "ts": 1_795_564_803_000, "type": "ws.offline", "session_id": "s2",
         "variant": "control", "online": False, "user": "ab12"},
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["rum.ndjson", "rum.ndjson.gz", "rum.jsonl", "rum.parquet", "rum"])
def test_round_trip_every_format(tmp_path: Path, name: str) -> None:
    frame = beacons_frame(sample_beacons())
    write_rum(sample_beacons(), tmp_path / name)
    back = read_rum(tmp_path / name).frame
    assert back.schema == pl.Schema(RUM_SCHEMA)
    assert back.sort("ts").equals(frame)
    assert back.filter(pl.col("type") == "ws.close")["reason"][0] == HOSTILE


def test_written_ndjson_is_the_contract(tmp_path: Path) -> None:
    write_rum(sample_beacons(), tmp_path / "rum.ndjson")
    text = (tmp_path / "rum.ndjson").read_text(encoding="utf-8")
    lines = [json.loads(x) for x in text.rstrip("\n").split("\n")]  # not splitlines: U+2028
    assert lines == sample_beacons()  # same keys, same values: nulls are left out


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    write_rum(sample_beacons(), tmp_path / "a.ndjson.gz")
    write_rum(beacons_frame(sample_beacons()), tmp_path / "b.ndjson.gz")
    a, b = (tmp_path / "a.ndjson.gz").read_bytes(), (tmp_path / "b.ndjson.gz").read_bytes()
    assert a == b and gzip.decompress(a).count(b"\n") == 4


def test_frame_with_foreign_columns_and_epoch_ts(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"v": [1], "ts": [1_795_564_800_000], "type": ["ws.ttfb"], "session_id": ["s"],
         "variant": ["canary"], "ttfb_ms": [12], "region": ["eu"]}
    )  # fmt: skip
    write_rum(frame, tmp_path / "rum.ndjson")
    assert json.loads((tmp_path / "rum.ndjson").read_text())["region"] == "eu"
    back = read_rum(tmp_path / "rum.ndjson").frame
    assert back["ttfb_ms"][0] == 12.0 and back["extra"][0] == '{"region":"eu"}'


def test_writer_refuses_bad_beacons_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="#1.*missing required field: variant"):
        write_rum([sample_beacons()[0], {"v": 1, "ts": 1, "type": "x", "session_id": "s"}],
                  tmp_path / "x.ndjson")  # fmt: skip
    with pytest.raises(UsageError, match="which format"):
        write_rum(sample_beacons(), tmp_path / "x.csv")


def test_empty_input_writes_an_empty_file(tmp_path: Path) -> None:
    write_rum([], tmp_path / "rum.ndjson.gz")
    load = read_rum(tmp_path / "rum.ndjson.gz")
    assert load.frame.is_empty() and load.bad_lines == 0


# --- property: bulk parsing == the line-by-line reference ---------------------------

text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=8)
scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | text
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
)
value = st.recursive(scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
                     max_leaves=6)  # fmt: skip
known_values = {
    "v": st.integers(0, 3) | text,
    "ts": st.integers(0, 2**41) | st.floats(0, 2**41, allow_nan=False) | text,
    "type": text | st.integers(0, 9),
    "session_id": text | st.integers(0, 9) | st.none(),
    "variant": st.sampled_from(["canary", "control"]),
    "code": st.integers(1000, 4999) | st.floats(1000, 4999, allow_nan=False) | text,
    "online": st.booleans() | text,
    "ttfb_ms": st.floats(0, 1e6, allow_nan=False) | st.integers(0, 10**6) | text,
}
beacon = st.fixed_dictionaries(
    {k: known_values[k] for k in ("v", "ts", "type", "session_id", "variant")},
    optional={
        "code": known_values["code"],
        "online": known_values["online"],
        "ttfb_ms": known_values["ttfb_ms"],
        "x": value,
        HOSTILE: value,
    },
)
line = beacon.map(lambda b: json.dumps(b, ensure_ascii=False)) | st.sampled_from(
    ["", "{", "[]", "null", '{"v":1}', "\u00e9", "{}"]
)


def reference(lines: list[str]) -> tuple[list[dict], list[int]]:
    """Expected rows and bad line numbers by the documented rules, in plain Python."""
    rows, bad = [], []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        ok = isinstance(obj, dict) and all(obj.get(k) is not None for k in
                                           ("v", "ts", "type", "session_id", "variant"))  # fmt: skip
        if ok:
            checks = {
                "v": lambda x: (
                    isinstance(x, int)
                    and not isinstance(x, bool)
                    or isinstance(x, float)
                    and x.is_integer()
                ),
                "ts": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
                "type": lambda x: not isinstance(x, dict | list),
                "session_id": lambda x: not isinstance(x, dict | list),
                "code": lambda x: (
                    x is None
                    or isinstance(x, int)
                    and not isinstance(x, bool)
                    or isinstance(x, float)
                    and x.is_integer()
                ),
                "online": lambda x: x is None or isinstance(x, bool),
                "ttfb_ms": lambda x: (
                    x is None or isinstance(x, int | float) and not isinstance(x, bool)
                ),
            }
            ok = all(check(obj.get(k)) for k, check in checks.items())
        if not ok:
            bad.append(number)
            continue
        extra = {k: v for k, v in obj.items() if k not in RUM_SCHEMA or k == "extra"}
        rows.append({"session_id": obj["session_id"], "extra": extra or None})
    return rows, bad


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(line, max_size=25))
def test_bulk_parsing_agrees_with_reference_rules(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "p.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load = read_rum(path, quarantine=tmp_path / "bad.txt")
    rows, bad = reference(lines)
    assert load.bad_lines == len(bad)
    quarantined = [json.loads(x[2:])["line"] for x in (tmp_path / "bad.txt").read_text(
        encoding="utf-8").splitlines() if x.startswith('# {"line"')]  # fmt: skip
    assert quarantined == bad
    got = [
        {"session_id": s, "extra": None if e is None else json.loads(e)}
        for s, e in load.frame.select("session_id", "extra").iter_rows()
    ]
    want = [
        r | {"session_id": r["session_id"] if isinstance(r["session_id"], str)
             else json.dumps(r["session_id"])}
        for r in rows
    ]  # fmt: skip
    assert got == want
