"""What a Prometheus scrape of the model's pods would hold: the samples frame.

Every pod is its own process with its own counters: a restart starts them again from
zero (the reset the restart detector reads), and a labelled series (`ws_closes_total
{code="4401"}`) exists only once its process has counted one such close, as a Prometheus
client library creates a labelled child on first use. The variant is a target label.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

from wsanalysis.sources.metric_names import (
    ASSISTANT_TTFB,
    CLOSES_TOTAL,
    CONNECTION_DURATION,
    CONNECTIONS_ACTIVE,
    CONNECTIONS_TOTAL,
    FRAMES_SENT_TOTAL,
)
from wsanalysis.sources.schema import TIMESTAMP, normalize_samples
from wsanalysis.traffic.model import Run

TTFB_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
DURATION_BUCKETS = (1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200)


def _count(times: np.ndarray, at: np.ndarray, since: np.ndarray) -> np.ndarray:
    """Events in [since, at] for each scrape (times sorted)."""
    return np.searchsorted(times, at, "right") - np.searchsorted(times, since, "left")


def scrape(run: Run) -> pl.DataFrame:
    """The samples frame of every pod, scraped every `scrape_s` over the window."""
    traffic = run.traffic
    scrapes = int(round((traffic.horizon - traffic.window_start) / traffic.scrape_s)) + 1
    at = traffic.window_start + traffic.scrape_s * np.arange(scrapes)  # the window's end too
    parts = []
    for variant in traffic.variants:
        for pod in range(traffic.pod_count(variant)):
            starts = sorted([traffic.origin] + [t for v, p, t in run.restarts
                                                if v == variant and p == pod])  # fmt: skip
            since = np.asarray(starts)[np.searchsorted(starts, at, "right") - 1]
            parts += list(_pod_series(run, variant, pod, at, since))
    frame = pl.concat(parts, how="diagonal_relaxed")
    return normalize_samples(frame.with_columns(pl.col("timestamp").cast(TIMESTAMP)))


def _pod_series(
    run: Run, variant: str, pod: int, at: np.ndarray, since: np.ndarray
) -> Iterator[pl.DataFrame]:
    c, f, r = run.connections, run.error_frames, run.replies
    mine = (c["variant"] == variant) & (c["pod"] == pod)
    opened, closed = np.sort(c["open"][mine]), np.sort(c["close"][mine])
    stamp = np.round(at * 1000).astype("int64")
    name = f"{variant}-{pod}"

    def series(metric: str, values: np.ndarray, keep: np.ndarray | None = None, **labels):
        keep = np.ones(len(at), bool) if keep is None else keep
        return pl.DataFrame({
            "timestamp": pl.Series(stamp[keep]).cast(pl.Datetime("ms", "UTC")),
            "metric": metric, "variant": variant, "value": values[keep].astype(float),
            "pod": name, **labels,
        })  # fmt: skip

    yield series(CONNECTIONS_TOTAL, _count(opened, at, since))
    yield series(CONNECTIONS_ACTIVE, np.searchsorted(opened, at, "right")
                 - np.searchsorted(closed, at, "right"))  # fmt: skip
    codes, close_times = c["code"][mine], c["close"][mine]
    for code in np.unique(codes):
        counted = _count(np.sort(close_times[codes == code]), at, since)
        yield series(CLOSES_TOTAL, counted, counted > 0, code=str(code))
    errors = np.sort(f["time"][(f["variant"] == variant) & (f["pod"] == pod)])
    counted = _count(errors, at, since)
    yield series(FRAMES_SENT_TOTAL, counted, counted > 0, event="error")
    reply = (r["variant"] == variant) & (r["pod"] == pod)
    yield series(FRAMES_SENT_TOTAL, _count(np.sort(r["time"][reply]), at, since),
                 event="assistant_message")  # fmt: skip
    lived = close_times - c["open"][mine]
    yield from _histogram(series, CONNECTION_DURATION, close_times, lived, DURATION_BUCKETS,
                          at, since)  # fmt: skip
    yield from _histogram(series, ASSISTANT_TTFB, r["time"][reply], r["ttfb_ms"][reply] / 1000,
                          TTFB_BUCKETS, at, since)  # fmt: skip


def _histogram(series, family, times, values, buckets, at, since) -> Iterator[pl.DataFrame]:
    order = np.argsort(times)
    times, values = times[order], values[order]
    for le in (*buckets, float("inf")):
        label = "+Inf" if le == float("inf") else repr(float(le))
        yield series(f"{family}_bucket", _count(times[values <= le], at, since), le=label)
    yield series(f"{family}_count", _count(times, at, since))
    total = np.concatenate([[0.0], np.cumsum(values)])
    right = np.searchsorted(times, at, "right")
    left = np.searchsorted(times, since, "left")
    yield series(f"{family}_sum", total[right] - total[left])
