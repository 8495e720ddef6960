"""Time-to-first-byte degradations in time: spans where more replies than usual were slow.

A reply is slow when its RUM `ws.ttfb` is above the p95 of every reply in the window
(all variants pooled, one threshold for all). Slow replies per minute, per reply that
minute, are scanned per variant at every time scale like any count (`scan.elevations`:
overdispersion measured, sessions' own latency levels included), so an hour of slow
replies is one finding and a slow session is not. A span is reported when users would
feel it: its p95 at least ×1.25 and +50 ms the p95 around it. Severity is the share of
the variant's replies that were slow beyond the usual (`impact`).

A variant slower than the other all along, or since a point, is a level shift
(`shifts`), not a span in time.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from wsanalysis.incident import impact
from wsanalysis.incident.findings import Finding, NotRun
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.scan import elevations
from wsanalysis.incident.signals import rum_counts
from wsanalysis.sources.schema import TTFB

MIN_SAMPLES = 30
SLOW_QUANTILE = 0.95
MIN_SLOW = 5.0  # sampled slow replies beyond the usual in a span
#: A span is worse when its p95 is this much above the p95 around it (both): a latency
#: users feel, not the load's ordinary swing.
RATIO, MIN_DIFF_MS = 1.25, 50.0
REACH = timedelta(minutes=90)
#: The quarter hours findings.json has counted a span in (`buckets`, `buckets_total`)
#: since the detector compared 15-minute p95s; kept so readers of those fields still work.
BUCKET = timedelta(minutes=15)


def replies(data: IncidentData) -> pl.DataFrame:
    """The RUM replies with a time to first byte (`session` an integer code per session,
    what the session-clustered statistics group by; once per data)."""
    return data.shared("replies", lambda: (
        data.of_type(TTFB)
        .filter(pl.col("ttfb_ms").is_not_null())
        .with_columns(pl.col("session_id").cast(pl.Categorical).to_physical().alias("session"))
    ))  # fmt: skip


def detect(data: IncidentData) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_rum or data.window is None:
        return [], [NotRun("ttfb", "needs RUM ws.ttfb beacons")]
    seen = replies(data)
    if seen.height < MIN_SAMPLES:
        return [], [NotRun("ttfb", f"fewer than {MIN_SAMPLES} ws.ttfb beacons")]
    threshold = float(seen["ttfb_ms"].quantile(SLOW_QUANTILE))
    slow_where = pl.col("ttfb_ms").is_not_null() & (pl.col("ttfb_ms") > threshold)
    slow = rum_counts(data, TTFB, slow_where)
    total = rum_counts(data, TTFB, pl.col("ttfb_ms").is_not_null())
    findings = []
    for e in elevations(slow, total, min_excess=MIN_SLOW):
        mine = seen.filter(pl.col("variant") == e.variant)
        span = mine.filter(pl.col("ts").is_between(e.start, e.end, closed="left"))
        reach = max(REACH, e.end - e.start)
        around = mine.filter(
            pl.col("ts").is_between(e.start - reach, e.start, closed="left")
            | pl.col("ts").is_between(e.end, e.end + reach, closed="left")
        )
        if span.height < MIN_SAMPLES or around.height < MIN_SAMPLES:
            continue
        p95 = float(span["ttfb_ms"].quantile(SLOW_QUANTILE))
        usual = float(around["ttfb_ms"].quantile(SLOW_QUANTILE))
        if p95 < RATIO * usual or p95 - usual < MIN_DIFF_MS:
            continue
        share = e.excess / span.height
        findings.append(
            Finding(
                kind="ttfb_degradation",
                start=e.start,
                end=e.end,
                variant=e.variant,
                severity=impact.severity(share, e.strong),
                sentence=(
                    f"Assistant first-byte time on {e.variant} was worse than usual from "
                    f"{e.start:%H:%M} to {e.end:%H:%M} UTC: {e.observed:.0f} replies slower "
                    f"than {threshold:.0f} ms where about {e.expected:.0f} are usual "
                    f"(p95 {p95:.0f} ms against {usual:.0f} ms around it)."
                ),
                numbers={
                    "signal": "ttfb", "p95_ms": p95, "reference_p95_ms": usual,
                    "slow_above_ms": threshold,
                    "slow_replies": e.observed, "expected": e.expected, "ratio": e.ratio,
                    "replies": span.height, "excess_share": share, "minutes": e.minutes,
                    "pvalue": e.pvalue, "strict": e.strong,
                    "buckets": -(-(e.end - e.start) // BUCKET),
                    "buckets_total": -(-(data.window.end - data.window.start) // BUCKET),
                },
                detector="ttfb",
            )
        )  # fmt: skip
    return findings, []
