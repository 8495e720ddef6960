"""Thundering herds after a restart or drain: how synchronized the reconnects are.

In the minute after each restart, the clients' reconnects (RUM `ws.open` beacons, which
carry millisecond timestamps) are binned in 100 ms. With full jitter they spread over
seconds; without it whole cohorts land in the same bin. The statistic is the busiest
bin's share of the reconnects and its peak over the mean rate of the minute; the
backoff delays clients announced (`ws.reconnect_scheduled.backoff_ms`) show whether
jitter was applied at all (distinct delays per reconnect). Server push-back (1013 closes,
reconnect advice) is reported alongside.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from wsanalysis.incident.findings import Finding, NotRun
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.sources.metric_names import CLOSES_TOTAL, RECONNECT_ADVICE_TOTAL
from wsanalysis.sources.schema import OPEN, RECONNECT_SCHEDULED

BIN = "100ms"
AFTER = timedelta(seconds=60)
MIN_RECONNECTS = 10
PEAK_SHARE = 0.5


def synchronization(data: IncidentData, variant: str, start, end) -> dict[str, float] | None:
    """Peak share, peak over mean, and distinct backoff share of reconnects in [start, end)."""
    b = data.beacons.filter(
        (pl.col("variant") == variant) & (pl.col("ts") >= start) & (pl.col("ts") < end)
    )
    opens = b.filter(pl.col("type") == OPEN)
    if opens.height < MIN_RECONNECTS:
        return None
    bins = opens.group_by(pl.col("ts").dt.truncate(BIN).alias("bin")).len()
    span_ms = (bins["bin"].max() - bins["bin"].min()).total_seconds() * 1000 + 100
    mean = opens.height / ((end - start).total_seconds() * 10)  # per 100 ms over the minute
    delays = b.filter(pl.col("type") == RECONNECT_SCHEDULED)["backoff_ms"].drop_nulls()
    return {
        "reconnects": float(opens.height),
        "peak_share": float(bins["len"].max() / opens.height),
        "peak_over_mean": float(bins["len"].max() / mean),
        "spread_s": span_ms / 1000,
        "distinct_delay_share": float(delays.n_unique() / len(delays)) if len(delays) else None,
    }


def _pushback(data: IncidentData, variant: str, start, end) -> dict[str, float]:
    out = {"closes_1013": 0.0, "reconnect_advice": 0.0}
    if not data.has_server:
        return out
    s = data.samples.filter(
        (pl.col("variant") == variant)
        & (pl.col("timestamp") >= start)
        & (pl.col("timestamp") <= end + timedelta(minutes=1))
    )
    advice = s.filter(pl.col("metric") == RECONNECT_ADVICE_TOTAL)
    if advice.height:
        out["reconnect_advice"] = float(advice["value"].max() - advice["value"].min())
    if "code" in s.columns:
        closes = s.filter((pl.col("metric") == CLOSES_TOTAL) & (pl.col("code") == "1013"))
        if closes.height:
            out["closes_1013"] = float(closes["value"].max() - closes["value"].min())
    return out


def detect(data: IncidentData, restarts: list[Finding]) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_rum:
        return [], [
            NotRun("herd", "needs RUM ws.open beacons: per-minute server counters cannot "
                   "show sub-second synchronization")
        ]  # fmt: skip
    if not restarts:
        return [], [NotRun("herd", "no restart or drain found to look after")]
    findings = []
    for restart in restarts:
        end = restart.start + AFTER
        sync = synchronization(data, restart.variant, restart.start, end)
        if sync is None or sync["peak_share"] < PEAK_SHARE:
            continue
        push = _pushback(data, restart.variant, restart.start, end)
        findings.append(
            Finding(
                kind="thundering_herd",
                start=restart.start,
                end=end,
                variant=restart.variant,
                severity="high" if sync["peak_share"] >= 0.8 else "medium",
                sentence=(
                    f"Thundering herd on {restart.variant} after the {restart.start:%H:%M} "
                    f"restart: {sync['peak_share']:.0%} of {sync['reconnects']:.0f} "
                    f"reconnects landed in the same 100 ms ({sync['peak_over_mean']:.0f}x "
                    f"the mean rate); full jitter would spread them over seconds."
                ),
                numbers={**sync, **push},
                detector="herd",
            )
        )
    return findings, []
