"""A dataset folder: server metrics, client telemetry and (optionally) ground truth.

The fleet writes these folders and `data/` bundles them; a folder exported from
production may hold only `metrics.om` and/or RUM beacons, with no labels and no
scenario, and everything still works on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Unpack

import polars as pl

from wsanalysis.errors import DataError
from wsanalysis.sources.openmetrics import MetricsLoad, ReadOptions, load_openmetrics
from wsanalysis.sources.rum import RumLoad, read_rum
from wsanalysis.sources.schema import empty_samples

METRICS_NAMES = ("metrics.om", "metrics.om.gz")
RUM_NAMES = ("rum.ndjson.gz", "rum.ndjson", "rum.parquet")


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


def file_fingerprint(path: Path) -> str:
    """sha256 of a file or of a folder's files (a partitioned Parquet set)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Dataset:
    """Paths of one dataset folder; reads go through the sources."""

    folder: Path
    metrics_path: Path | None
    rum_path: Path | None
    labels_path: Path | None
    scenario_path: Path | None

    @classmethod
    def open(cls, folder: str | Path) -> Dataset:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(
                f"dataset folder {folder} does not exist",
                "pass a folder holding metrics.om and/or rum.ndjson.gz (e.g. data/sample)",
            )
        dataset = cls(
            folder=folder,
            metrics_path=_first(folder, METRICS_NAMES),
            rum_path=_first(folder, RUM_NAMES),
            labels_path=_first(folder, ("labels.json",)),
            scenario_path=_first(folder, ("scenario.yaml",)),
        )
        if dataset.metrics_path is None and dataset.rum_path is None:
            raise DataError(
                f"{folder} holds neither server metrics nor RUM beacons",
                f"a dataset folder needs one of {', '.join(METRICS_NAMES + RUM_NAMES)}",
            )
        return dataset

    @property
    def name(self) -> str:
        return self.folder.name

    def metrics(self, **options: Unpack[ReadOptions]) -> pl.DataFrame:
        """The server metrics as a samples frame (empty when the folder has none)."""
        return self.metrics_load(**options).frame

    def metrics_load(self, **options: Unpack[ReadOptions]) -> MetricsLoad:
        """The server metrics with what was dropped, by rule (only `lenient=True` drops
        lines: otherwise a line that breaks its format's rules is a DataError)."""
        if self.metrics_path is None:
            return MetricsLoad(frame=empty_samples(), source=str(self.folder), format="none")
        return load_openmetrics(self.metrics_path, **options)

    def rum(
        self, *, start: datetime | None = None, end: datetime | None = None, **options: Any
    ) -> RumLoad | None:
        """The RUM beacons as a load result (`.frame`, bad-line report), or None."""
        if self.rum_path is None:
            return None
        return read_rum(self.rum_path, start=start, end=end, **options)

    @cached_property
    def labels(self) -> dict[str, Any] | None:
        """The ground truth, when the folder was generated (None for production data)."""
        if self.labels_path is None:
            return None
        try:
            return json.loads(self.labels_path.read_text())
        except json.JSONDecodeError as error:
            raise DataError(
                f"{self.labels_path} is not valid JSON (line {error.lineno}: {error.msg})",
                "regenerate the dataset or fix the file",
            ) from error

    def fingerprints(self) -> dict[str, str]:
        """sha256 of every input file, so a verdict names exactly what it read."""
        paths = [self.metrics_path, self.rum_path, self.labels_path, self.scenario_path]
        return {p.name: file_fingerprint(p) for p in paths if p is not None}
