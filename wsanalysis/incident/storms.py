"""Reconnection storms: reconnects far above their usual rate for minutes on end.

Counted from the server (`ws_connections_total` increases) and from the clients
(`ws.reconnect_scheduled` beacons), each against its own rolling two-hour median. A
surge already explained by a restart or an outage of the same variant is left to that
finding; a storm is what remains.
"""

from __future__ import annotations

from wsanalysis.incident.findings import Finding, NotRun, severity_from
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.signals import (
    MINUTE,
    Episode,
    episodes,
    rum_counts,
    server_counts,
    unusual,
    with_baseline,
)
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL

MIN_MINUTES = 5


def _storm_episodes(data: IncidentData) -> list[tuple[Episode, str]]:
    found: list[tuple[Episode, str]] = []
    sources = [
        ("rum", rum_counts(data, "ws.reconnect_scheduled")),
        ("server", server_counts(data, CONNECTIONS_TOTAL)),
    ]
    for source, counts in sources:
        if counts is None:
            continue
        marked = with_baseline(counts)
        flag = unusual(marked, ratio=2.0, z=4.0, min_count=5 if source == "server" else 3)
        found += [(e, source) for e in episodes(marked, flag, gap=3, min_minutes=MIN_MINUTES)]
    return found


def detect(
    data: IncidentData, explained_by: list[Finding] | None = None
) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_server and not data.has_rum:
        return [], [NotRun("storms", "no ws_connections_total series and no RUM beacons")]
    explained_by = explained_by or []
    merged: list[Finding] = []
    for e, source in sorted(_storm_episodes(data), key=lambda x: x[0].start):
        if any(
            f.variant == e.variant and f.overlaps(e.start - 2 * MINUTE, e.end) for f in explained_by
        ):
            continue
        same = [f for f in merged if f.variant == e.variant and f.overlaps(e.start, e.end)]
        if same:  # both sources saw it: keep one finding spanning both
            old = same[0]
            merged.remove(old)
            e = Episode(
                e.variant, min(old.start, e.start), max(old.end, e.end),
                max(old.numbers["reconnects"], e.observed),
                max(old.numbers["expected"], e.expected), e.peak, e.peak_baseline, e.minutes,
            )  # fmt: skip
            source = "server+rum"
        merged.append(
            Finding(
                kind="reconnect_storm",
                start=e.start,
                end=e.end,
                variant=e.variant,
                severity=severity_from(e.ratio, 2.0, 4.0),
                sentence=(
                    f"Reconnection storm on {e.variant} from {e.start:%H:%M} to "
                    f"{e.end:%H:%M} UTC: {e.observed:.0f} reconnects, {e.ratio:.1f}x the "
                    f"usual {e.expected:.0f} ({source})."
                ),
                numbers={
                    "reconnects": e.observed, "expected": e.expected, "ratio": e.ratio,
                    "peak_per_minute": e.peak, "minutes": e.minutes, "source": source,
                },
                detector="storms",
            )
        )  # fmt: skip
    return merged, []
