"""NDJSON beacons: good lines become typed rows, bad lines are counted, never fatal."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.rum import read_rum
from wsanalysis.sources.schema import RUM_SCHEMA

T0 = 1_795_564_800_000  # 2026-11-25T00:00:00Z in epoch ms


def beacon(i: int = 0, **fields) -> dict:
    base = {"v": 1, "ts": T0 + i * 1000, "type": "ws.open", "session_id": f"s{i}"}
    base["variant"] = "canary" if i % 2 else "control"
    return base | fields


def write_lines(path: Path, lines: list[str | bytes], *, gz: bool = False) -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


BAD = [
    '{"v":1,"ts":17000',  # truncated write
    "not json at all",
    "[1,2,3]",
    dumps({"v": 1, "type": "ws.open", "session_id": "s", "variant": "canary"}),  # no ts
    dumps(beacon(9, code="abc", type="ws.close")),  # wrong type
    dumps(beacon(9, session_id=None)),  # required field null
    '{"v":1,"ts":1,"type":"ws.open",,"session_id":"s","variant":"c"}',  # braces ok, JSON not
]


def test_good_lines_become_typed_rows(tmp_path: Path) -> None:
    rows = [
        beacon(0, socket_id="k0", attempt=1),
        beacon(1, type="ws.close", code=1006, reason="abnormal", duration_ms=1234.5),
        beacon(2, type="ws.ttfb", ttfb_ms=420, thread_id="t1", trace="abc"),
        beacon(3, type="ws.offline", online=False),
    ]
    load = read_rum(write_lines(tmp_path / "b.ndjson", [dumps(r) for r in rows]))
    frame = load.frame
    assert frame.schema == pl.Schema(RUM_SCHEMA)
    assert frame.height == 4 and load.bad_lines == 0 and load.lines == 4
    assert frame["ts"][0] == datetime(2026, 11, 25, tzinfo=UTC)
    assert frame["code"].to_list() == [None, 1006, None, None]
    assert frame["ttfb_ms"][2] == 420.0  # an integer is a fine number
    assert frame["online"].to_list() == [None, None, None, False]
    assert frame["extra"].null_count() == 4


@pytest.mark.parametrize("gz", [False, True])
def test_bad_lines_are_counted_located_and_never_fatal(tmp_path: Path, gz: bool) -> None:
    good = [dumps(beacon(i)) for i in range(5)]
    lines = good[:2] + BAD + good[2:]
    load = read_rum(write_lines(tmp_path / "b.ndjson", lines, gz=gz))
    assert load.frame.height == 5
    assert load.frame["session_id"].to_list() == [f"s{i}" for i in range(5)]
    assert load.bad_lines == len(BAD)
    assert [e.line for e in load.examples] == [3, 4, 5, 6, 7]  # 1-based, in file order
    reasons = [e.reason for e in load.examples]
    assert reasons[0].startswith("not JSON")
    assert reasons[2] == "not a JSON object: array"
    assert reasons[3] == "missing required field: ts"
    assert reasons[4] == "wrong type: code should be an integer, not string"
    assert load.bad_reasons["missing required field"] == 2
    assert "line 3" in load.summary()


def test_many_scattered_bad_lines_keep_every_good_row(tmp_path: Path) -> None:
    lines = []
    for i in range(3000):
        lines.append(dumps(beacon(i)))
        if i % 97 == 0:
            lines.append('{"v":1,"ts":1,"type":"x",,"session_id":"s","variant":"c"}')
    load = read_rum(write_lines(tmp_path / "b.ndjson", lines))
    assert load.frame.height == 3000
    assert load.bad_lines == len(range(0, 3000, 97))
    assert load.frame["ts"].is_sorted()


def test_unknown_fields_and_types_are_kept(tmp_path: Path) -> None:
    rows = [
        beacon(0, type="ws.summary", close_codes={"1000": 3, "4401": 1}, avg_backoff_ms=812.5),
        beacon(1, type="ws.future_thing", flag=True, note="n"),
        beacon(2),
    ]
    frame = read_rum(write_lines(tmp_path / "b.ndjson", [dumps(r) for r in rows])).frame
    assert frame["type"].to_list() == ["ws.summary", "ws.future_thing", "ws.open"]
    extras = [None if e is None else json.loads(e) for e in frame["extra"]]
    assert extras == [
        {"close_codes": {"1000": 3, "4401": 1}, "avg_backoff_ms": 812.5},
        {"flag": True, "note": "n"},
        None,
    ]


def test_unknown_fields_of_mixed_types_are_kept_as_written(tmp_path: Path) -> None:
    rows = [beacon(0, x=1), beacon(1, x={"a": [1, 2]}), beacon(2, x="s"), beacon(3, x=None)]
    load = read_rum(write_lines(tmp_path / "b.ndjson", [dumps(r) for r in rows]))
    assert load.bad_lines == 0
    assert [json.loads(e)["x"] for e in load.frame["extra"]] == [1, {"a": [1, 2]}, "s", None]


def test_lenient_where_harmless_strict_where_it_matters(tmp_path: Path) -> None:
    rows = [
        beacon(0, session_id=12345),  # numeric id: kept as its text
        beacon(1, code=1006.0),  # integral float for an integer field
        beacon(2, code=1006.5),  # not an integer
        beacon(3, online="yes"),  # not a boolean
        beacon(4, ts="2026-11-25T00:00:00Z"),  # ts must be epoch ms
    ]
    load = read_rum(write_lines(tmp_path / "b.ndjson", [dumps(r) for r in rows]))
    assert load.frame["session_id"].to_list() == ["12345", "s1"]
    assert load.frame["code"].to_list() == [None, 1006]
    assert [e.line for e in load.examples] == [3, 4, 5]
    assert all(e.reason.startswith("wrong type") for e in load.examples)


def test_hostile_text_is_kept_verbatim(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    rows = [beacon(0, reason=hostile, type="ws.close", **{hostile: hostile})]
    frame = read_rum(write_lines(tmp_path / "b.ndjson", [dumps(r) for r in rows])).frame
    assert frame["reason"][0] == hostile
    assert json.loads(frame["extra"][0]) == {hostile: hostile}


def test_non_utf8_line_is_a_bad_line_not_a_crash(tmp_path: Path) -> None:
    lines = [dumps(beacon(0)), b'{"v":1,"ts":1,"type":"\xff\xfe","session_id":"s","variant":"c"}']
    lines.append(dumps(beacon(2, reason="café ✓")))
    load = read_rum(write_lines(tmp_path / "b.ndjson", lines))
    assert load.frame.height == 2 and load.frame["reason"][1] == "café ✓"
    assert load.bad_lines == 1
    assert load.examples[0].line == 2 and load.examples[0].reason.startswith("not UTF-8")


def test_empty_and_blank_files_give_an_empty_frame(tmp_path: Path) -> None:
    for name, data in [("empty.ndjson", b""), ("blank.ndjson", b"\n  \n\r\n")]:
        (tmp_path / name).write_bytes(data)
        load = read_rum(tmp_path / name)
        assert load.frame.is_empty() and load.frame.schema == pl.Schema(RUM_SCHEMA)
        assert load.bad_lines == 0


def test_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "b.ndjson"
    path.write_bytes(f"{dumps(beacon(0))}\r\n{dumps(beacon(1))}".encode())
    load = read_rum(path)
    assert load.frame["session_id"].to_list() == ["s0", "s1"] and load.bad_lines == 0


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    lines = [dumps(beacon(i)) for i in range(10)]
    plain = read_rum(write_lines(tmp_path / "plain.ndjson", lines)).frame
    disguised = read_rum(write_lines(tmp_path / "disguised.ndjson", lines, gz=True)).frame
    named = read_rum(write_lines(tmp_path / "named.ndjson.gz", lines, gz=True)).frame
    assert plain.equals(disguised) and plain.equals(named) and plain.height == 10


def test_truncated_gzip_is_a_clear_data_error(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(dumps(beacon(i)).encode() + b"\n" for i in range(500)))
    path = tmp_path / "cut.ndjson.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="gzip"):
        read_rum(path)


def test_unknown_values_polars_would_alter_are_kept_exactly(tmp_path: Path) -> None:
    """Found by the property test: a 16-digit float in a nested unknown value (polars'
    nested reader rounds its last digit) and an empty object (a struct of no fields)."""
    rows = [beacon(0, x=[0.9999899864196777]), beacon(1, x={}), beacon(2, y=0.1234567890123456)]
    load = read_rum(write_lines(tmp_path / "b.ndjson", [dumps(r) for r in rows]))
    assert [json.loads(e) for e in load.frame["extra"]] == [
        {"x": [0.9999899864196777]},
        {"x": {}},
        {"y": 0.1234567890123456},
    ]


def test_a_gzip_damaged_half_way_leaves_no_half_quarantine(tmp_path: Path) -> None:
    """The file is inflated while it is parsed: bad lines already found are not left
    behind in a quarantine file when the rest of the file turns out to be damaged."""
    lines = [BAD[0], *(dumps(beacon(i)) for i in range(20_000))]
    data = gzip.compress("\n".join(lines).encode(), compresslevel=1)
    path = tmp_path / "cut.ndjson.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    quarantine = tmp_path / "bad.ndjson"
    with pytest.raises(DataError, match="gzip"):
        read_rum(path, quarantine=quarantine)
    assert not quarantine.exists()


def test_streamed_slices_and_gzip_members_give_the_same_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny inflate blocks and slices (lines cut across blocks, slices of one line) and a
    file of two gzip members (`cat a.gz b.gz`) read as the whole text does."""
    from wsanalysis.sources.rum import files, ndjson

    lines = [dumps(beacon(i, type="ws.summary", n={"a": i})) for i in range(300)]
    lines[17] = BAD[0]
    whole = read_rum(write_lines(tmp_path / "b.ndjson", lines))
    text = "\n".join(lines).encode() + b"\n"
    two = tmp_path / "two.ndjson.gz"
    two.write_bytes(gzip.compress(text[:5000]) + gzip.compress(text[5000:]))
    monkeypatch.setattr(files, "STREAM_BLOCK", 97)
    monkeypatch.setattr(ndjson, "CHUNK_BYTES", 200)
    for path in (two, write_lines(tmp_path / "b2.ndjson", lines)):
        load = read_rum(path)
        assert load.frame.equals(whole.frame) and load.lines == 300
        assert [e.line for e in load.examples] == [e.line for e in whole.examples] == [18]


def test_quarantine_holds_each_bad_line_and_its_reason(tmp_path: Path) -> None:
    lines = [dumps(beacon(0)), *BAD[:3], dumps(beacon(1))]
    quarantine = tmp_path / "out" / "bad.ndjson"
    load = read_rum(write_lines(tmp_path / "b.ndjson", lines), quarantine=quarantine)
    assert load.quarantine == quarantine
    text = quarantine.read_text().splitlines()
    assert text[0::2] == BAD[:3]  # the original lines, byte for byte
    notes = [json.loads(t.removeprefix("# ")) for t in text[1::2]]
    assert [n["line"] for n in notes] == [2, 3, 4]
    assert notes[2]["reason"] == "not a JSON object: array"


def test_window_and_variants_filter_rows(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "b.ndjson", [dumps(beacon(i)) for i in range(10)])
    start = datetime(2026, 11, 25, 0, 0, 2, tzinfo=UTC)
    load = read_rum(path, start=start, end="2026-11-25T00:00:06Z", variants=["canary"])
    assert load.frame["session_id"].to_list() == ["s3", "s5"]  # [start, end)
    naive = read_rum(path, start=datetime(2026, 11, 25, 0, 0, 8)).frame
    assert naive.height == 2  # naive datetimes are UTC


def test_bad_arguments_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_rum(tmp_path / "nope.ndjson")
    path = write_lines(tmp_path / "b.ndjson", [dumps(beacon(0))])
    with pytest.raises(UsageError, match="before it starts"):
        read_rum(path, start="2026-11-25T01:00:00Z", end="2026-11-25T00:00:00Z")
    with pytest.raises(UsageError, match="cannot read 'yesterday' as a time"):
        read_rum(path, start="yesterday")


def test_a_bare_number_bound_is_epoch_seconds(tmp_path: Path) -> None:
    """One vocabulary for time: a bare number is epoch seconds, as everywhere else."""
    path = write_lines(tmp_path / "b.ndjson", [dumps(beacon(i)) for i in range(10)])
    first = read_rum(path).frame["ts"].min()
    seconds = first.timestamp() + 5
    assert read_rum(path, start=seconds).frame.height == 5
    assert read_rum(path, start=str(seconds)).frame.height == 5
    with pytest.raises(UsageError, match="epoch seconds out of range"):
        read_rum(path, start=seconds * 1000)  # milliseconds are not taken for seconds


def test_bulk_path_edge_cases_follow_the_rules(tmp_path: Path) -> None:
    rows = [
        beacon(0, reason="going away: idle", user="user:42"),  # colons inside known strings
        beacon(1, reason='caf\u00e9 "quoted" \\ back'),  # escapes
        beacon(2, extra_field=None),  # an unknown field set to null is still kept
        beacon(3, session_id=[1, 2]),  # an array is not a string
        beacon(4, session_id={}),  # nor is an object
        beacon(5, code=None),  # a known field set to null is simply absent
        beacon(6, **{"extra": {"a": 1}}),  # a field named like the column is just unknown
    ]
    lines = [json.dumps(r, ensure_ascii=i % 2 == 0) for i, r in enumerate(rows)]
    load = read_rum(write_lines(tmp_path / "b.ndjson", lines))
    frame = load.frame
    assert frame["session_id"].to_list() == ["s0", "s1", "s2", "s5", "s6"]
    assert frame["reason"][0] == "going away: idle" and frame["user"][0] == "user:42"
    assert frame["reason"][1] == 'café "quoted" \\ back'
    assert json.loads(frame["extra"][2]) == {"extra_field": None}
    assert frame["extra"][3] is None and frame["code"][3] is None
    assert json.loads(frame["extra"][4]) == {"extra": {"a": 1}}
    assert [e.line for e in load.examples] == [4, 5]
    assert all("session_id should be a string" in e.reason for e in load.examples)


def test_unknown_fields_match_the_reference_rules_line_for_line(tmp_path: Path) -> None:
    """Snapshots whose nested keys vary from line to line and whose values may be null
    (as the fleet writes them): `extra` holds what each line holds, no more, no less."""
    import random

    from wsanalysis.sources.rum import _beacon_row

    rng = random.Random(3)
    lines = []
    for i in range(600):
        codes = {
            c: rng.randint(0, 9) for c in ("1000", "1006", "1011", "4401") if rng.random() < 0.5
        }
        fields = {"close_codes": codes, "avg_backoff_ms": rng.choice([None, 12.5, 300])}
        if rng.random() < 0.3:
            fields["status"] = rng.choice(["open", "closed", None])
        if rng.random() < 0.1:
            fields["tags"] = ["a", {"b": None}]
        lines.append(dumps(beacon(i, type="ws.summary", **fields)))
        lines.append(dumps(beacon(i, type="ws.ttfb", ttfb_ms=rng.random() * 900)))
    frame = read_rum(write_lines(tmp_path / "b.ndjson", lines)).frame
    want = [_beacon_row(json.loads(x))[0]["extra"] for x in lines]
    got = frame["extra"].to_list()
    assert len(got) == len(want)
    assert [w and json.loads(w) for w in want] == [g and json.loads(g) for g in got]
