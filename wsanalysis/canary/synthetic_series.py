"""Synthetic CPU counters per pod, canary against control, for `series` gates: tests and
`benchmarks/bench_series_gate.py`.

Each pod's CPU seconds counter is scraped every 15 s; its use (cores) is the variant's
level × a shared diurnal-like swing × the pod's own level (pods differ, log-normal) ×
autocorrelated noise (AR(1) on the log scale, as load moves slowly), so the per-step
values a `rate()` gives are autocorrelated and overdispersed, which is what the
statistic must hold up against. The canary's pods use `factor` × control's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from scipy import signal

from wsanalysis.sources.schema import TIMESTAMP

CPU_METRIC = "container_cpu_usage_seconds_total"
START = datetime(2026, 11, 2, 6, tzinfo=UTC)


def cpu_samples(
    factor: float,
    *,
    seed: int = 0,
    hours: float = 2.0,
    pods: tuple[int, int] = (2, 6),
    scrape_s: int = 15,
    cores: float = 0.25,
    phi: float = 0.95,
    noise: float = 0.15,
    pod_spread: float = 0.05,
    start: datetime = START,
    variants: tuple[str, str] = ("canary", "stable"),
    labels: dict[str, str] | None = None,
) -> pl.DataFrame:
    """A samples frame of CPU counters, one series per pod, the variant in `variant`
    (`variants` names canary's and control's values). Pods differ by a log-normal level
    (`pod_spread`): a persistent difference between the variants' pods, which no interval
    over time can tell from the release's own effect."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 // scrape_s)
    times = pl.datetime_range(
        start, start + timedelta(seconds=scrape_s * (n - 1)), timedelta(seconds=scrape_s),
        eager=True, time_unit="ms",
    )  # fmt: skip
    swing = 1 + 0.3 * np.sin(np.linspace(0, 2 * np.pi, n))
    frames = []
    for (variant, count), level in zip(
        zip(variants, pods, strict=True), (factor, 1.0), strict=True
    ):
        for pod in range(count):
            shocks = rng.normal(0, noise * np.sqrt(1 - phi**2), n)
            shocks[0] = rng.normal(0, noise)  # the stationary start
            log_noise = signal.lfilter([1.0], [1.0, -phi], shocks)  # AR(1)
            use = cores * level * swing * rng.lognormal(0, pod_spread) * np.exp(log_noise)
            frames.append(
                pl.DataFrame(
                    {
                        "timestamp": times,
                        "metric": CPU_METRIC,
                        "variant": variant,
                        "value": np.cumsum(use * scrape_s),
                        "pod": f"{variant}-{pod}",
                        **(labels or {}),
                    }
                )
            )
    return pl.concat(frames).with_columns(pl.col("timestamp").cast(TIMESTAMP))
