"""Synthetic canaries with known truth, to measure a judge's false alarms and power.

Realistic where it matters for the statistics: a diurnal load curve, shared load
swings (both variants see them), overdispersed and autocorrelated error counts
(an AR(1) log-intensity per variant, gamma-Poisson counts), per-session clustering of
latencies (a session-level multiplier), and a declared canary share. Effects are
injected on the canary only: an error-rate multiplier, a p95 TTFB shift, a reconnect
rate, a 4401 burst. The output is the frames the sources return (counters stay raw),
so a judge is tested end to end through `measures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from scipy import signal

from wsanalysis.frames.measures import Counts, Window
from wsanalysis.sources.metric_names import CLOSES_TOTAL, CONNECTIONS_TOTAL, FRAMES_SENT_TOTAL
from wsanalysis.sources.schema import (
    OPEN,
    RECONNECT_SCHEDULED,
    RUM_SCHEMA,
    TIMESTAMP,
    TTFB,
    normalize_samples,
)

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class CanaryCase:
    """Traffic and truth of one synthetic canary run (not a fleet `reference.scenario.Scenario`:
    counts drawn directly, no clients or servers)."""

    hours: float = 1.0
    connections_per_hour: float = 20_000.0  # both variants together, at the diurnal mean
    canary_share: float = 0.10
    error_rate: float = 0.01  # error frames + 1011 closes per connection
    reconnect_rate: float = 0.02  # reconnects scheduled per connection
    auth_rate: float = 0.005  # 4401 closes per connection
    ttfb_median_s: float = 0.8
    messages_per_connection: float = 2.0  # TTFB samples per connection
    dispersion: float = 0.25  # sd of the AR(1) log-intensity (overdispersion)
    autocorrelation: float = 0.5  # AR(1) phi per minute
    # errors per erroring connection (geometric, mean this): 1 is one error each; above 1
    # errors come in clusters, as real error frames do (a broken client repeats itself)
    error_cluster: float = 1.0
    auth_dispersion: float = 0.0  # sd of an AR(1) log-intensity on 4401 closes (0: Poisson)
    session_sd: float = 0.25  # sd of the per-session log-latency multiplier
    # effects on the canary
    error_multiplier: float = 1.0
    ttfb_shift_s: float = 0.0
    canary_reconnect_rate: float | None = None
    auth_burst_multiplier: float = 1.0
    auth_burst_minutes: tuple[int, int] = (20, 35)
    start: datetime = START


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """A stationary AR(1) series with marginal sd `sd`."""
    first = rng.normal(0, sd)
    noise = rng.normal(0, sd * np.sqrt(1 - phi**2), n)
    noise[0] = first
    return signal.lfilter([1.0], [1.0, -phi], noise)


@dataclass(frozen=True)
class MinuteCounts:
    """One variant's counts per minute: what the server's counters add up."""

    opened: np.ndarray
    errors: np.ndarray
    internal: np.ndarray  # the part of `errors` that are 1011 closes
    auth: np.ndarray


def _load(scenario: CanaryCase, rng: np.random.Generator) -> np.ndarray:
    """Connections per minute for both variants together: diurnal, with shared swings."""
    t = np.arange(int(round(scenario.hours * 60)))
    hour_of_day = (scenario.start.hour + t / 60.0) % 24
    diurnal = 1 + 0.4 * np.sin(2 * np.pi * (hour_of_day - 9) / 24)
    shared = np.exp(_ar1(rng, len(t), scenario.autocorrelation, scenario.dispersion / 2))
    return scenario.connections_per_hour / 60 * diurnal * shared


def _minute_counts(
    scenario: CanaryCase, rng: np.random.Generator, load: np.ndarray, canary: bool
) -> MinuteCounts:
    minutes = len(load)
    opened = rng.poisson(load * (scenario.canary_share if canary else 1 - scenario.canary_share))
    intensity = np.exp(_ar1(rng, minutes, scenario.autocorrelation, scenario.dispersion))
    error_rate = scenario.error_rate * (scenario.error_multiplier if canary else 1.0)
    cluster = scenario.error_cluster
    errors = rng.poisson(rng.gamma(10.0, intensity * opened * error_rate / (10.0 * cluster)))
    if cluster != 1.0:  # each erroring connection repeats: geometric sizes of mean `cluster`
        errors = errors + rng.negative_binomial(np.maximum(errors, 1), 1.0 / cluster) * (errors > 0)
    auth_rate = np.full(minutes, scenario.auth_rate)
    if canary and scenario.auth_burst_multiplier != 1.0:
        low, high = scenario.auth_burst_minutes
        auth_rate[low:high] *= scenario.auth_burst_multiplier
    if scenario.auth_dispersion > 0:
        auth_rate = auth_rate * np.exp(
            _ar1(rng, minutes, scenario.autocorrelation, scenario.auth_dispersion)
            - scenario.auth_dispersion**2 / 2
        )
    auth = rng.poisson(opened * auth_rate)
    internal = rng.binomial(errors, 0.3)  # 30% of errors are 1011 closes, the rest frames
    return MinuteCounts(opened, errors, internal, auth)


def minute_counts(scenario: CanaryCase, seed: int) -> dict[str, MinuteCounts]:
    """Counts per minute and variant, exactly as `synthesize(..., beacons=False)` draws
    them: the gate-level fast path for calibration runs (no frames, no counters)."""
    rng = np.random.default_rng(seed)
    load = _load(scenario, rng)
    return {v: _minute_counts(scenario, rng, load, v == "canary") for v in ("canary", "control")}


def synthesize(
    scenario: CanaryCase, seed: int, beacons: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Server samples (60 s scrapes) and RUM beacons for one run (None if not wanted)."""
    rng = np.random.default_rng(seed)
    load = _load(scenario, rng)
    t = np.arange(len(load))
    samples, rum = [], []
    for variant in ("canary", "control"):
        canary = variant == "canary"
        c = _minute_counts(scenario, rng, load, canary)
        opened = c.opened
        samples.append(
            _counters(scenario, variant, t, opened, c.errors - c.internal, c.internal, c.auth)
        )
        reconnect_rate = (
            scenario.canary_reconnect_rate
            if canary and scenario.canary_reconnect_rate is not None
            else scenario.reconnect_rate
        )
        if beacons:
            rum.append(_beacons(scenario, variant, rng, t, opened, reconnect_rate, canary))
    frame = normalize_samples(pl.concat(samples, how="diagonal"))
    return frame, pl.concat(rum, how="diagonal_relaxed") if beacons else None


def _counters(
    scenario: CanaryCase,
    variant: str,
    t: np.ndarray,
    opened: np.ndarray,
    error_frames: np.ndarray,
    internal: np.ndarray,
    auth: np.ndarray,
) -> pl.DataFrame:
    times = [scenario.start + timedelta(minutes=int(m) + 1) for m in t]
    times = [scenario.start, *times]  # a scrape at the start: counters already running

    def series(metric: str, per_minute: np.ndarray, **labels: str) -> pl.DataFrame:
        base = 1000.0  # the process started earlier: counters are not zero
        values = base + np.concatenate([[0.0], np.cumsum(per_minute)])
        return pl.DataFrame(
            {"timestamp": times, "metric": metric, "variant": variant, "value": values, **labels}
        ).with_columns(pl.col("timestamp").cast(TIMESTAMP))

    return pl.concat(
        [
            series(CONNECTIONS_TOTAL, opened),
            series(FRAMES_SENT_TOTAL, error_frames, event="error"),
            series(CLOSES_TOTAL, internal, code="1011"),
            series(CLOSES_TOTAL, auth, code="4401"),
        ],
        how="diagonal",
    )


def _beacons(
    scenario: CanaryCase,
    variant: str,
    rng: np.random.Generator,
    t: np.ndarray,
    opened: np.ndarray,
    reconnect_rate: float,
    canary: bool,
) -> pl.DataFrame:
    total = int(opened.sum())
    start_ms = int(scenario.start.timestamp() * 1000)
    open_ts = start_ms + (np.repeat(t, opened) * 60_000 + rng.uniform(0, 60_000, total)).astype(
        np.int64
    )
    session = (pl.lit(variant[:2]) + pl.int_range(total).cast(pl.Utf8)).alias("s")
    session = pl.select(session).to_series().to_numpy()
    frames = [_frame(OPEN, variant, open_ts, session)]
    reconnect = rng.random(total) < reconnect_rate
    frames.append(
        _frame(RECONNECT_SCHEDULED, variant, open_ts[reconnect] + 30_000, session[reconnect])
    )
    per_connection = rng.poisson(scenario.messages_per_connection, total)
    index = np.repeat(np.arange(total), per_connection)
    session_effect = rng.normal(0, scenario.session_sd, total)[index]
    ttfb = scenario.ttfb_median_s * np.exp(session_effect + rng.normal(0, 0.35, len(index)))
    if canary:
        ttfb = ttfb + scenario.ttfb_shift_s
    frame = _frame(TTFB, variant, open_ts[index] + 5_000, session[index])
    frames.append(frame.with_columns(pl.Series("ttfb_ms", ttfb * 1000.0)))
    return pl.concat(frames, how="diagonal_relaxed").with_columns(
        [
            pl.lit(None, dtype=dtype).alias(c)
            for c, dtype in RUM_SCHEMA.items()
            if c not in ("v", "ts", "type", "session_id", "variant", "ttfb_ms")
        ]
    )


def _frame(kind: str, variant: str, ts: np.ndarray, session: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "v": np.ones(len(ts), dtype=np.int64),
            "ts": pl.Series(ts, dtype=pl.Int64).cast(TIMESTAMP),
            "type": kind,
            "session_id": session,
            "variant": variant,
        }
    )


def gate_counts(
    scenario: CanaryCase, seed: int, events: str = "errors", bucket_minutes: int = 1
) -> Counts:
    """A rate or spike gate's input (`frames.measures.Counts`) built straight from the
    counts per minute: `events` is "errors" (error_rate) or "auth" (4401 closes). What
    `measures.counts` derives from `synthesize(..., beacons=False)`, without the frames."""
    per = minute_counts(scenario, seed)
    minutes = len(per["canary"].opened)
    n = minutes // bucket_minutes
    start = scenario.start.replace(tzinfo=None)
    buckets = [start + timedelta(minutes=bucket_minutes * i) for i in range(n)]

    def binned(x: np.ndarray) -> np.ndarray:
        # a minute's increase lands where its later scrape does (the window's end is in
        # the last bucket), as `measures` reads counters
        shifted = np.concatenate([[0], x[:-1]]).astype(float)
        shifted[-1] += x[-1]
        return shifted[: n * bucket_minutes].reshape(n, bucket_minutes).sum(axis=1)

    parts = [
        pl.DataFrame(
            {
                "bucket": buckets,
                "variant": variant,
                "events": binned(getattr(c, events)),
                "exposure": binned(c.opened),
            }
        )
        for variant, c in per.items()
    ]
    frame = pl.concat(parts).with_columns(pl.col("bucket").cast(pl.Datetime("ms", "UTC")))
    window = Window(scenario.start, scenario.start + timedelta(minutes=minutes))
    return Counts(frame, "prometheus", timedelta(minutes=bucket_minutes), window)
