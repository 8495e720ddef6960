"""Close-code spikes per code: 4401/4403 (auth: a login or token rotation gone wrong),
1011 (internal errors), 1006 (abnormal closes), 1013 (try again later), with the share of
sessions affected. Server `ws_closes_total{code}` when present, RUM close beacons else."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from wsanalysis.incident.findings import Finding, NotRun, severity_from
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.signals import (
    Episode,
    episodes,
    rum_counts,
    server_counts,
    sessions_in,
    unusual,
    with_baseline,
)
from wsanalysis.sources.metric_names import CLOSES_TOTAL

AUTH_CODES = (4401, 4403, 403)
#: Sessions seen this long before an episode count as live during it (the denominator).
LOOKBACK = timedelta(minutes=30)
WATCHED_CODES = (*AUTH_CODES, 1011, 1006, 1013)
CODE_NAMES = {
    4401: "unauthorized",
    4403: "forbidden",
    403: "forbidden",
    1011: "internal error",
    1006: "abnormal close",
    1013: "try again later",
}


def codes_seen(data: IncidentData) -> tuple[set[str], set[int]]:
    """Close codes with a server series, and close codes in RUM beacons (one scan each)."""
    server: set[str] = set()
    if data.has_server and "code" in data.samples.columns:
        closes = data.samples.filter(pl.col("metric") == CLOSES_TOTAL)
        server = set(closes["code"].drop_nulls().unique().to_list())
    rum: set[int] = set()
    if data.has_rum:
        closes = data.beacons.filter(pl.col("type") == "ws.close")
        rum = set(closes["code"].drop_nulls().unique().to_list())
    return server, rum


def code_counts(
    data: IncidentData, code: int, seen: tuple[set[str], set[int]] | None = None
) -> tuple[pl.DataFrame | None, str]:
    """Closes of one code per minute: server counter first, RUM beacons second."""
    server_codes, rum_codes = seen if seen is not None else codes_seen(data)
    if str(code) in server_codes:
        counts = server_counts(data, CLOSES_TOTAL, pl.col("code") == str(code))
        if counts is not None and counts["n"].sum() > 0:
            return counts, "server"
    if code in rum_codes:
        counts = rum_counts(data, "ws.close", pl.col("code") == code)
        if counts is not None and counts["n"].sum() > 0:
            return counts, "rum"
    return None, ""


def affected_share(data: IncidentData, episode: Episode, codes: tuple[int, ...]) -> float | None:
    """Share of the variant's live RUM sessions (seen in the 30 minutes before or during
    the episode) that saw one of `codes` during the episode."""
    if not data.has_rum:
        return None
    live = sessions_in(data, episode.variant, episode.start - LOOKBACK, episode.end)
    if live == 0:
        return None
    hit = data.beacons.filter(
        (pl.col("variant") == episode.variant)
        & (pl.col("type") == "ws.close")
        & pl.col("code").is_in(list(codes))
        & (pl.col("ts") >= episode.start)
        & (pl.col("ts") < episode.end)
    )["session_id"].n_unique()
    return hit / live


def detect(data: IncidentData) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_server and not data.has_rum:
        return [], [NotRun("close_codes", "no server metrics and no RUM beacons in the window")]
    has_codes = (data.has_server and "code" in data.samples.columns) or data.has_rum
    if not has_codes:
        return [], [NotRun("close_codes", "no ws_closes_total{code} series and no RUM beacons")]
    findings = []
    seen = codes_seen(data)
    for code in WATCHED_CODES:
        counts, source = code_counts(data, code, seen)
        if counts is None:
            continue
        marked = with_baseline(counts)
        min_count = 5 if source == "server" else 3
        for e in episodes(marked, unusual(marked, min_count=min_count)):
            auth = code in AUTH_CODES
            share = affected_share(data, e, AUTH_CODES if auth else (code,))
            kind = "auth_spike" if auth else "close_code_spike"
            severity = severity_from(e.ratio, 3.0, 10.0) if e.observed >= 20 else "low"
            share_text = f", {share:.0%} of its sessions" if share is not None else ""
            findings.append(
                Finding(
                    kind=kind,
                    start=e.start,
                    end=e.end,
                    variant=e.variant,
                    severity=severity,
                    sentence=(
                        f"{e.observed:.0f} {code} ({CODE_NAMES[code]}) closes on {e.variant} "
                        f"from {e.start:%H:%M} to {e.end:%H:%M} UTC where about "
                        f"{e.expected:.0f} are usual{share_text}."
                    ),
                    numbers={
                        "code": code, "closes": e.observed, "expected": e.expected,
                        "ratio": e.ratio, "peak_per_minute": e.peak,
                        "sessions_affected_share": share, "source": source,
                    },
                    detector="close_codes",
                )
            )  # fmt: skip
    return findings, []
