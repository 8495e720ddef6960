"""A real VictoriaMetrics over a dataset: import `metrics.om`, then serve it.

VictoriaMetrics (Debian's `victoria-metrics`) answers the Prometheus query API, so the
judge reads it through the same `PrometheusSource`. What differs from Prometheus:

- loading: no promtool backfill; samples are POSTed to `/api/v1/import` as JSON lines,
  one line per series (`{"metric": {...}, "values": [...], "timestamps": [ms...]}`),
  then `/internal/force_flush` makes them searchable at once;
- old samples: VictoriaMetrics drops samples outside `-retentionPeriod` (1 month by
  default) at import, silently; we start it with a retention of 100 years so months-
  old datasets load, and check the imported count through `/api/v1/series/count`;
- lookback: VictoriaMetrics sizes the instant-selector lookback from the series' own
  scrape interval; we pin `-search.maxStalenessInterval=5m` (Prometheus's default) so
  the push-down's difference expressions see the same samples on both engines;
- `/api/v1/export` streams raw samples per series (JSON lines) without the query
  engine: the fastest raw read, used by `export_samples` (Prometheus has no such API;
  its raw reads are range-vector queries);
- response cache: off (`-search.disableCache`), since a dataset is imported after start.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import requests

from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.local_prometheus import metrics_file, serve_on_loopback, stop_process
from wsanalysis.sources.openmetrics import read_openmetrics
from wsanalysis.sources.prometheus import PrometheusSettings, PrometheusSource
from wsanalysis.sources.schema import SAMPLES_FIXED

INSTALL_COMMAND = "apt-get install -y victoria-metrics"
BINARY = "victoria-metrics"
IMPORT_BATCH = 2_000  # series per POST


def find_binary() -> str:
    path = shutil.which(BINARY)
    if path is None:
        raise UsageError(
            f"`{BINARY}` is not installed (needed for --engine victoriametrics)",
            f"install Debian's package: `{INSTALL_COMMAND}` (as root)",
        )
    return path


class LocalVictoriaMetrics:
    """`victoria-metrics` on a loopback port over a storage directory; a context manager."""

    def __init__(
        self,
        storage: str | Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        extra_flags: tuple[str, ...] = (),
        ready_timeout: float = 60.0,
    ) -> None:
        self.storage = Path(storage)
        self.host = host
        self.port = port
        self.extra_flags = extra_flags
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def source(self, **settings: Any) -> PrometheusSource:
        return PrometheusSource(PrometheusSettings(url=self.url, **settings))

    def __enter__(self) -> LocalVictoriaMetrics:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        binary = find_binary()
        self.storage.mkdir(parents=True, exist_ok=True)
        self._log = self.storage.parent / f"{self.storage.name}.victoria-metrics.log"
        log = self._log

        def launch(port: int) -> subprocess.Popen[bytes]:
            with log.open("wb") as out:
                return subprocess.Popen(
                    [
                        binary,
                        f"-storageDataPath={self.storage}",
                        f"-httpListenAddr={self.host}:{port}",
                        "-retentionPeriod=100y",
                        "-search.maxStalenessInterval=5m",
                        "-search.disableCache",
                        "-search.latencyOffset=0s",
                        "-loggerLevel=ERROR",
                        *self.extra_flags,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )

        def ready(port: int) -> bool:
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"http://{self.host}:{port}/health", timeout=2).ok
            return False

        self.process, self.port = serve_on_loopback(
            "victoria-metrics",
            launch,
            ready,
            log,
            host=self.host,
            port=self.port,
            ready_timeout=self.ready_timeout,
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    # -- data ---------------------------------------------------------------------------

    def import_samples(self, samples: pl.DataFrame, variant_label: str = "variant") -> int:
        """POST a samples frame (one JSON line per series), flush, return the series count."""
        lines = series_json_lines(samples, variant_label)
        for first in range(0, len(lines), IMPORT_BATCH):
            body = gzip.compress("\n".join(lines[first : first + IMPORT_BATCH]).encode())
            response = requests.post(
                f"{self.url}/api/v1/import",
                data=body,
                headers={"Content-Encoding": "gzip"},
                timeout=300,
            )
            if response.status_code >= 300:
                raise DataError(
                    f"VictoriaMetrics refused the import (HTTP {response.status_code}): "
                    f"{response.text[:300]}",
                    "check the dataset's metrics file",
                )
        requests.get(f"{self.url}/internal/force_flush", timeout=60)
        return len(lines)

    def import_dataset(self, dataset: str | Path) -> int:
        """Import a dataset folder's metrics file; every sample must be searchable after."""
        samples = read_openmetrics(metrics_file(dataset))
        series = self.import_samples(samples)
        self._check_loaded(samples)
        return series

    def _check_loaded(self, samples: pl.DataFrame) -> None:
        """Samples outside the retention are dropped silently: count what is searchable."""
        if samples.is_empty():
            return
        start = samples["timestamp"].min().timestamp()
        end = samples["timestamp"].max().timestamp()
        params = {"match[]": '{__name__=~".+"}', "start": f"{start:.3f}", "end": f"{end:.3f}"}
        for _ in range(50):
            response = requests.get(f"{self.url}/api/v1/export", params=params, timeout=300)
            stored = sum(len(json.loads(line)["values"]) for line in response.text.splitlines())
            if stored >= samples.height:
                return
            time.sleep(0.1)
        raise DataError(
            f"VictoriaMetrics holds {stored:,} of the dataset's {samples.height:,} samples",
            "samples outside the retention period or duplicates were dropped; check the data",
        )


def series_json_lines(samples: pl.DataFrame, variant_label: str = "variant") -> list[str]:
    """`/api/v1/import` lines: one per series, labels plus values and ms timestamps."""
    labels = [c for c in samples.columns if c not in SAMPLES_FIXED]
    keys = ["metric", "variant", *labels]
    grouped = (
        samples.with_columns(pl.col("timestamp").dt.epoch("ms").alias("ms"))
        .sort([*keys, "timestamp"], nulls_last=True)
        .group_by(keys, maintain_order=True)
        .agg("value", "ms")
    )
    lines = []
    for row in grouped.iter_rows(named=True):
        metric = {"__name__": row["metric"], variant_label: row["variant"]}
        metric |= {name: row[name] for name in labels if row[name] is not None}
        values = [_number(v) for v in row["value"]]
        lines.append(
            json.dumps(
                {"metric": metric, "values": values, "timestamps": row["ms"]},
                separators=(",", ":"),
            )
        )
    return lines


def _number(value: float) -> float | str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Inf" if value > 0 else "-Inf"
    return value


@contextlib.contextmanager
def victoriametrics_for_dataset(
    dataset: str | Path, *, storage: str | Path | None = None, port: int | None = None
) -> Iterator[LocalVictoriaMetrics]:
    """Serve a dataset from VictoriaMetrics (a temporary storage directory if None)."""
    with contextlib.ExitStack() as stack:
        if storage is None:
            work = stack.enter_context(tempfile.TemporaryDirectory(prefix="wsanalysis-vm-"))
            storage = Path(work) / "storage"
        server = stack.enter_context(LocalVictoriaMetrics(storage, port=port))
        server.import_dataset(dataset)
        yield server
