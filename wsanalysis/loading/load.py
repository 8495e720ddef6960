"""The one loader: a `DataSource` and what to read (`Reads`) in, frames and provenance out.

Every caller reads its data here: the judge (CLI, reports, notebooks, `judge-server`,
the public API), the incident analysis, `summary`. Each reader is called from exactly
one place below (the metrics file, a server's raw samples, a server's push-down sums,
RUM beacons in memory, RUM beacons in an engine, any PromQL per step), so what every
reader is told (the window, the variant mapping, the user's telemetry names: readers ask
in the user's names and hand back the contract's) is told once.

What comes back is typed: the frames, the engine's measures when RUM stays in an engine,
the server's and the lenient read's warnings per family (`SourceWarnings`: the judge
makes the gates reading a warned family inconclusive), and the provenance a verdict
names (`Inputs`), and what the metrics source holds (`frames.coverage.Held`: the
callers check it against what their gates or detectors read).
"""

from __future__ import annotations

import warnings as python_warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.errors import UsageError
from wsanalysis.frames.coverage import Held
from wsanalysis.frames.measures import FRAME_MEASURES, GateMeasures, Window
from wsanalysis.loading.source import DataSource
from wsanalysis.pushdown.promql import PushdownRequest, ReceivedBytes, pushed_samples
from wsanalysis.pushdown.rum import engine_input, with_engine_window
from wsanalysis.pushdown.series import SeriesQuery, empty_series, series_values
from wsanalysis.sources.dataset import Dataset, file_fingerprint
from wsanalysis.sources.openmetrics import MetricsLoad, load_openmetrics
from wsanalysis.sources.prometheus import PrometheusSource, PrometheusWarning
from wsanalysis.sources.prometheus.export import export_samples
from wsanalysis.sources.rum import RumLoad, read_rum
from wsanalysis.sources.schema import empty_samples

ALL_FAMILIES = "*"  # a warning about every family (a raw read's answer as a whole)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Reads:
    """What a caller reads. `metrics`: the server series it needs (a metrics file keeps
    only these; None keeps every series, and a raw server read then has nothing to ask
    for); `rum_columns`: the RUM columns (None: all); `pushdown`: the sums a server
    computes instead of returning samples (None: raw samples)."""

    metrics: tuple[str, ...] | None = None
    rum_columns: tuple[str, ...] | None = None
    pushdown: PushdownRequest | None = None
    series: tuple[SeriesQuery, ...] = ()  # any PromQL per step (a folder: a local server)


EVERYTHING = Reads()


@dataclass(frozen=True)
class SourceWarnings:
    """Per metric family, why its figures may be incomplete: a server's partial answer
    (Thanos, Mimir) or lines a lenient read dropped. `*` concerns every family."""

    by_family: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, found: Mapping[str, Iterable[str]]) -> SourceWarnings:
        kept = {k: tuple(dict.fromkeys(v)) for k, v in sorted(found.items()) if v}
        return cls(kept)

    def __bool__(self) -> bool:
        return bool(self.by_family)

    def about(self, families: Iterable[str]) -> tuple[str, ...]:
        """The warnings that concern any of `families` (those about every family first)."""
        texts = list(self.by_family.get(ALL_FAMILIES, ()))
        for family in sorted(families):
            texts += self.by_family.get(family, ())
        return tuple(dict.fromkeys(texts))

    def merged(self, other: SourceWarnings) -> SourceWarnings:
        joined: dict[str, list[str]] = {k: list(v) for k, v in self.by_family.items()}
        for family, texts in other.by_family.items():
            joined.setdefault(family, []).extend(texts)
        return SourceWarnings.of(joined)

    def to_json(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.by_family.items()}


NO_WARNINGS = SourceWarnings()


@dataclass(frozen=True)
class Inputs:
    """What a verdict names as its inputs (verdict.json's `inputs`), typed."""

    origin: Mapping[str, Any]
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    rum_bad_lines: int | None = None
    lenient: bool = False
    dropped_lines: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    rum_engine: str | None = None
    telemetry: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        document = {
            **self.origin,
            "fingerprints": dict(self.fingerprints),
            "rum_bad_lines": self.rum_bad_lines,
            "lenient": self.lenient,
            "dropped_lines": {k: dict(v) for k, v in self.dropped_lines.items()},
        }
        if self.rum_engine is not None:
            document["rum_engine"] = self.rum_engine
        if self.telemetry is not None:
            document["telemetry"] = dict(self.telemetry)
        return document


@dataclass(frozen=True)
class Loaded:
    """What a source gave: the samples frame, the beacons (None when absent or left in
    an engine), the window asked for (None: the data's own), the measures the gates read
    (the frames', or an engine's for RUM), warnings per family, provenance, and the
    sources' own load reports (`metrics_read`: lines dropped by rule; `rum_read`: bad
    lines). An incremental read holds only what it read, from `read_from` on; `series`
    (the values of `Reads.series`) and `held` (the metric names the source holds, None
    without metrics) always cover the whole window."""

    samples: pl.DataFrame
    beacons: pl.DataFrame | None
    window: Window | None
    inputs: Inputs
    warnings: SourceWarnings = NO_WARNINGS
    measures: GateMeasures = FRAME_MEASURES
    metrics_read: MetricsLoad | None = None
    rum_read: RumLoad | None = None
    read_from: datetime | None = None
    received_rows: int = 0  # rows the server sent (samples, or sums on push-down)
    received_bytes: int = 0  # what those answers weighed (decoded)
    series: pl.DataFrame | None = None  # timestamp, query, variant, value
    held: Held | None = None


def load(source: DataSource, reads: Reads = EVERYTHING) -> Loaded:
    """Read `source` as `reads` says: a folder's metrics file, RUM read and sha256
    fingerprints side by side; a server's sums (or raw samples) and a RUM export."""
    if source.folder is not None:
        return _from_folder(source, source.folder, reads)
    return _from_server(source, reads)


def _from_folder(source: DataSource, folder: Path, reads: Reads) -> Loaded:
    if reads.series:
        _local_server_installed()
    dataset = Dataset.open(folder)
    rum_path = dataset.rum_path
    in_engine = rum_path is not None and source.engine != "polars"
    # hashing, parsing and the RUM read release the GIL: they run side by side
    with ThreadPoolExecutor(2) as pool:
        hashing = pool.submit(dataset.fingerprints)
        reading = (
            pool.submit(_rum_in_memory, source, rum_path, reads)
            if rum_path is not None and not in_engine
            else None
        )
        metrics = _metrics_file(source, dataset.metrics_path, reads)
        rum_read = reading.result() if reading is not None else None
        fingerprints = hashing.result()
    dropped = {}
    held = None
    if dataset.metrics_path is not None:
        held = Held.of(str(dataset.metrics_path), metrics.names, source.telemetry)
        if metrics.dropped:
            dropped[dataset.metrics_path.name] = dict(sorted(metrics.dropped.items()))
    inputs = Inputs(
        source.origin(),
        fingerprints,
        rum_read.bad_lines if rum_read is not None else None,
        source.lenient,
        dropped,
        telemetry=source.telemetry.provenance(),
    )
    series = _series_of_folder(source, folder, metrics.frame, reads)
    return _loaded(
        source, metrics.frame, rum_read, inputs, SourceWarnings.of(metrics.warnings()),
        rum_path if in_engine else None, metrics_read=metrics, series=series, held=held,
    )  # fmt: skip


def _from_server(source: DataSource, reads: Reads) -> Loaded:
    server = source.server
    assert server is not None and source.start is not None and source.end is not None
    read_from = read_start(source, reads)
    with PrometheusSource(server.url) as connection:
        if server.raw or reads.pushdown is None:
            tally = ReceivedBytes(connection)
            samples, warned = _raw_samples(connection, source, reads, read_from)
            received = tally.total
        else:
            samples, warned, received = _pushed(connection, source, reads.pushdown, read_from)
        # the whole window, at every read: what the source holds, each query's values
        held = Held.of(
            f"the metrics server at {server.url}",
            connection.metric_names(source.start, source.end),
            source.telemetry,
        )
        series = _series(connection, source, reads.series, source.start, source.end)
    in_engine = source.rum is not None and source.engine != "polars"
    rum_read = (
        _rum_in_memory(source, source.rum, reads)
        if source.rum is not None and not in_engine
        else None
    )
    fingerprints = {source.rum.name: file_fingerprint(source.rum)} if source.rum else {}
    inputs = Inputs(
        source.origin(),
        fingerprints,
        rum_read.bad_lines if rum_read is not None else None,
        source.lenient,
        telemetry=source.telemetry.provenance(),
    )
    return _loaded(
        source, samples, rum_read, inputs, warned, source.rum if in_engine else None,
        read_from=read_from if source.incremental is not None else None,
        received=(samples.height, received), series=series, held=held,
    )  # fmt: skip


def read_start(source: DataSource, reads: Reads) -> datetime | None:
    """Where a read begins: the window's start, or for an incremental read the bucket
    (of the window's grid) holding `since - late - 1 ms`, so the bucket a previous read
    ended in is always read again whole."""
    start, incremental = source.start, source.incremental
    if incremental is None or start is None:
        return start
    bucket = reads.pushdown.bucket if reads.pushdown is not None else _MS
    back = incremental.since - incremental.late - _MS
    if back <= start:
        return start
    return start + ((back - start) // bucket) * bucket


def _loaded(
    source: DataSource,
    samples: pl.DataFrame,
    rum_read: RumLoad | None,
    inputs: Inputs,
    warned: SourceWarnings,
    engine_path: Path | None,
    *,
    metrics_read: MetricsLoad | None = None,
    read_from: datetime | None = None,
    received: tuple[int, int] = (0, 0),
    series: pl.DataFrame | None = None,
    held: Held | None = None,
) -> Loaded:
    beacons = rum_read.frame if rum_read is not None else None  # the contract's names
    window = Window(source.start, source.end) if source.start and source.end else None
    measures: GateMeasures = FRAME_MEASURES
    if engine_path is not None:  # push-down: the engine reads the beacons, not polars
        pushed = engine_input(source.engine, engine_path, source.start, source.end)
        window = with_engine_window(window, samples, pushed)
        measures = pushed.measures
        inputs = replace(inputs, rum_engine=source.engine)
    return Loaded(
        samples, beacons, window, inputs, warned, measures, metrics_read, rum_read,
        read_from, *received, series=series, held=held,
    )  # fmt: skip


# -- the readers: one call site each --------------------------------------------------


def _metrics_file(source: DataSource, path: Path | None, reads: Reads) -> MetricsLoad:
    if path is None:
        return MetricsLoad(frame=empty_samples(), source=str(source.folder), format="none")
    return load_openmetrics(  # the variants are the telemetry's (`DataSource`)
        path,
        telemetry=source.telemetry,
        metrics=reads.metrics,
        start=source.start,
        end=source.end,
        lenient=source.lenient,
    )


def _rum_in_memory(source: DataSource, path: Path, reads: Reads) -> RumLoad:
    columns = reads.rum_columns
    return read_rum(
        path,
        start=source.start,
        end=source.end,
        columns=list(columns) if columns is not None else None,
        telemetry=source.telemetry,
    )


def _raw_samples(
    server: PrometheusSource, source: DataSource, reads: Reads, read_from: datetime | None
) -> tuple[pl.DataFrame, SourceWarnings]:
    """Every sample of the series named (through VictoriaMetrics' export API when the
    server has it); the server's warnings concern every family read."""
    if not reads.metrics:
        raise UsageError(
            "a raw read from a metrics server needs the series to read",
            "name them (Reads.metrics), or let the server sum them (push-down)",
        )
    selector = '{__name__=~"' + "|".join(reads.metrics) + '"}'
    server.last_warnings = []
    frame = export_samples(
        server, selector, read_from, source.end, source.variants, source.telemetry
    )
    if frame is None:
        frame = server.read_samples(
            selector, read_from, source.end, variants=source.variants, telemetry=source.telemetry
        )
    warned = list(dict.fromkeys(server.last_warnings))
    return frame, SourceWarnings.of({ALL_FAMILIES: warned})


def _pushed(
    server: PrometheusSource,
    source: DataSource,
    request: PushdownRequest,
    read_from: datetime | None,
) -> tuple[pl.DataFrame, SourceWarnings, int]:
    assert read_from is not None and source.end is not None
    with python_warnings.catch_warnings():
        python_warnings.simplefilter("ignore", PrometheusWarning)  # kept per family instead
        pushed = pushed_samples(
            server, request, read_from, source.end, source.variants, source.telemetry
        )
    return pushed.frame, SourceWarnings.of(pushed.warnings), pushed.received_bytes


def _series(
    server: PrometheusSource,
    source: DataSource,
    queries: tuple[SeriesQuery, ...],
    start: datetime,
    end: datetime,
) -> pl.DataFrame | None:
    """Every query's per-step values over the window (None when nothing is asked)."""
    if not queries:
        return None
    found = [series_values(server, q, start, end, source.variants) for q in queries]
    return pl.concat([empty_series(), *found])


def _local_server_installed() -> None:
    """A folder's per-step queries need a local Prometheus: refused before anything is
    read when it is not installed."""
    from wsanalysis.sources.local_prometheus import find_binary  # only for such queries

    try:
        find_binary("prometheus"), find_binary("promtool")
    except UsageError as error:
        raise UsageError(
            "a series gate runs its PromQL on a server, and this dataset folder has none: "
            f"{error.problem}",
            f"{error.fix}; or judge against the Prometheus holding the data (--prometheus URL)",
        ) from None


def _series_of_folder(
    source: DataSource, folder: Path, samples: pl.DataFrame, reads: Reads
) -> pl.DataFrame | None:
    """The queries' values on a dataset folder, through a local Prometheus over it
    (`prom up`'s machinery), or a refusal with the fix when Prometheus is not installed.
    The window: the source's, else the samples', else the server's blocks'."""
    if not reads.series:
        return None
    from wsanalysis.sources.local_prometheus import prometheus_for_dataset, tsdb_window

    with prometheus_for_dataset(folder) as local, PrometheusSource(local.url) as server:
        window = Window.of(samples, None)
        span = tsdb_window(local.tsdb) if window is None else None
        if window is None and span is not None:
            window = Window(_at(span[0]), _at(span[1]))
        start = source.start or (window.start if window else None)
        end = source.end or (window.end if window else None)
        if start is None or end is None:
            return empty_series()  # no data anywhere: the judge says the window is empty
        return _series(server, source, reads.series, start, end)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
