"""Parquet beacons: a file or a hive-partitioned folder, filtered at scan time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.rum import beacons_frame, read_rum, scan_rum_parquet, write_rum
from wsanalysis.sources.schema import RUM_SCHEMA

T0 = datetime(2026, 11, 25, tzinfo=UTC)


def day_of_beacons(days: int = 3, per_hour: int = 4) -> pl.DataFrame:
    rows = []
    for i in range(days * 24 * per_hour):
        ts = T0 + timedelta(minutes=60 // per_hour * i)
        rows.append(
            {
                "v": 1,
                "ts": int(ts.timestamp() * 1000),
                "type": "ws.close" if i % 3 == 0 else "ws.open",
                "session_id": f"s{i}",
                "variant": ["canary", "control", "other"][i % 3],
                "code": 1006 if i % 3 == 0 else None,
                **({"close_codes": {"1006": i}} if i % 5 == 0 else {}),
            }
        )
    return beacons_frame(rows)


@pytest.fixture
def partitioned(tmp_path: Path) -> Path:
    """Partitioned by variant (the writer) and then by day (a production layout)."""
    frame = day_of_beacons()
    root = tmp_path / "rum"
    for (variant, day), part in frame.group_by(
        "variant", pl.col("ts").dt.date().alias("day"), maintain_order=True
    ):
        folder = root / f"variant={variant}" / f"date={day}"
        folder.mkdir(parents=True)
        part.write_parquet(folder / "part-0.parquet")
    return root


def test_file_round_trip_keeps_schema_and_extra(tmp_path: Path) -> None:
    frame = day_of_beacons()
    write_rum(frame, tmp_path / "rum.parquet")
    load = read_rum(tmp_path / "rum.parquet")
    assert load.format == "parquet" and load.bad_lines == 0
    assert load.frame.schema == pl.Schema(RUM_SCHEMA)
    assert load.frame.equals(frame.sort("ts"))
    assert json.loads(load.frame["extra"][0]) == {"close_codes": {"1006": 0}}


def test_file_window_and_variants(tmp_path: Path) -> None:
    frame = day_of_beacons()
    write_rum(frame, tmp_path / "rum.parquet")
    start, end = T0 + timedelta(hours=30), T0 + timedelta(hours=36)
    got = read_rum(tmp_path / "rum.parquet", start=start, end=end, variants=["canary"]).frame
    want = frame.filter(
        (pl.col("ts") >= start) & (pl.col("ts") < end) & (pl.col("variant") == "canary")
    )
    assert got.height == want.height > 0
    assert got.sort("ts").equals(want.sort("ts"))


def test_filter_is_pushed_into_the_scan(partitioned: Path) -> None:
    start = T0 + timedelta(days=1, hours=2)
    lazy = scan_rum_parquet(
        partitioned, start=start, end=start + timedelta(hours=3), variants=["canary"]
    )
    plan = lazy.explain()
    scan = plan[plan.index("Parquet SCAN") :]
    # the predicate sits on the scan node itself, not in a FILTER above it
    assert "FILTER" not in scan
    assert "variant" in scan and "ts" in scan
    assert "date" in scan  # the day partition prunes folders
    # and the pruning happened while planning: one file of the nine is left to open
    assert "variant=canary/date=2026-11-26" in scan
    assert "variant=control" not in scan and "date=2026-11-25" not in scan


def test_only_matching_partitions_are_read(partitioned: Path) -> None:
    # corrupt every partition that the query must not touch: opening one would fail
    # (the first file stays whole: the scan reads its footer for the schema)
    keep_variant, keep_day = "canary", (T0 + timedelta(days=1)).date()
    files = sorted(partitioned.rglob("*.parquet"))
    corrupted = 0
    for file in files[1:]:
        if f"variant={keep_variant}" not in str(file) or f"date={keep_day}" not in str(file):
            file.write_bytes(b"PAR1 not really parquet PAR1")
            corrupted += 1
    assert corrupted == len(files) - 2
    start = T0 + timedelta(days=1, hours=1)
    frame = read_rum(
        partitioned, start=start, end=start + timedelta(hours=5), variants=[keep_variant]
    ).frame
    assert frame.height > 0
    assert set(frame["variant"]) == {"canary"}
    assert frame["ts"].min() >= start
    assert frame.schema == pl.Schema(RUM_SCHEMA)  # `date` is a folder, not a column


def test_written_partitioned_folder_reads_back(tmp_path: Path) -> None:
    frame = day_of_beacons()
    write_rum(frame, tmp_path / "rum")
    assert {p.name for p in (tmp_path / "rum").iterdir()} == {
        "variant=canary",
        "variant=control",
        "variant=other",
    }
    back = read_rum(tmp_path / "rum").frame
    assert back.sort("ts").equals(frame.sort("ts"))
    only = read_rum(tmp_path / "rum", variants=["control"]).frame
    assert set(only["variant"]) == {"control"}


def test_foreign_parquet_is_conformed(tmp_path: Path) -> None:
    # a production export: ts as epoch ms, a missing optional column, an extra column
    pl.DataFrame(
        {
            "v": [1, 1],
            "ts": [1_795_564_800_000, 1_795_564_801_000],
            "type": ["ws.open", "ws.ttfb"],
            "session_id": ["a", "b"],
            "variant": ["canary", "control"],
            "ttfb_ms": [None, 321],
            "browser": ["firefox", None],
        }
    ).write_parquet(tmp_path / "export.parquet")
    frame = read_rum(tmp_path / "export.parquet").frame
    assert frame.schema == pl.Schema(RUM_SCHEMA)
    assert frame["ts"][0] == T0
    assert frame["ttfb_ms"].to_list() == [None, 321.0]
    assert frame["extra"].to_list() == ['{"browser":"firefox"}', None]


def test_folder_without_parquet_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError):
        read_rum(tmp_path / "empty")


def test_columns_keeps_only_those_and_names_unknown_ones(tmp_path: Path) -> None:
    frame = day_of_beacons(days=1)
    write_rum(frame, tmp_path / "rum.parquet")
    write_rum(frame, tmp_path / "rum.ndjson")
    wanted = ["variant", "ts", "type"]
    for name in ("rum.parquet", "rum.ndjson"):
        load = read_rum(tmp_path / name, columns=wanted)
        assert load.frame.columns == ["ts", "type", "variant"]  # schema order
        assert load.frame.equals(read_rum(tmp_path / name).frame.select("ts", "type", "variant"))
    with pytest.raises(UsageError, match="unknown RUM column.*ttfb"):
        read_rum(tmp_path / "rum.parquet", columns=["ts", "ttfb"])
