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

from wsanalysis.sources.metric_names import CLOSES_TOTAL, CONNECTIONS_TOTAL, FRAMES_SENT_TOTAL
from wsanalysis.sources.schema import RUM_SCHEMA, TIMESTAMP, normalize_samples

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
    x = np.empty(n)
    x[0] = rng.normal(0, sd)
    innovation = sd * np.sqrt(1 - phi**2)
    noise = rng.normal(0, innovation, n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    return x


def synthesize(
    scenario: CanaryCase, seed: int, beacons: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Server samples (60 s scrapes) and RUM beacons for one run (None if not wanted)."""
    rng = np.random.default_rng(seed)
    minutes = int(round(scenario.hours * 60))
    t = np.arange(minutes)
    hour_of_day = (scenario.start.hour + t / 60.0) % 24
    diurnal = 1 + 0.4 * np.sin(2 * np.pi * (hour_of_day - 9) / 24)
    shared = np.exp(_ar1(rng, minutes, scenario.autocorrelation, scenario.dispersion / 2))
    load = scenario.connections_per_hour / 60 * diurnal * shared
    samples, rum = [], []
    for variant, share in (
        ("canary", scenario.canary_share),
        ("control", 1 - scenario.canary_share),
    ):
        canary = variant == "canary"
        opened = rng.poisson(load * share)
        intensity = np.exp(_ar1(rng, minutes, scenario.autocorrelation, scenario.dispersion))
        error_rate = scenario.error_rate * (scenario.error_multiplier if canary else 1.0)
        errors = rng.poisson(rng.gamma(10.0, intensity * opened * error_rate / 10.0))
        auth_rate = np.full(minutes, scenario.auth_rate)
        if canary and scenario.auth_burst_multiplier != 1.0:
            low, high = scenario.auth_burst_minutes
            auth_rate[low:high] *= scenario.auth_burst_multiplier
        auth = rng.poisson(opened * auth_rate)
        internal = rng.binomial(errors, 0.3)  # 30% of errors are 1011 closes, the rest frames
        samples.append(_counters(scenario, variant, t, opened, errors - internal, internal, auth))
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
    frames = [_frame("ws.open", variant, open_ts, session)]
    reconnect = rng.random(total) < reconnect_rate
    frames.append(
        _frame("ws.reconnect_scheduled", variant, open_ts[reconnect] + 30_000, session[reconnect])
    )
    per_connection = rng.poisson(scenario.messages_per_connection, total)
    index = np.repeat(np.arange(total), per_connection)
    session_effect = rng.normal(0, scenario.session_sd, total)[index]
    ttfb = scenario.ttfb_median_s * np.exp(session_effect + rng.normal(0, 0.35, len(index)))
    if canary:
        ttfb = ttfb + scenario.ttfb_shift_s
    frame = _frame("ws.ttfb", variant, open_ts[index] + 5_000, session[index])
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
