"""What an incident analysis reads: server samples and/or RUM beacons over one window.

Loaded the way the judge loads its data (a dataset folder, or a Prometheus server plus
an optional RUM export), so both commands name the same inputs the same way; what was
read is checked against what the detectors read (`frames.coverage`): data in other names
than the telemetry file's stop the run with the fix, never a quiet "no findings".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.errors import DataError
from wsanalysis.frames import coverage
from wsanalysis.frames.measures import Window
from wsanalysis.loading import DataSource, Loaded, Reads, load
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.metric_names import (
    ASSISTANT_TTFB,
    CLOSES_TOTAL,
    CONNECTION_DURATION,
    CONNECTIONS_ACTIVE,
    CONNECTIONS_TOTAL,
    FRAMES_SENT_TOTAL,
    RECONNECT_ADVICE_TOTAL,
)
from wsanalysis.sources.schema import RUM_SCHEMA, RUM_TYPES, empty_samples
from wsanalysis.sources.telemetry import Telemetry
from wsanalysis.version import __version__

#: Server series the detectors read (everything else is left on the server).
SERVER_METRICS = (
    CONNECTIONS_TOTAL,
    CONNECTIONS_ACTIVE,
    CLOSES_TOTAL,
    RECONNECT_ADVICE_TOTAL,
    f"{CONNECTION_DURATION}_bucket",
    f"{ASSISTANT_TTFB}_bucket",
    FRAMES_SENT_TOTAL,
)


@dataclass(frozen=True)
class IncidentData:
    """Samples frame, RUM frame (None when absent), the window, and the RUM sampling rate.

    `rum_sample` is the share of sessions whose beacons were kept (labels.json says; a
    production export is taken as complete, 1.0): per-day counts from RUM are divided by it.
    """

    samples: pl.DataFrame
    beacons: pl.DataFrame | None
    window: Window | None
    rum_sample: float = 1.0
    origin: dict[str, Any] = field(default_factory=dict)
    _split_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @property
    def has_server(self) -> bool:
        return not self.samples.is_empty()

    @property
    def has_rum(self) -> bool:
        return self.beacons is not None and not self.beacons.is_empty()

    def metadata(self) -> dict[str, Any]:
        """What findings.json records ahead of the findings (command and report alike)."""
        window = self.window
        return {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "package_version": __version__,
            "inputs": self.origin,
            "window": {"start": window.start.isoformat(), "end": window.end.isoformat()}
            if window
            else None,
            "rum_sample": self.rum_sample,
        }

    def shared(self, key: object, compute: Callable[[], Any]) -> Any:
        """`compute()` once per data and `key`, then shared by every detector that asks
        (a race computes it twice, the same way: harmless)."""
        cache = self.__dict__.setdefault("_shared", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def split_by_type(self) -> dict[str, pl.DataFrame]:
        """The beacons per type, split on the first call and then shared (thread-safe:
        detectors running side by side split once between them)."""
        with self._split_lock:
            if "_by_type" not in self.__dict__:
                parts = self.beacons.partition_by("type", as_dict=True) if self.has_rum else {}
                self.__dict__["_by_type"] = {key[0]: part for key, part in parts.items()}
        return self.__dict__["_by_type"]

    def of_type(self, beacon_type: str) -> pl.DataFrame:
        """The beacons of one type (split once, then reused by every detector)."""
        if not self.has_rum:
            return pl.DataFrame(schema=RUM_SCHEMA)
        return self.split_by_type().get(beacon_type, self.beacons.clear())

    @property
    def variants(self) -> list[str]:
        names: set[str] = set()
        if self.has_server:
            names.update(self.samples["variant"].drop_nulls().unique().to_list())
        if self.has_rum:
            names.update(self.beacons["variant"].drop_nulls().unique().to_list())
        return sorted(names)


def _window(samples: pl.DataFrame, beacons: pl.DataFrame | None, start, end) -> Window | None:
    own = Window.of(samples, beacons)
    if own is None:
        return None
    return Window(start or own.start, end or own.end)


def from_frames(
    samples: pl.DataFrame | None,
    beacons: pl.DataFrame | None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    rum_sample: float = 1.0,
    origin: dict[str, Any] | None = None,
) -> IncidentData:
    samples = samples if samples is not None else empty_samples()
    if beacons is not None and beacons.is_empty():
        beacons = None
    window = _window(samples, beacons, start, end)
    return IncidentData(samples, beacons, window, rum_sample, origin or {})


INCIDENT_READS = Reads(metrics=SERVER_METRICS)  # raw samples: the detectors read them


def _covered(loaded: Loaded) -> None:
    """The detectors' telemetry is found where it is given (`frames.coverage`)."""
    if loaded.held is not None:
        coverage.check_series(SERVER_METRICS, loaded.held, None, loaded.samples)
    rum = loaded.rum_read
    coverage.check_beacons(rum, RUM_TYPES, rum.source if rum is not None else "")


def load_incident(source: DataSource, rum_sample: float | None = None) -> IncidentData:
    """What the detectors read, through the one loader (`wsanalysis.loading.load`): the
    server series they use as raw samples, and every RUM field. The RUM sampling rate:
    `rum_sample`, else the telemetry file's `rum.sample_rate`, else the dataset's
    (labels.json), else 1.0 (a complete export)."""
    if source.server is not None and not source.server.raw:
        source = replace(source, metrics=replace(source.server, raw=True))
    loaded = load(source, INCIDENT_READS)
    _covered(loaded)
    rum_sample = rum_sample or source.telemetry.rum_sample_rate
    telemetry = {"telemetry": loaded.inputs.telemetry} if loaded.inputs.telemetry else {}
    if source.folder is not None:
        labels = Dataset.open(source.folder).labels or {}
        rum_sample = rum_sample or (labels.get("rum") or {}).get("session_sample")
        origin: dict[str, Any] = {
            **source.origin(), "fingerprints": loaded.inputs.fingerprints, **telemetry,
        }  # fmt: skip
    else:
        origin = {**source.origin(), "rum": str(source.rum) if source.rum else None, **telemetry}
    data = from_frames(
        loaded.samples, loaded.beacons, start=source.start, end=source.end,
        rum_sample=float(rum_sample or 1.0), origin=origin,
    )  # fmt: skip
    if source.server is not None and not data.has_server and not data.has_rum:
        raise DataError(
            f"no ws_* series in {source.server.url} between {source.start} and {source.end}, "
            "and no RUM beacons",
            "check the window and that the server scrapes the WebSocket service",
        )
    return data


def load_dataset(
    folder: str | Path,
    *,
    start: str | None = None,
    end: str | None = None,
    variant_label: str | None = None,
    canary_selector: str | None = None,
    control_selector: str | None = None,
    telemetry: str | Path | Telemetry | None = None,
    rum_sample: float | None = None,
) -> IncidentData:
    """A dataset folder (metrics and/or RUM), in `telemetry`'s names."""
    source = DataSource.of(
        data=folder, start=start, end=end, variant_label=variant_label,
        canary_selector=canary_selector, control_selector=control_selector, telemetry=telemetry,
    )  # fmt: skip
    return load_incident(source, rum_sample)


def load_prometheus(
    url: str,
    start: str | None,
    end: str | None,
    *,
    rum: str | Path | None = None,
    rum_sample: float | None = None,
    variant_label: str | None = None,
    canary_selector: str | None = None,
    control_selector: str | None = None,
    telemetry: str | Path | Telemetry | None = None,
) -> IncidentData:
    """Server series from a live Prometheus over [start, end], plus optional RUM export,
    in `telemetry`'s names."""
    source = DataSource.of(
        prometheus=url, start=start, end=end, rum=rum, raw=True, variant_label=variant_label,
        canary_selector=canary_selector, control_selector=control_selector, telemetry=telemetry,
    )  # fmt: skip
    return load_incident(source, rum_sample)
