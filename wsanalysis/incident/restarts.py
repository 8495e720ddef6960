"""Server restarts and drains: counter resets, and bursts of 1012 (service restart) or
1001 (going away) closes. Restarts are the markers every other finding is read against."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from wsanalysis.incident.findings import Finding, NotRun
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.scan import elevations
from wsanalysis.incident.signals import (
    MINUTE,
    SIGNALS,
    exposure,
    rum_signal,
    scrape_interval,
    server_signal,
)
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL

MIN_CLOSES = 10  # a burst of restart closes holds at least this many (beyond the usual)


def counter_resets(data: IncidentData) -> list[tuple[str, datetime]]:
    """(variant, time) where ws_connections_total went down: the process restarted."""
    if not data.has_server:
        return []
    opened = data.samples.filter(pl.col("metric") == CONNECTIONS_TOTAL)
    if opened.is_empty():
        return []
    step = scrape_interval(opened)
    keyed = opened.group_by("variant", "timestamp").agg(pl.col("value").sum()).sort("timestamp")
    previous = pl.col("value").shift(1).over("variant", order_by="timestamp")
    drops = keyed.filter(pl.col("value") < previous)
    return [
        (row["variant"], (row["timestamp"] - step).replace(second=0, microsecond=0))
        for row in drops.iter_rows(named=True)
    ]


def _code_bursts(data: IncidentData) -> list[tuple[str, datetime, float]]:
    """(variant, start, closes) of each burst of 1012/1001 closes, server and RUM."""
    found = []
    signal = SIGNALS["restarts"]
    for source, counts in (("server", server_signal(data, signal)),
                           ("rum", rum_signal(data, signal))):  # fmt: skip
        if counts is None or counts["n"].sum() <= 0:
            continue
        for e in elevations(counts, exposure(data, source), min_excess=MIN_CLOSES):
            found.append((e.variant, e.start, e.observed))
    return found


def detect(data: IncidentData) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_server and not data.has_rum:
        return [], [NotRun("restarts", "no server metrics and no RUM beacons in the window")]
    evidence: dict[str, list[tuple[datetime, str, float]]] = {}
    for variant, at in counter_resets(data):
        evidence.setdefault(variant, []).append((at, "counter_reset", 0.0))
    for variant, at, closes in _code_bursts(data):
        evidence.setdefault(variant, []).append((at, "restart_closes", closes))
    findings = []
    for variant, items in evidence.items():
        items.sort()
        groups: list[list[tuple[datetime, str, float]]] = [[items[0]]]
        for item in items[1:]:
            if item[0] - groups[-1][-1][0] <= 2 * MINUTE:
                groups[-1].append(item)
            else:
                groups.append([item])
        for group in groups:
            start = group[0][0]
            how = sorted({g[1] for g in group})
            closes = max(g[2] for g in group)
            findings.append(
                Finding(
                    kind="server_restart",
                    start=start,
                    end=start + timedelta(minutes=1),
                    variant=variant,
                    severity="medium",
                    sentence=(
                        f"The {variant} server restarted at {start:%H:%M} UTC "
                        f"(seen as: {', '.join(how).replace('_', ' ')}"
                        + (f"; {closes:.0f} restart closes" if closes else "")
                        + ")."
                    ),
                    numbers={"evidence": how, "restart_closes": closes},
                    detector="restarts",
                )
            )
    return findings, []
