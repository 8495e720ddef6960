"""Write a fleet run as a dataset folder: metrics.om[.gz], rum.ndjson.gz, labels.json,
scenario.yaml (the contract in docs/architecture.md), the same bytes for the same seed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.reference.fleet_core import FleetResult
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.rum import write_rum
from wsanalysis.sources.schema import RUM_SCHEMA, TIMESTAMP


def write_dataset(result: FleetResult, folder: str | Path) -> Path:
    """Write the dataset folder: metrics.om (or .om.gz), rum.ndjson.gz, labels.json,
    scenario.yaml. Metric and RUM files already there are replaced."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metrics = folder / ("metrics.om.gz" if result.scenario.metrics_gzip else "metrics.om")
    for stale in ("metrics.om", "metrics.om.gz", "rum.ndjson.gz", "rum.ndjson", "rum.parquet"):
        if (folder / stale).exists():
            (folder / stale).unlink()  # a folder holds one dataset, never two mixed
    if result.scenario.metrics_gzip:  # gzip with no timestamp: same seed, same bytes
        plain = folder / "metrics.om"
        write_openmetrics(result.samples, plain)
        with metrics.open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as out:
            out.write(plain.read_bytes())
        plain.unlink()
    else:
        write_openmetrics(result.samples, metrics)
    write_rum(_beacon_frame(result.beacons), folder / "rum.ndjson.gz")
    (folder / "labels.json").write_text(json.dumps(result.labels, indent=2) + "\n")
    (folder / "scenario.yaml").write_text(result.scenario.to_yaml())
    return folder


def _beacon_frame(beacons: list[dict[str, Any]]) -> pl.DataFrame:
    """The beacons as a RUM frame, fast: unknown fields (ws.summary's) go to `extra`."""
    rows = []
    for beacon in beacons:
        if beacon["type"] == "ws.summary":
            row = {k: v for k, v in beacon.items() if k in RUM_SCHEMA}
            extra = {k: v for k, v in beacon.items() if k not in RUM_SCHEMA}
            row["extra"] = json.dumps(extra, separators=(",", ":")) if extra else None
            rows.append(row)
        else:
            rows.append(beacon)
    schema = {c: (pl.Int64() if c == "ts" else t) for c, t in RUM_SCHEMA.items()}
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return frame.with_columns(pl.col("ts").cast(TIMESTAMP))
