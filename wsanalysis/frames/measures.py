"""From frames to what a gate's statistic needs: counts per bucket, samples, durations.

The sources return raw data (counters stay raw, beacons stay beacons); a gate names
which series or beacons make its figure. This module does that selection and the
bucketing, per variant, and says which source it used, so the statistics stay pure
and the verdict can state where each number came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import polars as pl

from wsanalysis.frames.counters import increases
from wsanalysis.frames.selection import MetricSource, RumFilter, Series
from wsanalysis.sources.schema import OPEN, TIMESTAMP

Source = Literal["prometheus", "rum", "histogram"]
RATE_BUCKET = timedelta(minutes=1)


@dataclass(frozen=True)
class Window:
    """The analysed interval, inclusive at both ends like a range selector."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, samples: pl.DataFrame, beacons: pl.DataFrame | None) -> Window | None:
        """The data's own window: the union of both frames' time spans."""
        starts, ends = [], []
        if not samples.is_empty():
            starts.append(samples["timestamp"].min())
            ends.append(samples["timestamp"].max())
        if beacons is not None and not beacons.is_empty():
            starts.append(beacons["ts"].min())
            ends.append(beacons["ts"].max())
        return cls(min(starts), max(ends)) if starts else None

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Counts:
    """Events and exposure per time bucket and variant (`frame`), from one source."""

    frame: pl.DataFrame  # bucket (datetime), variant, events, exposure
    source: Source
    bucket: timedelta
    window: Window

    def variant(self, name: str) -> pl.DataFrame:
        return self.frame.filter(pl.col("variant") == name).sort("bucket")

    def totals(self) -> dict[str, tuple[float, float]]:
        totals = self.frame.group_by("variant").agg(
            pl.col("events").sum(), pl.col("exposure").sum()
        )
        return {r["variant"]: (r["events"], r["exposure"]) for r in totals.iter_rows(named=True)}


@dataclass(frozen=True)
class Samples:
    """Observations with their cluster (session), from RUM, one frame per variant.

    Per variant because that is how every statistic reads them: a statistic takes each
    variant's values and clusters as arrays, without a pass over all samples to split.
    """

    variants: dict[str, pl.DataFrame]  # variant -> ts, cluster (session hash bucket), value
    source: Source = "rum"
    # push-down above the bootstrap's size: variant -> `stats.quantiles.RankedValues`
    # left in the engine (the frames above are then empty)
    ranked: dict[str, Any] | None = None

    @property
    def frame(self) -> pl.DataFrame:
        """All variants in one frame: ts, variant, cluster, value."""
        return pl.concat(
            [
                part.select("ts", pl.lit(name).alias("variant"), "cluster", "value")
                for name, part in self.variants.items()
            ]
        )


@dataclass(frozen=True)
class HistogramCounts:
    """Cumulative bucket counts per variant over the window (`le` as float, +Inf last)."""

    frame: pl.DataFrame  # variant, le, count
    source: Source = "histogram"


@dataclass(frozen=True)
class Durations:
    """Connection lifetimes per variant; `observed` False means still open (censored)."""

    # variant, duration, observed[, weight: connections per row][, opened: when (sequential
    # looks read who had reached an age by then)][, entry: the age at which a connection
    # opened before the window came under watch (the push-down path, which has no `opened`)]
    frame: pl.DataFrame
    source: Source = "rum"


def _series_filter(series: tuple[Series, ...], columns: list[str]) -> pl.Expr:
    condition = pl.lit(False)
    for one in series:
        match = pl.col("metric") == one.metric
        for matcher in one.matchers:
            match = match & matcher.expr(columns)
        condition = condition | match
    return condition


def _rum_filter(spec: RumFilter, columns: list[str]) -> pl.Expr:
    condition = pl.col("type") == spec.type
    for name, value in spec.where.items():
        condition = condition & (pl.col(name) == value if name in columns else pl.lit(False))
    return condition


def _bucket_count(window: Window, bucket: timedelta) -> int:
    return max(1, math.ceil(window.duration / bucket))


def bucket_of(column: str, window: Window, bucket: timedelta) -> pl.Expr:
    """Bucket start, aligned on the window's start (not on the epoch).

    The window is closed at its end, so a sample stamped exactly at the end joins the
    last bucket instead of opening an empty one.
    """
    offset = (pl.col(column) - pl.lit(window.start)).dt.total_milliseconds()
    size = int(bucket.total_seconds() * 1000)
    index = (offset // size).clip(0, _bucket_count(window, bucket) - 1)
    start = pl.lit(window.start).cast(TIMESTAMP)
    return (start + pl.duration(milliseconds=index * size)).cast(TIMESTAMP)


def _server_counts(
    series: tuple[Series, ...], samples: pl.DataFrame, window: Window, bucket: timedelta
) -> pl.DataFrame:
    selected = samples.filter(_series_filter(series, samples.columns))
    if selected.is_empty():
        return pl.DataFrame(
            schema={"bucket": pl.Datetime("ms", "UTC"), "variant": pl.Utf8, "n": pl.Float64}
        )
    stepped = increases(selected)  # the increase up to a sample belongs to that sample's bucket
    return stepped.group_by(bucket_of("timestamp", window, bucket).alias("bucket"), "variant").agg(
        pl.col("increase").sum().alias("n")
    )


def _rum_counts(
    spec: RumFilter, beacons: pl.DataFrame, window: Window, bucket: timedelta
) -> pl.DataFrame:
    return (
        beacons.lazy()  # lazy: only the columns the filter and the count touch are read
        .filter(_rum_filter(spec, beacons.columns))
        .group_by(bucket_of("ts", window, bucket).alias("bucket"), "variant")
        .agg(pl.len().cast(pl.Float64).alias("n"))
        .collect()
    )


def _all_buckets(window: Window, bucket: timedelta, variants: list[str]) -> pl.DataFrame:
    starts = [window.start + i * bucket for i in range(_bucket_count(window, bucket))]
    frame = pl.DataFrame({"bucket": starts}).with_columns(pl.col("bucket").cast(TIMESTAMP))
    return frame.join(pl.DataFrame({"variant": variants}), how="cross")


def counts(
    events: MetricSource,
    exposure: MetricSource,
    samples: pl.DataFrame,
    beacons: pl.DataFrame | None,
    window: Window,
    bucket: timedelta = RATE_BUCKET,
    prefer: Source | None = None,
    variants: tuple[str, ...] = ("canary", "control"),
) -> Counts | None:
    """Events and exposure per bucket, from the preferred source that has data.

    Buckets with no data count as zero (a quiet bucket is information); a variant with
    no exposure at all from a source makes that source unusable (None if none is).
    """
    order: list[Source] = ["prometheus", "rum"] if prefer != "rum" else ["rum", "prometheus"]
    for source in order:
        if source == "prometheus":
            if not (events.prometheus and exposure.prometheus) or samples.is_empty():
                continue
            num = _server_counts(events.prometheus, samples, window, bucket)
            den = _server_counts(exposure.prometheus, samples, window, bucket)
        else:
            if events.rum is None or exposure.rum is None or beacons is None or beacons.is_empty():
                continue
            num = _rum_counts(events.rum, beacons, window, bucket)
            den = _rum_counts(exposure.rum, beacons, window, bucket)
        frame = (
            _all_buckets(window, bucket, list(variants))
            .join(num.rename({"n": "events"}), on=["bucket", "variant"], how="left")
            .join(den.rename({"n": "exposure"}), on=["bucket", "variant"], how="left")
            .with_columns(pl.col("events", "exposure").fill_null(0.0))
            .sort("variant", "bucket")
        )
        exposed = frame.group_by("variant").agg(pl.col("exposure").sum())
        if exposed.height == len(variants) and (exposed["exposure"] > 0).all():
            return Counts(frame, source, bucket, window)
    return None


SESSION_BUCKET_BITS = 20


def session_cluster(column: str = "session_id") -> pl.Expr:
    """A session's cluster for the clustered statistics: one of 2^20 hash buckets.

    A bucket holds whole sessions, so buckets are independent exactly as sessions are;
    two sessions sharing a bucket are two independent ones merged, which leaves the
    clustered variance unbiased (their cross term has mean zero) and costs a negligible
    share of its degrees of freedom (the bucket trick of Chamandy et al., "Estimating
    uncertainty for massive data streams", 2012). Unlike dense session codes it needs no
    hash table over millions of ids: one hash per sample.
    """
    low_bits = pl.lit((1 << SESSION_BUCKET_BITS) - 1, dtype=pl.UInt64)
    return (pl.col(column).hash() & low_bits).cast(pl.Int64)


def sessions_per_variant(
    beacons: pl.DataFrame, variants: tuple[str, ...] = ("canary", "control")
) -> dict[str, int]:
    """Distinct sessions per variant, exactly up to 64-bit hash collisions (about 3e-8
    for a million sessions).

    Counted as distinct 64-bit hashes of the session ids, in polars (hashing and the
    distinct count are multithreaded): three to five times faster than sorting the
    hashes in numpy at 10 M beacons, where the sort was the sample-ratio check's cost.
    """
    queries = [
        beacons.lazy()
        .filter(pl.col("variant") == name)
        .select(pl.col("session_id").hash().unique().len())
        for name in variants
    ]
    return {
        name: int(frame.item())
        for name, frame in zip(variants, pl.collect_all(queries), strict=True)
    }


def rum_samples(
    spec: RumFilter,
    beacons: pl.DataFrame | None,
    variants: tuple[str, ...] = ("canary", "control"),
) -> Samples | None:
    """The field's values (scaled to the gate's unit) with the session's cluster, per
    variant; None when no variant has one."""
    if beacons is None or beacons.is_empty() or spec.column not in beacons.columns:
        return None
    selected = _rum_filter(spec, beacons.columns) & pl.col(spec.column).is_not_null()
    queries = [
        beacons.lazy()  # lazy: only the columns the filter and the selection touch are read
        .filter(selected & (pl.col("variant") == name))
        .select(
            "ts",
            session_cluster().alias("cluster"),
            (pl.col(spec.column).cast(pl.Float64) * spec.scale).alias("value"),
        )
        for name in variants
    ]
    parts = dict(zip(variants, pl.collect_all(queries), strict=True))
    return Samples(parts) if any(part.height for part in parts.values()) else None


def histogram_counts(family: str, samples: pl.DataFrame) -> HistogramCounts | None:
    """Bucket counts accumulated over the window (increase per `le`, resets handled)."""
    buckets = samples.filter(pl.col("metric") == f"{family}_bucket")
    if buckets.is_empty() or "le" not in buckets.columns:
        return None
    stepped = increases(buckets)
    frame = (
        stepped.group_by("variant", "le")
        .agg(pl.col("increase").sum().alias("count"))
        .with_columns(pl.col("le").str.replace(r"^\+Inf$", "inf").cast(pl.Float64))
        .sort("variant", "le")
    )
    return HistogramCounts(frame)


def connection_durations(
    spec: RumFilter, beacons: pl.DataFrame | None, window: Window
) -> Durations | None:
    """Closed connections' lifetimes, plus still-open ones censored at the window's end.

    A socket that opened and has no close beacon by the end is at risk for
    `end - open`; dropping it (the naive average of completed connections) biases
    durations downwards, so it is kept as censored.
    """
    if beacons is None or beacons.is_empty() or spec.column not in beacons.columns:
        return None
    all_closed = beacons.filter(_rum_filter(spec, beacons.columns))
    closed = all_closed.filter(pl.col(spec.column).is_not_null())
    duration = pl.col(spec.column).cast(pl.Float64) * spec.scale
    closed_frame = closed.select(
        "variant",
        duration.alias("duration"),
        pl.lit(True).alias("observed"),
        (pl.col("ts") - pl.duration(milliseconds=(duration * 1000).round())).alias("opened"),
    )
    opened = beacons.filter((pl.col("type") == OPEN) & pl.col("socket_id").is_not_null())
    still_open = opened.join(all_closed.select("socket_id"), on="socket_id", how="anti").select(
        "variant",
        ((pl.lit(window.end) - pl.col("ts")).dt.total_milliseconds() / 1000.0).alias("duration"),
        pl.lit(False).alias("observed"),
        pl.col("ts").alias("opened"),
    )
    frame = pl.concat([closed_frame, still_open]).filter(pl.col("duration") >= 0)
    return Durations(frame) if frame.height else None


class GateMeasures(Protocol):
    """What a gate's statistic is computed from, asked the same way whether the frames
    hold the data (`FrameMeasures`: this module's functions) or an engine does
    (`pushdown.rum.EngineMeasures`); each member takes this module's function's arguments."""

    counts: Callable[..., Counts | None]
    rum_samples: Callable[..., Samples | None]
    histogram_counts: Callable[..., HistogramCounts | None]
    connection_durations: Callable[..., Durations | None]

    def sessions_per_variant(
        self, beacons: pl.DataFrame | None, variants: tuple[str, ...]
    ) -> dict[str, int]: ...


class FrameMeasures:
    """The gate inputs computed from the frames themselves (this module's functions)."""

    counts = staticmethod(counts)
    rum_samples = staticmethod(rum_samples)
    histogram_counts = staticmethod(histogram_counts)
    connection_durations = staticmethod(connection_durations)

    @staticmethod
    def sessions_per_variant(
        beacons: pl.DataFrame | None, variants: tuple[str, ...]
    ) -> dict[str, int]:
        """Distinct sessions per variant from the beacons ({} without beacons)."""
        if beacons is None or beacons.is_empty():
            return {}
        return sessions_per_variant(beacons, variants)


FRAME_MEASURES: GateMeasures = FrameMeasures()
