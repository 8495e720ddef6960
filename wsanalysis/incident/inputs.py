"""What an incident analysis reads: server samples and/or RUM beacons over one window.

Loaded the way the judge loads its data (a dataset folder, or a Prometheus server plus
an optional RUM export), so both commands name the same inputs the same way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis import __version__
from wsanalysis.errors import DataError
from wsanalysis.frames import coverage
from wsanalysis.frames.measures import Window
from wsanalysis.secrets import checked_url
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
from wsanalysis.sources.prometheus import PrometheusSource
from wsanalysis.sources.rum import RumLoad, read_rum
from wsanalysis.sources.schema import RUM_SCHEMA, RUM_TYPES, empty_samples
from wsanalysis.sources.telemetry import Telemetry, load_telemetry
from wsanalysis.windows import checked_window

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


def _covered(held: coverage.Held | None, samples: pl.DataFrame, load: RumLoad | None) -> None:
    """The detectors' telemetry is found where it is given (`frames.coverage`)."""
    if held is not None:
        coverage.check_series(SERVER_METRICS, held, None, samples)
    coverage.check_beacons(load, RUM_TYPES, load.source if load is not None else "")


def load_dataset(
    folder: str | Path,
    *,
    start: str | None = None,
    end: str | None = None,
    variant_label: str = "variant",
    canary_selector: str | None = None,
    control_selector: str | None = None,
    telemetry: str | Path | Telemetry | None = None,
    rum_sample: float | None = None,
) -> IncidentData:
    """A dataset folder (metrics and/or RUM). The RUM sampling rate: `rum_sample`, else
    the telemetry file's `rum.sample_rate`, else labels.json's, else 1."""
    start_at, end_at = checked_window(start, end)
    mapping = load_telemetry(telemetry).with_variants(
        variant_label, canary_selector, control_selector
    )
    dataset = Dataset.open(folder)
    metrics = dataset.metrics_load(
        telemetry=mapping, metrics=list(SERVER_METRICS), start=start_at, end=end_at
    )
    load = dataset.rum(start=start_at, end=end_at, telemetry=mapping)
    where = dataset.metrics_path
    held = coverage.Held.of(str(where), metrics.names, mapping) if where is not None else None
    _covered(held, metrics.frame, load)
    labels = dataset.labels or {}
    rate = rum_sample or mapping.rum_sample_rate or (labels.get("rum") or {}).get("session_sample")
    return from_frames(
        metrics.frame,
        load.frame if load is not None else None,
        start=start_at,
        end=end_at,
        rum_sample=float(rate or 1.0),
        origin={
            "data": str(folder),
            "fingerprints": dataset.fingerprints(),
            "telemetry": mapping.provenance(),
        },
    )


def load_prometheus(
    url: str,
    start: str | None,
    end: str | None,
    *,
    rum: str | Path | None = None,
    rum_sample: float | None = None,
    variant_label: str = "variant",
    canary_selector: str | None = None,
    control_selector: str | None = None,
    telemetry: str | Path | Telemetry | None = None,
) -> IncidentData:
    """Server series from a live Prometheus over [start, end], plus optional RUM export
    (sampled at `rum_sample`, else the telemetry file's `rum.sample_rate`, else 1)."""
    checked_url(url, "prometheus")
    start_at, end_at = checked_window(start, end, required=True, needs="a Prometheus source")
    mapping = load_telemetry(telemetry).with_variants(
        variant_label, canary_selector, control_selector
    )
    variants = mapping.variant_mapping
    with PrometheusSource(url) as server:
        selector = '{__name__=~"' + "|".join(SERVER_METRICS) + '"}'
        samples = server.read_samples(selector, start_at, end_at, telemetry=mapping)
        spelled = server.metric_names(start_at, end_at)
        held = coverage.Held.of(f"Prometheus at {url}", spelled, mapping)
    load = read_rum(rum, start=start_at, end=end_at, telemetry=mapping) if rum else None
    _covered(held, samples, load)
    data = from_frames(
        samples, load.frame if load is not None else None, start=start_at, end=end_at,
        rum_sample=rum_sample or mapping.rum_sample_rate or 1.0,
        origin={"prometheus": url, "rum": str(rum) if rum else None,
                "selectors": variants.selectors or None, "telemetry": mapping.provenance()},
    )  # fmt: skip
    if not data.has_server and not data.has_rum:
        raise DataError(
            f"no ws_* series in {url} between {start} and {end}, and no RUM beacons",
            "check the window and that the server scrapes the WebSocket service",
        )
    return data
