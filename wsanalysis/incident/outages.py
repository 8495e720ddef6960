"""Network outages: a burst of abnormal closes (1006) across many sessions whose
reconnects then fail (repeat attempts, give-ups, offline beacons), ending when the
clients come back in a surge. The bursts are the RUM sample's, and the server's where
the sample saw too few (a small canary's); the failed reconnects are always RUM's.
Server-only data: active connections fall by a fifth or more at once, without a
restart, and later recover."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from wsanalysis.incident import impact
from wsanalysis.incident.findings import Finding, NotRun
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.scan import Elevation, elevations
from wsanalysis.incident.signals import (
    MINUTE,
    SIGNALS,
    exposure,
    rum_signal,
    server_signal,
    sessions_in,
)
from wsanalysis.sources.metric_names import CONNECTIONS_ACTIVE
from wsanalysis.sources.schema import CLOSE, GIVE_UP, OFFLINE, RECONNECT_SCHEDULED

FAILURE_SHARE = 0.6
MAX_OUTAGE = timedelta(hours=3)
ACTIVE_DROP = 0.8
MIN_CLOSES = 3  # sampled 1006 closes beyond the usual in a burst
#: The users' return is looked for only after an outage was found: a looser level.
RETURN_ALARMS = 1.0


def _return_surge(data: IncidentData, variant: str, after: datetime) -> datetime | None:
    """Start of the first burst of opens after `after` (the users coming back), counted
    raw: the outage cut the open connections the other scans measure against."""
    signal = SIGNALS["opens"]
    for counts in (rum_signal(data, signal), server_signal(data, signal)):
        if counts is None or counts["n"].sum() <= 0:
            continue
        mine = counts.filter(pl.col("variant") == variant)
        for e in elevations(mine, per_series=RETURN_ALARMS):
            if after <= e.start <= after + MAX_OUTAGE:
                return e.start
    return None


def _failures(data: IncidentData, variant: str, start: datetime, end: datetime) -> int:
    b = data.beacons.filter(
        (pl.col("variant") == variant) & (pl.col("ts") >= start) & (pl.col("ts") < end)
    )
    failed = (
        (pl.col("type") == GIVE_UP)
        | (pl.col("type") == OFFLINE)
        | ((pl.col("type") == RECONNECT_SCHEDULED) & (pl.col("attempt") >= 2))
    )
    return b.filter(failed).height


def _near_restart(restarts: list[Finding], variant: str, at: datetime) -> bool:
    return any(r.variant == variant and abs(r.start - at) <= 3 * MINUTE for r in restarts)


def _bursts(data: IncidentData) -> list[tuple[Elevation, str]]:
    """Bursts of 1006 closes: elevations in the RUM sample, and the server's where the
    sample saw too few (a small canary's sample may hold a handful of its users)."""
    found = []
    rum = rum_signal(data, SIGNALS["1006"])
    if rum is not None and rum["n"].sum() > 0:
        found = [(e, "rum") for e in elevations(rum, exposure(data, "rum"), min_excess=MIN_CLOSES)]
    server = server_signal(data, SIGNALS["1006"])
    if server is not None and server["n"].sum() > 0:
        for e in elevations(server, exposure(data, "server"), min_excess=MIN_CLOSES):
            seen = any(f.variant == e.variant and f.start <= e.end and e.start <= f.end
                       for f, _ in found)  # fmt: skip
            if not seen:
                found.append((e, "server"))
    return found


def _from_rum(data: IncidentData, restarts: list[Finding]) -> list[Finding]:
    found = []
    for e, source in _bursts(data):
        if _near_restart(restarts, e.variant, e.start):
            continue  # handshakes refused while the server restarts
        closes = data.beacons.filter(
            (pl.col("variant") == e.variant) & (pl.col("type") == CLOSE)
            & (pl.col("code") == 1006) & pl.col("ts").is_between(e.start, e.end)
        )  # fmt: skip
        failures = _failures(data, e.variant, e.start, e.end + 3 * MINUTE)
        if failures < max(FAILURE_SHARE * closes.height, MIN_CLOSES):
            continue  # closes that reconnect at once: a storm, not an outage
        back = _return_surge(data, e.variant, e.end)
        end = back + MINUTE if back else e.end
        live = sessions_in(data, e.variant, e.start - 30 * MINUTE, e.end)
        share = closes["session_id"].n_unique() / live if live else None
        found.append(_finding(e.variant, e.start, end, e.observed, failures, share, source))
    return found


def _from_server(data: IncidentData, restarts: list[Finding]) -> list[Finding]:
    active = data.samples.filter(pl.col("metric") == CONNECTIONS_ACTIVE)
    if active.is_empty():
        return []
    per_minute = (
        active.group_by("variant", pl.col("timestamp").dt.truncate("1m").alias("bucket"))
        .agg(pl.col("value").sum())
        .sort("variant", "bucket")
    )
    before = pl.col("value").shift(1).rolling_median(10, min_samples=3).over("variant")
    marked = per_minute.with_columns(before.alias("before"))
    drops = marked.filter(pl.col("value") < ACTIVE_DROP * pl.col("before"))
    found = []
    for row in drops.iter_rows(named=True):
        variant, at = row["variant"], row["bucket"] - MINUTE
        if _near_restart(restarts, variant, at):
            continue
        if any(f.variant == variant and f.start <= at <= f.end for f in found):
            continue
        after = marked.filter(
            (pl.col("variant") == variant)
            & (pl.col("bucket") > row["bucket"])
            & (pl.col("value") >= 0.95 * row["before"])
        )
        back = _return_surge(data, variant, at + MINUTE)
        end = back + MINUTE if back else (after["bucket"].min() if after.height else at + MINUTE)
        share = 1 - row["value"] / row["before"]
        found.append(
            _finding(variant, at, end, row["before"] - row["value"], None, share, "server")
        )
    return found


def _finding(variant, start, end, lost, failures, share, source) -> Finding:
    what = "of connections" if failures is None else "of its sessions"
    share_text = f" ({share:.0%} {what})" if share is not None else ""
    return Finding(
        kind="network_outage",
        start=start,
        end=end,
        variant=variant,
        severity=impact.severity(share, True),
        sentence=(
            f"Network outage on {variant} from {start:%H:%M} to {end:%H:%M} UTC: "
            f"{lost:.0f} connections lost at once{share_text}"
            + (f", {failures} failed reconnects or give-ups" if failures is not None else "")
            + "."
        ),
        numbers={
            "connections_lost": lost, "failed_reconnects": failures,
            "share_of_sessions": share, "source": source,
        },
        detector="outages",
    )  # fmt: skip


def detect(
    data: IncidentData, restarts: list[Finding] | None = None
) -> tuple[list[Finding], list[NotRun]]:
    if data.has_rum:
        return _from_rum(data, restarts or []), []
    if data.has_server:
        return _from_server(data, restarts or []), []
    return [], [NotRun("outages", "no RUM beacons and no ws_connections_active series")]
