"""Per-minute event counts from both sources, a robust rolling baseline, and episodes.

Every detector that looks for "more of X than usual" uses the same three steps: count X
per minute and variant (server counter increases, or RUM beacons), compare each minute
against the median of the previous two hours (robust to the incident itself and to the
daily cycle), and join the unusual minutes into episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from wsanalysis.frames.counters import increases, series_keys
from wsanalysis.frames.measures import Window, bucket_of
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.sources.schema import TIMESTAMP

MINUTE = timedelta(minutes=1)
BASELINE_MINUTES = 120


def scrape_interval(samples: pl.DataFrame) -> timedelta:
    """The median step between a series' samples (60 s when it cannot be told)."""
    steps = samples.select("timestamp").unique().sort("timestamp")["timestamp"].diff().drop_nulls()
    if steps.is_empty():
        return MINUTE
    return timedelta(milliseconds=float(steps.dt.total_milliseconds().median()))


def minutes(window: Window) -> pl.DataFrame:
    count = max(1, int(np.ceil(window.duration / MINUTE)))
    last = window.start + (count - 1) * MINUTE
    starts = pl.datetime_range(window.start, last, "1m", eager=True, time_unit="ms")
    return pl.DataFrame({"bucket": starts}).with_columns(pl.col("bucket").cast(TIMESTAMP))


def _filled(frame: pl.DataFrame, window: Window, variants: list[str]) -> pl.DataFrame:
    grid = minutes(window).join(pl.DataFrame({"variant": variants}), how="cross")
    return (
        grid.join(frame, on=["bucket", "variant"], how="left")
        .with_columns(pl.col("n").fill_null(0.0))
        .sort("variant", "bucket")
    )


def server_counts(
    data: IncidentData, metric: str, where: pl.Expr | None = None
) -> pl.DataFrame | None:
    """Counter increases per minute and variant (bucket, variant, n); None without series.

    The increase reported by a scrape happened during the interval before it, so it is
    credited to the minute where that interval starts. A series first seen mid-window
    (the first 1012 close creates `ws_closes_total{code="1012"}`) counts its first value.
    """
    if not data.has_server or data.window is None:
        return None
    selected = data.samples.filter(pl.col("metric") == metric)
    if where is not None:
        selected = selected.filter(where)
    if selected.is_empty():
        return None
    step = scrape_interval(selected)
    born_late = (pl.col("timestamp") == pl.col("timestamp").min().over(series_keys(selected))) & (
        pl.col("timestamp") > data.samples["timestamp"].min() + step
    )  # a series that appears mid-window was created by the events its first value counts
    stepped = increases(selected).with_columns(
        pl.when(born_late).then(pl.col("value")).otherwise(pl.col("increase")).alias("increase"),
        pl.col("timestamp") - step,
    )
    counted = stepped.group_by(
        bucket_of("timestamp", data.window, MINUTE).alias("bucket"), "variant"
    ).agg(pl.col("increase").sum().alias("n"))
    return _filled(counted, data.window, sorted(selected["variant"].unique().to_list()))


def rum_counts(
    data: IncidentData, beacon_type: str, where: pl.Expr | None = None
) -> pl.DataFrame | None:
    """Beacons of a type (and `where`) per minute and variant (bucket, variant, n); None
    without beacons."""
    if not data.has_rum or data.window is None:
        return None
    beacons = data.beacons
    selected = data.of_type(beacon_type)
    counted = (
        (selected.filter(where) if where is not None else selected)
        .group_by(bucket_of("ts", data.window, MINUTE).alias("bucket"), "variant")
        .agg(pl.len().cast(pl.Float64).alias("n"))
    )
    return _filled(counted, data.window, sorted(beacons["variant"].unique().to_list()))


def with_baseline(counts: pl.DataFrame, minutes_back: int = BASELINE_MINUTES) -> pl.DataFrame:
    """Adds `baseline`: median of the previous `minutes_back` minutes (the whole series'
    median while there is less than a quarter of that history)."""
    previous = (
        pl.col("n")
        .shift(1)
        .rolling_median(minutes_back, min_samples=minutes_back // 4)
        .over("variant", order_by="bucket")
    )
    overall = pl.col("n").median().over("variant")
    return counts.with_columns(previous.fill_null(overall).alias("baseline"))


@dataclass(frozen=True)
class Episode:
    """Consecutive unusual minutes of one variant: counts observed and expected."""

    variant: str
    start: datetime
    end: datetime  # end of the last unusual minute
    observed: float
    expected: float
    peak: float
    peak_baseline: float
    minutes: int

    @property
    def ratio(self) -> float:
        return self.observed / max(self.expected, 1.0)


def unusual(
    counts: pl.DataFrame,
    *,
    ratio: float = 3.0,
    z: float = 6.0,
    min_count: float = 5.0,
    dispersion: float = 0.25,
) -> pl.Expr:
    """A minute is unusual when it beats its baseline by `ratio`, by `min_count` events,
    and by `z` standard deviations of an overdispersed count (var = b + (dispersion·b)²)."""
    b = pl.col("baseline").clip(lower_bound=0.5)
    sd = (b + (dispersion * b) ** 2).sqrt()
    return (pl.col("n") >= min_count) & (pl.col("n") >= ratio * b) & ((pl.col("n") - b) / sd >= z)


def episodes(
    counts: pl.DataFrame, flag: pl.Expr, *, gap: int = 2, min_minutes: int = 1
) -> list[Episode]:
    """Join flagged minutes separated by at most `gap` quiet minutes into episodes."""
    marked = with_baseline(counts) if "baseline" not in counts.columns else counts
    marked = marked.with_columns(flag.alias("flag"))
    flagged = marked.filter("flag").select("variant", "bucket").sort("variant", "bucket")
    found: list[Episode] = []
    for variant in flagged["variant"].unique(maintain_order=True).to_list():
        times = flagged.filter(pl.col("variant") == variant)["bucket"].to_list()
        groups: list[list[datetime]] = [[times[0]]]
        for t in times[1:]:
            if t - groups[-1][-1] <= (gap + 1) * MINUTE:
                groups[-1].append(t)
            else:
                groups.append([t])
        rows = marked.filter(pl.col("variant") == variant)
        for group in groups:
            span = rows.filter(pl.col("bucket").is_between(group[0], group[-1]))
            length = int((group[-1] - group[0]) / MINUTE) + 1
            if length < min_minutes:
                continue
            top = span.sort("n", descending=True).row(0, named=True)
            found.append(
                Episode(
                    variant, group[0], group[-1] + MINUTE,
                    float(span["n"].sum()), float(span["baseline"].sum()),
                    float(top["n"]), float(top["baseline"]), length,
                )
            )  # fmt: skip
    return found


def sessions_in(data: IncidentData, variant: str, start: datetime, end: datetime) -> int:
    """Distinct RUM sessions of a variant with any beacon in [start, end)."""
    if not data.has_rum:
        return 0
    return data.beacons.filter(
        (pl.col("variant") == variant) & (pl.col("ts") >= start) & (pl.col("ts") < end)
    )["session_id"].n_unique()
