"""Connection survival: Kaplan–Meier per variant with censoring (sockets still open at the
window's end), log-rank canary against control, p50/p95 per hour, and a regression finding
when the canary's connections end markedly sooner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from wsanalysis.frames.measures import Window, connection_durations
from wsanalysis.frames.selection import RumFilter
from wsanalysis.incident.findings import Finding
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.sources.schema import CLOSE, OPEN
from wsanalysis.stats.survival import KaplanMeierResult, LogRankResult, kaplan_meier, logrank

CLOSES = RumFilter(type=CLOSE, column="duration_ms", scale=0.001)
ALPHA = 1e-3
SHORTER = 0.8


@dataclass(frozen=True)
class SurvivalComparison:
    """Kaplan–Meier per variant and the log-rank test canary vs control (when both exist)."""

    curves: dict[str, KaplanMeierResult]
    test: LogRankResult | None


def durations(
    data: IncidentData, window: Window | None = None, exclude: list[Finding] | None = None
) -> pl.DataFrame | None:
    """variant, duration (s), observed — from RUM close beacons plus censored open sockets.

    Connections closed during an `exclude` finding of their variant (a storm, an outage)
    are left out: those explain themselves, a regression is what remains outside them.
    """
    window = window or data.window
    if not data.has_rum or window is None:
        return None
    found = connection_durations(CLOSES, _without(data.beacons, exclude), window)
    return found.frame if found is not None else None


def connections(data: IncidentData) -> pl.DataFrame | None:
    """variant, session_id, opened, duration (s), observed: RUM connections with the time
    each opened (a closed one: its close minus its duration; an open one: its open
    beacon, censored at the window's end)."""
    if not data.has_rum or data.window is None:
        return None
    closes = data.of_type(CLOSE)
    closed = closes.filter(pl.col("duration_ms").is_not_null()).select(
        "variant", "session_id",
        (pl.col("ts") - pl.duration(milliseconds=pl.col("duration_ms").cast(pl.Int64)))
        .alias("opened"), (pl.col("duration_ms") / 1000).alias("duration"),
        pl.lit(True).alias("observed"),
    )  # fmt: skip
    still = data.of_type(OPEN).filter(pl.col("socket_id").is_not_null())
    still = still.join(closes.select("socket_id"), on="socket_id", how="anti").select(
        "variant", "session_id", pl.col("ts").alias("opened"),
        ((pl.lit(data.window.end) - pl.col("ts")).dt.total_milliseconds() / 1000).alias(
            "duration"), pl.lit(False).alias("observed"),
    )  # fmt: skip
    frame = pl.concat([closed, still]).filter(pl.col("duration") >= 0)
    return frame if frame.height else None


def _without(beacons: pl.DataFrame, exclude: list[Finding] | None) -> pl.DataFrame:
    """The beacons less the sockets closed during an `exclude` finding of their variant."""
    if not exclude:
        return beacons
    during = pl.lit(False)
    for f in exclude:
        during = during | (
            (pl.col("variant") == f.variant) & pl.col("ts").is_between(f.start, f.end)
        )
    gone = beacons.filter((pl.col("type") == CLOSE) & during).select("socket_id")
    return beacons.join(gone, on="socket_id", how="anti")


def compare(frame: pl.DataFrame) -> SurvivalComparison:
    curves = {}
    for variant in sorted(frame["variant"].unique().to_list()):
        part = frame.filter(pl.col("variant") == variant)
        curves[variant] = kaplan_meier(part["duration"].to_numpy(), part["observed"].to_numpy())
    test = None
    if {"canary", "control"} <= set(curves):
        a = frame.filter(pl.col("variant") == "canary")
        b = frame.filter(pl.col("variant") == "control")
        test = logrank(
            a["duration"].to_numpy(), b["duration"].to_numpy(),
            a["observed"].to_numpy(), b["observed"].to_numpy(),
        )  # fmt: skip
    return SurvivalComparison(curves, test)


def quantiles_over_time(data: IncidentData, bucket: timedelta = timedelta(hours=1)) -> pl.DataFrame:
    """p50 and p95 connection duration per variant and bucket of opening time (KM, censored
    at the window's end)."""
    rows = []
    if not data.has_rum or data.window is None:
        return pl.DataFrame(
            schema={
                "bucket": pl.Datetime("ms", "UTC"),
                "variant": pl.Utf8,
                "p50_s": pl.Float64,
                "p95_s": pl.Float64,
                "n": pl.Int64,
            }
        )
    opens = data.beacons.filter(pl.col("type") == OPEN).select("socket_id", "ts", "variant")
    closes = data.beacons.filter(pl.col("type") == CLOSE).select(
        "socket_id", pl.col("duration_ms").alias("d")
    )
    joined = opens.join(closes, on="socket_id", how="left")
    end = data.window.end
    joined = joined.with_columns(
        pl.col("d").is_not_null().alias("observed"),
        pl.when(pl.col("d").is_not_null())
        .then(pl.col("d") / 1000)
        .otherwise((pl.lit(end) - pl.col("ts")).dt.total_milliseconds() / 1000)
        .alias("duration"),
        pl.col("ts").dt.truncate(f"{int(bucket.total_seconds())}s").alias("bucket"),
    ).filter(pl.col("duration") >= 0)
    for (b, v), part in joined.group_by("bucket", "variant"):
        km = kaplan_meier(part["duration"].to_numpy(), part["observed"].to_numpy())
        rows.append({
            "bucket": b, "variant": v, "n": part.height,
            "p50_s": km.duration_quantile(0.5).estimate, "p95_s": km.duration_quantile(0.95).estimate,
        })  # fmt: skip
    return pl.DataFrame(rows).sort("variant", "bucket")
