"""Datadog RUM events export: pages of events mapped to beacons, the rest reported."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wsanalysis.errors import DataError
from wsanalysis.sources.rum import read_rum

T0_MS = 1_795_564_800_000


def event(i: int, context: dict | None = None, **inner) -> dict:
    """One event as GET /api/v2/rum/events returns it (a custom action with context)."""
    attributes = {
        "date": T0_MS + i * 1000,
        "type": "action",
        "action": {"type": "custom", "target": {"name": "ws.close"}},
        "session": {"id": f"dd-session-{i}"},
        "usr": {"id": f"user-{i}"},
        "view": {"url": "https://chat.example.com/t/1", "id": f"view-{i}"},
        "application": {"id": "app-1"},
        "context": {"variant": "canary", "code": 4401, "reason": "token expired"}
        if context is None
        else context,
    } | inner
    return {
        "id": f"AAAA{i}",
        "type": "rum",
        "attributes": {
            "attributes": attributes,
            "service": "chat-web",
            "tags": ["env:prod", "variant:control"],
            "timestamp": "2026-11-25T00:00:00.000Z",
        },
    }


def page(events: list[dict], after: str | None = None) -> dict:
    links = {"next": f"https://api.datadoghq.com/api/v2/rum/events?page[cursor]={after}"}
    return {
        "data": events,
        "links": links if after else {},
        "meta": {"page": {"after": after} if after else {}, "status": "done"},
    }


def test_events_map_to_beacons_and_unmapped_fields_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "rum-export.json"
    path.write_text(json.dumps(page([event(0), event(1)], after="abc")))
    load = read_rum(path)
    assert load.format == "datadog" and load.bad_lines == 0
    frame = load.frame
    assert frame["type"].to_list() == ["ws.close", "ws.close"]
    assert frame["session_id"].to_list() == ["dd-session-0", "dd-session-1"]
    assert frame["variant"].to_list() == ["canary", "canary"]  # context wins over tags
    assert frame["code"].to_list() == [4401, 4401]
    assert frame["reason"][0] == "token expired"
    assert frame["user"][0] == "user-0"
    assert frame["ts"][1] == datetime(2026, 11, 25, 0, 0, 1, tzinfo=UTC)
    assert frame["v"].to_list() == [1, 1]
    # what had no place in the beacon is named, with how often it was seen
    assert load.unmapped == {
        "type": 2,
        "action.type": 2,
        "application.id": 2,
        "view.url": 2,
        "view.id": 2,
    }
    assert "view.url (2)" in load.summary()


def test_variant_from_tags_and_unknown_context_kept(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    ctx = {"type": "ws.summary", "close_codes": {"1000": 2}, "socket_id": "k1"}
    path.write_text(json.dumps(page([event(0, context=ctx)])))
    frame = read_rum(path).frame
    assert frame["variant"][0] == "control"  # from the `variant:` tag
    assert frame["type"][0] == "ws.summary"  # context beats the action name
    assert frame["socket_id"][0] == "k1"
    assert json.loads(frame["extra"][0]) == {"close_codes": {"1000": 2}}


def test_several_pages_in_a_folder_gzip_and_ndjson_pages(tmp_path: Path) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "page-1.json").write_text(json.dumps(page([event(0), event(1)], after="x")))
    (folder / "page-2.json.gz").write_bytes(gzip.compress(json.dumps(page([event(2)])).encode()))
    lines = "\n".join(json.dumps(page([event(i)])) for i in (3, 4))
    (folder / "page-3.json").write_text(lines)
    load = read_rum(folder)
    assert load.format == "datadog"
    assert sorted(load.frame["session_id"]) == [f"dd-session-{i}" for i in range(5)]


def test_events_that_cannot_be_beacons_are_bad_lines(tmp_path: Path) -> None:
    no_variant = event(1, context={"code": 1000})
    no_variant["attributes"]["tags"] = []
    wrong_type = event(2, context={"variant": "canary", "code": "x"})
    path = tmp_path / "export.json"
    path.write_text(json.dumps(page([event(0), no_variant, wrong_type, "junk"])))
    load = read_rum(path, quarantine=tmp_path / "bad.txt")
    assert load.frame.height == 1
    assert load.bad_lines == 3
    assert [e.line for e in load.examples] == [2, 3, 4]  # event number in the export
    assert load.examples[0].reason == "missing required field: variant"
    assert load.examples[1].reason.startswith("wrong type: code")
    assert (tmp_path / "bad.txt").read_text().count("# {") == 3


def test_not_an_export_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"data": 3}')
    with pytest.raises(DataError, match="no `data` list"):
        read_rum(path, format="datadog")
