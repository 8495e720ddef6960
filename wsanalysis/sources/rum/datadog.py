"""A Datadog RUM events export (pages of the RUM events API) as beacons."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.errors import DataError
from wsanalysis.sources.rum.beacon import (
    REFERENCE_SCHEMA,
    BeaconSchema,
    _beacon_row,
    _json_type,
    _Rejects,
    _rows_frame,
)
from wsanalysis.sources.rum.files import _read_bytes
from wsanalysis.sources.schema import empty_rum


def _get(obj: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _leaves(obj: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(obj, Mapping) and obj:
        for key, value in obj.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


#: Datadog standard attributes that fill a beacon field when `context` does not.
DATADOG_FALLBACKS: dict[str, tuple[str, ...]] = {
    "type": ("action.target.name", "type"),
    "session_id": ("session.id",),
    "user": ("usr.id",),
    "trace": ("_dd.trace_id",),
}


def _datadog_timestamp(event: Mapping[str, Any], inner: Mapping[str, Any]) -> Any:
    if isinstance(inner.get("date"), int | float):
        return inner["date"]
    stamp = event.get("timestamp")
    if isinstance(stamp, int | float):
        return stamp
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None
        return round(parsed.timestamp() * 1000)
    return None


def _datadog_beacon(
    event: Any, used: set[str], schema: BeaconSchema = REFERENCE_SCHEMA
) -> tuple[dict[str, Any] | None, str]:
    """One Datadog RUM event as a beacon dict; `used` collects the attribute paths taken.

    `context` holds the app's own fields (the schema's names); Datadog's standard
    attributes fill the contract's fields the context leaves empty."""
    if not isinstance(event, Mapping):
        return None, f"not a JSON object: {_json_type(event)}"
    outer = event.get("attributes")
    if not isinstance(outer, Mapping):
        return None, "missing required field: attributes"
    inner = outer.get("attributes") if isinstance(outer.get("attributes"), Mapping) else {}
    context = inner.get("context") if isinstance(inner.get("context"), Mapping) else {}
    field = schema.field_of
    beacon: dict[str, Any] = {field["v"]: 1}
    for key, value in context.items():
        beacon[key] = value
        used.add(f"context.{key}")
    if beacon.get(field["ts"]) is None:
        beacon[field["ts"]] = _datadog_timestamp(outer, inner)
        used.add("date")
    for name, paths in DATADOG_FALLBACKS.items():
        if beacon.get(field[name]) is not None:
            continue
        for path in paths:
            value = _get(inner, path)
            if value is not None:
                beacon[field[name]] = value
                used.add(path)
                break
    variant = field["variant"]
    if beacon.get(variant) is None:
        for tag in outer.get("tags") or ():
            if isinstance(tag, str) and tag.startswith(f"{variant}:"):
                beacon[variant] = tag.split(":", 1)[1]
                break
    return _beacon_row(beacon, schema)


def _datadog_pages(data: bytes) -> list[Any]:
    """The pages of an export: one JSON page, a JSON array of pages, or one page per line."""
    text = data.decode("utf-8", errors="replace").strip()
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return doc if isinstance(doc, list) else [doc]


def _read_datadog(
    paths: Sequence[Path], rejects: _Rejects, schema: BeaconSchema = REFERENCE_SCHEMA
) -> tuple[pl.DataFrame, int, dict]:
    rows: list[dict[str, Any]] = []
    unmapped: Counter[str] = Counter()
    number = 0
    for path in paths:
        try:
            pages = _datadog_pages(_read_bytes(path))
        except RecursionError:
            raise DataError(
                f"{path} is not a Datadog RUM export we can read: JSON nested too deeply",
                "pass the JSON pages returned by the RUM events API (GET /api/v2/rum/events)",
            ) from None
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path} is not a Datadog RUM export: {exc.msg} at line {exc.lineno}",
                "pass the JSON pages returned by the RUM events API (GET /api/v2/rum/events)",
            ) from exc
        for page in pages:
            events = page.get("data") if isinstance(page, Mapping) else page
            if not isinstance(events, list):
                raise DataError(
                    f"{path} holds no `data` list of events",
                    "pass the JSON pages returned by the RUM events API (GET /api/v2/rum/events)",
                )
            for event in events:
                number += 1
                used: set[str] = set()
                row, reason = _datadog_beacon(event, used, schema)
                if row is None:
                    raw = json.dumps(event, ensure_ascii=False).encode()
                    rejects.add(number, reason, raw)
                    continue
                rows.append(row)
                inner = _get(event, "attributes.attributes") or {}
                for leaf in _leaves({k: v for k, v in inner.items() if k != "context"}):
                    if (
                        leaf
                        and leaf not in used
                        and not any(leaf.startswith(p + ".") for p in used)
                    ):
                        unmapped[leaf] += 1
    frame = schema.conform(_rows_frame(rows, schema=schema)) if rows else empty_rum()
    return frame, number, dict(unmapped)
