"""A compact per-variant overview of a dataset: what `make demo` prints first.

Pure functions of the frames the sources return, so the figures are testable and
the same whether the data came from a file or a Prometheus server.
"""

from __future__ import annotations

import polars as pl

from wsanalysis.frames.counters import total_increase
from wsanalysis.sources.metric_names import CLOSES_TOTAL, CONNECTIONS_ACTIVE, CONNECTIONS_TOTAL
from wsanalysis.sources.schema import GIVE_UP, RECONNECT_SCHEDULED, TTFB


def metrics_overview(samples: pl.DataFrame) -> pl.DataFrame:
    """Per variant: connections opened, closes by kind, mean active connections."""
    if samples.is_empty():
        return pl.DataFrame(schema={"variant": pl.Utf8})
    opened = total_increase(samples.filter(pl.col("metric") == CONNECTIONS_TOTAL))
    closes = samples.filter(pl.col("metric") == CLOSES_TOTAL)
    by_code = total_increase(closes, by=["variant", "code"]) if "code" in closes.columns else None
    overview = opened.select("variant", pl.col("increase").alias("connections"))
    if by_code is not None and by_code.height:
        wide = by_code.pivot(on="code", index="variant", values="increase", sort_columns=True)
        wide = wide.rename({c: f"closes_{c}" for c in wide.columns if c != "variant"})
        overview = overview.join(wide, on="variant", how="full", coalesce=True)
        codes = [c for c in wide.columns if c != "variant"]
        overview = overview.with_columns(pl.col(codes).fill_null(0.0))
        if "closes_1011" in overview.columns:
            overview = overview.with_columns(
                (pl.col("closes_1011") / pl.col("connections")).alias("internal_error_rate")
            )
    active = (  # a variant's open connections at a scrape: the sum over its pods
        samples.filter(pl.col("metric") == CONNECTIONS_ACTIVE)
        .group_by("variant", "timestamp")
        .agg(pl.col("value").sum())
        .group_by("variant")
        .agg(pl.col("value").mean().alias("active_mean"))
    )
    return overview.join(active, on="variant", how="full", coalesce=True).sort("variant")


def rum_overview(beacons: pl.DataFrame) -> pl.DataFrame:
    """Per variant: sessions, beacons, reconnects, give-ups, median and p95 TTFB."""
    if beacons.is_empty():
        return pl.DataFrame(schema={"variant": pl.Utf8})
    ttfb = pl.col("ttfb_ms").filter(pl.col("type") == TTFB)
    return (
        beacons.group_by("variant")
        .agg(
            pl.col("session_id").n_unique().alias("sessions"),
            pl.len().alias("beacons"),
            (pl.col("type") == RECONNECT_SCHEDULED).sum().alias("reconnects"),
            (pl.col("type") == GIVE_UP).sum().alias("give_ups"),
            ttfb.quantile(0.5, "linear").alias("ttfb_p50_ms"),
            ttfb.quantile(0.95, "linear").alias("ttfb_p95_ms"),
        )
        .sort("variant")
    )
