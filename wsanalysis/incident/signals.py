"""Per-minute event counts and exposures from both sources.

Every detector that looks for "more of X than usual" counts X per minute and variant
(server counter increases, or RUM beacons) and scans the counts against their own
baseline per unit of exposure (open connections per minute) with `scan.elevations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from wsanalysis.frames.counters import increases, series_keys
from wsanalysis.frames.measures import Window, bucket_of
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.sources.metric_names import (
    CLOSES_TOTAL,
    CONNECTIONS_ACTIVE,
    CONNECTIONS_TOTAL,
    FRAMES_SENT_TOTAL,
)
from wsanalysis.sources.schema import CLOSE, GIVE_UP, OPEN, RECONNECT_SCHEDULED, TIMESTAMP

MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def scrape_interval(samples: pl.DataFrame, among: pl.DataFrame | None = None) -> timedelta:
    """The median step between consecutive samples of one series (60 s when it cannot be
    told). A series seen in one scrape only (a labelled counter created just before its
    process restarted) says nothing of the interval: then `among`, all the samples, do."""
    keys = [k for k in series_keys(samples) if k != "timestamp"]
    steps = (
        samples.select(*keys, "timestamp").unique().sort(*keys, "timestamp")
        .select(pl.col("timestamp").diff().over(keys).dt.total_milliseconds())
        .drop_nulls()["timestamp"]
    )  # fmt: skip
    steps = steps.filter(steps > 0)
    if not steps.is_empty():
        return timedelta(milliseconds=float(steps.median()))
    return scrape_interval(among) if among is not None else MINUTE


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
    step = scrape_interval(selected, data.samples)
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


def rum_variants(data: IncidentData) -> list[str]:
    """The variants in the RUM beacons, sorted (once per data)."""
    return data.shared("rum variants", lambda: sorted(data.beacons["variant"].unique().to_list()))


def rum_counts(
    data: IncidentData, beacon_type: str, where: pl.Expr | None = None
) -> pl.DataFrame | None:
    """Beacons of a type (and `where`) per minute and variant (bucket, variant, n); None
    without beacons."""
    if not data.has_rum or data.window is None:
        return None
    selected = data.of_type(beacon_type)
    counted = (
        (selected.lazy().filter(where) if where is not None else selected.lazy())
        .group_by(bucket_of("ts", data.window, MINUTE).alias("bucket"), "variant")
        .agg(pl.len().cast(pl.Float64).alias("n"))
        .collect()  # one query: the filter reads only the columns it needs
    )
    return _filled(counted, data.window, rum_variants(data))


def active_connections(data: IncidentData) -> pl.DataFrame | None:
    """Open connections per minute and variant (bucket, variant, n): the server's gauge,
    the mean of each series' scrapes in the minute summed over series (pods), carried
    forward into minutes without a scrape; None without the gauge."""
    if not data.has_server or data.window is None:
        return None
    gauge = data.samples.filter(pl.col("metric") == CONNECTIONS_ACTIVE)
    if gauge.is_empty():
        return None
    keys = [k for k in series_keys(gauge) if k != "timestamp"]
    per_series = gauge.group_by(bucket_of("timestamp", data.window, MINUTE).alias("bucket"),
                                *keys).agg(pl.col("value").mean())  # fmt: skip
    summed = per_series.group_by("bucket", "variant").agg(pl.col("value").sum().alias("n"))
    grid = minutes(data.window).join(pl.DataFrame({"variant": sorted(set(summed["variant"]))}),
                                     how="cross")  # fmt: skip
    return (
        grid.join(summed, on=["bucket", "variant"], how="left")
        .sort("variant", "bucket")
        .with_columns(pl.col("n").forward_fill().backward_fill().over("variant").fill_null(0.0))
    )


def rum_live(data: IncidentData) -> pl.DataFrame | None:
    """Sockets open per minute and variant in the RUM sample (bucket, variant, n), from
    open and close beacons: a socket closed without an open beacon opened before the
    window, one opened without a close is open until its end. None without beacons."""
    if not data.has_rum or data.window is None:
        return None
    window = data.window
    count = max(1, int(np.ceil(window.duration / MINUTE)))
    opens = data.of_type(OPEN).select("socket_id", "variant", pl.col("ts").alias("opened"))
    closes = data.of_type(CLOSE).select("socket_id", "variant", pl.col("ts").alias("closed"))
    sockets = opens.join(closes, on=["socket_id", "variant"], how="full", coalesce=True)
    index = [((pl.col(c) - pl.lit(window.start)).dt.total_milliseconds() // 60_000)
             .fill_null(default).clip(0, count).cast(pl.Int64).alias(c)
             for c, default in (("opened", 0), ("closed", count))]  # fmt: skip
    spans = sockets.with_columns(index)
    variants = rum_variants(data)
    parts = []
    for variant in variants:
        mine = spans.filter(pl.col("variant") == variant)
        delta = np.zeros(count + 1)
        np.add.at(delta, mine["opened"].to_numpy(), 1.0)
        np.add.at(delta, np.minimum(mine["closed"].to_numpy() + 1, count), -1.0)
        parts.append(minutes(window).with_columns(pl.lit(variant).alias("variant"),
                                                  pl.Series("n", np.cumsum(delta)[:count])))  # fmt: skip
    return pl.concat(parts)


def exposure(data: IncidentData, source: str) -> pl.DataFrame | None:
    """What a count of `source` ("server" or "rum") is per: open connections per minute,
    from the same source (the server's gauge, else its opened connections; the RUM
    sample's open sockets). Computed once per data and source (detectors share it)."""

    def compute() -> pl.DataFrame | None:
        if source == "rum":
            return rum_live(data)
        found = open_connections(data)
        return found if found is not None else opened_connections(data)

    return data.shared(("exposure", source), compute)


def open_connections(data: IncidentData) -> pl.DataFrame | None:
    """The server's gauge of open connections per minute and variant (once per data)."""
    return data.shared("active", lambda: active_connections(data))


def opened_connections(data: IncidentData) -> pl.DataFrame | None:
    """Connections the server opened per minute and variant (once per data)."""
    return data.shared("opened", lambda: server_counts(data, CONNECTIONS_TOTAL))


def live_connections(
    data: IncidentData, variant: str, start: datetime, end: datetime
) -> float | None:
    """Connections live in [start, end) by the server: open at its start plus opened in it
    (None without server counters)."""
    opened = opened_connections(data)
    if opened is None:
        return None
    mine = pl.col("variant") == variant
    inside = opened.filter(mine & pl.col("bucket").is_between(start, end, closed="left"))
    active = open_connections(data)
    at_start = 0.0
    if active is not None:
        first = active.filter(mine & (pl.col("bucket") >= start)).sort("bucket").head(1)
        at_start = float(first["n"][0]) if first.height else 0.0
    return at_start + float(inside["n"].sum())


def sessions_hit(
    data: IncidentData, variant: str, start: datetime, end: datetime, where: pl.Expr
) -> int:
    """Distinct RUM sessions of a variant with a beacon matching `where` in [start, end)."""
    if not data.has_rum:
        return 0
    inside = beacons_between(data, start, end)
    return inside.filter((pl.col("variant") == variant) & where)["session_id"].n_unique()


def sessions_in(data: IncidentData, variant: str, start: datetime, end: datetime) -> int:
    """Distinct RUM sessions of a variant with any beacon in [start, end)."""
    if not data.has_rum:
        return 0
    inside = beacons_between(data, start, end)
    return inside.filter(pl.col("variant") == variant)["session_id"].n_unique()


def beacons_between(data: IncidentData, start: datetime, end: datetime) -> pl.DataFrame:
    """The beacons stamped in [start, end): a slice of them in time order (their order
    found once per data when they come unsorted), not a filter over every beacon for
    each span asked."""

    def in_time_order() -> tuple[np.ndarray, np.ndarray | None]:
        us = data.beacons["ts"].dt.epoch("us").to_numpy()
        if np.all(us[1:] >= us[:-1]):
            return us, None
        order = np.argsort(us, kind="stable")
        return us[order], order

    us, order = data.shared("beacons in time order", in_time_order)
    lo, hi = (int(i) for i in np.searchsorted(us, [_epoch_us(start), _epoch_us(end)], "left"))
    if order is None:
        return data.beacons.slice(lo, max(hi - lo, 0))
    return data.beacons[order[lo:hi]]


def _epoch_us(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)  # exact: no float rounding


# -- the signals detectors count, in one place ------------------------------------------
@dataclass(frozen=True)
class Signal:
    """Something counted per minute: closes with `codes` (plus error frames when `frames`
    names their event), a server counter `metric`, or a RUM `beacon` type."""

    name: str
    label: str
    codes: tuple[int, ...] = ()
    frames: str | None = None
    metric: str | None = None
    beacon: str | None = None

    def rum_where(self) -> pl.Expr:
        """The RUM beacons that are this signal."""
        if self.codes:
            return (pl.col("type") == CLOSE) & pl.col("code").is_in(list(self.codes))
        return pl.col("type") == (self.beacon or OPEN)


AUTH_CODES = (4401, 4403, 403)
RESTART_CODES = (1012, 1001)
SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("auth", "4401/4403/403 closes", AUTH_CODES),
        Signal("errors", "errors (error frames and 1011 closes)", (1011,), frames="error"),
        Signal("1006", "1006 (abnormal) closes", (1006,)),
        Signal("1013", "1013 (try again later) closes", (1013,)),
        Signal("restarts", "1012/1001 restart closes", RESTART_CODES),
        Signal("reconnects", "reconnects scheduled", beacon=RECONNECT_SCHEDULED),
        Signal("opens", "connections opened", metric=CONNECTIONS_TOTAL, beacon=OPEN),
        Signal("give_ups", "give-ups", beacon=GIVE_UP),
    )
}


def server_signal(data: IncidentData, signal: Signal) -> pl.DataFrame | None:
    """The signal per minute from the server (None when the server has no such series;
    once per data and signal: several detectors read the same)."""
    return data.shared(("server", signal), lambda: _server_signal(data, signal))


def _server_signal(data: IncidentData, signal: Signal) -> pl.DataFrame | None:
    parts = []
    if signal.codes and data.has_server and "code" in data.samples.columns:
        codes = [str(c) for c in signal.codes]
        parts.append(server_counts(data, CLOSES_TOTAL, pl.col("code").is_in(codes)))
    if signal.frames and data.has_server and "event" in data.samples.columns:
        parts.append(server_counts(data, FRAMES_SENT_TOTAL, pl.col("event") == signal.frames))
    if signal.metric:
        parts.append(server_counts(data, signal.metric))
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return (
        pl.concat(parts)
        .group_by("bucket", "variant")
        .agg(pl.col("n").sum())
        .sort("variant", "bucket")
    )


def rum_signal(data: IncidentData, signal: Signal) -> pl.DataFrame | None:
    """The signal per minute from the RUM sample (None without beacons; once per data and
    signal)."""
    return data.shared(("rum", signal), lambda: _rum_signal(data, signal))


def _rum_signal(data: IncidentData, signal: Signal) -> pl.DataFrame | None:
    if not data.has_rum or (signal.metric and not signal.beacon):
        return None
    if signal.codes:
        return rum_counts(data, CLOSE, pl.col("code").is_in(list(signal.codes)))
    return rum_counts(data, signal.beacon)


def signal_counts(
    data: IncidentData, signal: Signal, prefer: str = "server"
) -> tuple[pl.DataFrame | None, str]:
    """(counts per minute, source): the server's series when it has any such event (the
    whole population), the RUM sample's else; `prefer="rum"` the other way round."""
    order = (("server", server_signal), ("rum", rum_signal))
    for source, read in order if prefer == "server" else order[::-1]:
        counts = read(data, signal)
        if counts is not None and counts["n"].sum() > 0:
            return counts, source
    return None, ""
