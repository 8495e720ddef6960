"""Real Prometheus servers for tests: backfilled from a dataset, on free loopback ports.

Register with `pytest_plugins = ["tests.prometheus.fixtures"]`. Every fixture that
needs the binaries skips (with the install command as reason) when they are missing;
nothing else is skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from wsanalysis.sources.local_prometheus import INSTALL_COMMAND, LocalPrometheus, backfill
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.schema import TIMESTAMP

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DATASET = REPO / "data" / "sample"

#: The synthetic dataset's window: old on purpose (retention must keep it), 2 h at 15 s.
SYNTHETIC_START = datetime(2024, 3, 1, tzinfo=UTC)
SYNTHETIC_END = SYNTHETIC_START + timedelta(hours=2)
SYNTHETIC_STEP = timedelta(seconds=15)
#: One series is scraped 250 ms off the grid, to check millisecond timestamps survive.
OFFSET_SERIES = "ws_frames_sent_total"


def require_prometheus() -> None:
    missing = [name for name in ("prometheus", "promtool") if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: run `{INSTALL_COMMAND}`")


def synthetic_samples(seed: int = 7) -> pl.DataFrame:
    """A small labelled samples frame: gauges, counters and a histogram, two variants.

    Each variant also carries a `track` label (canary / stable) for selector mappings.
    """
    rng = np.random.default_rng(seed)
    times = pl.datetime_range(
        SYNTHETIC_START, SYNTHETIC_END, SYNTHETIC_STEP, eager=True, time_unit="ms"
    )
    n = len(times)
    frames = []

    def series(metric: str, variant: str, values: np.ndarray, **labels: str) -> None:
        stamps = times + timedelta(milliseconds=250) if metric == OFFSET_SERIES else times
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": stamps,
                    "metric": metric,
                    "variant": variant,
                    "value": values,
                    "track": "canary" if variant == "canary" else "stable",
                    **labels,
                }
            )
        )

    for variant in ("canary", "control"):
        series("ws_connections_active", variant, rng.normal(500, 20, n).round(3))
        for code in ("1000", "1006", "4401"):
            series(
                "ws_closes_total", variant, np.cumsum(rng.poisson(2, n)).astype(float), code=code
            )
        series(OFFSET_SERIES, variant, np.cumsum(rng.poisson(30, n)).astype(float), event="chat")
        counts = np.cumsum(rng.poisson(5, n))
        for le, share in (("0.5", 0.4), ("2.5", 0.9), ("+Inf", 1.0)):
            series("ws_assistant_ttfb_seconds_bucket", variant, np.floor(counts * share), le=le)
        series("ws_assistant_ttfb_seconds_count", variant, counts.astype(float))
        series("ws_assistant_ttfb_seconds_sum", variant, np.cumsum(rng.exponential(0.7, n)))
    frame = pl.concat(frames, how="diagonal")
    return frame.with_columns(pl.col("timestamp").cast(TIMESTAMP))


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset folder holding only `metrics.om`, written by the file source's writer."""
    folder = tmp_path_factory.mktemp("synthetic-dataset")
    write_openmetrics(synthetic_samples(), folder / "metrics.om")
    return folder


def _serve(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    require_prometheus()
    tsdb = tmp_path_factory.mktemp("tsdb")
    backfill(dataset, tsdb, replace=True)
    with LocalPrometheus(tsdb) as prometheus:
        yield prometheus


@pytest.fixture(scope="session")
def synthetic_prometheus(
    synthetic_dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPrometheus]:
    """A real prometheus over the synthetic dataset."""
    yield from _serve(synthetic_dataset, tmp_path_factory)


@pytest.fixture(scope="session")
def sample_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """A real prometheus over the bundled sample dataset (data/sample)."""
    if not (SAMPLE_DATASET / "metrics.om").is_file():
        pytest.fail(f"the bundled sample dataset is missing: {SAMPLE_DATASET}/metrics.om")
    yield from _serve(SAMPLE_DATASET, tmp_path_factory)
