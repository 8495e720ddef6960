"""Close-code and error spikes, at every time scale: auth closes (4401/4403/403, a login
or token rotation gone wrong), errors (error frames and 1011 closes), abnormal closes
(1006) and try-again-later (1013), each scanned per variant against its own baseline per
open connection (`scan.elevations`). Server counters when present, RUM beacons else.

Severity is what users felt (`impact`): the share of the variant's sessions the
elevation hit beyond the usual, from RUM sessions when the beacons carry the signal.
"""

from __future__ import annotations

from datetime import datetime

from wsanalysis.incident import impact
from wsanalysis.incident.findings import Finding, NotRun
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.scan import Elevation, elevations
from wsanalysis.incident.signals import (
    AUTH_CODES,
    SIGNALS,
    Signal,
    exposure,
    live_connections,
    signal_counts,
)

#: The signals scanned here and the finding kind each elevation makes.
KINDS = {"auth": "auth_spike", "errors": "error_spike", "1006": "close_code_spike",
         "1013": "close_code_spike"}  # fmt: skip
#: Fewest excess events an elevation must hold, counted by the server or in the RUM sample.
MIN_EXCESS = {"server": 5.0, "rum": 3.0}
CODE_NAMES = {
    4401: "unauthorized",
    4403: "forbidden",
    403: "forbidden",
    1011: "internal error",
    1006: "abnormal close",
    1013: "try again later",
}
WATCHED_CODES = (*AUTH_CODES, 1011, 1006, 1013)


def impact_of(
    data: IncidentData, signal: Signal, e: Elevation, source: str
) -> impact.Impact | None:
    """Who the elevation hit: RUM sessions with the signal when the beacons carry all of
    it, else the server's excess in bursts over the connections live then (error frames
    are not in RUM)."""
    if data.has_rum and (source == "rum" or not signal.frames):
        found = impact.from_rum(data, e.variant, e.start, e.end, signal.rum_where())
        if found is not None:
            return found
    live = live_connections(data, e.variant, e.start, e.end) if source == "server" else None
    return impact.from_server(e.excess, e.burst, live) if live else None


def finding(
    data: IncidentData,
    signal: Signal,
    e: Elevation,
    source: str,
    kind: str,
    detector: str,
    felt: Signal | None = None,
) -> Finding | None:
    """One elevation of a counted signal as a finding (close codes, storms, give-ups);
    its impact read on `felt` (default: the signal itself) in RUM. None for an elevation
    that users do not confirm: counted in RUM, no more sessions hit than usual (a few
    flapping clients); counted on the server and weak, no sampled session hit beyond the
    usual at all."""
    hit = impact_of(data, felt or signal, e, source)
    if hit is not None and hit.source == "rum":
        if source == "rum" and not hit.users_confirm:
            return None  # more events, not more users: a few flapping clients
        if source == "server" and not e.strong and hit.hit <= 0:
            return None  # a weak rise on the server no sampled user saw beyond the usual
    share = hit.share if hit else None
    share_text = f"; {share:.0%} of its sessions hit beyond the usual" if share is not None else ""
    return Finding(
        kind=kind,
        start=e.start,
        end=e.end,
        variant=e.variant,
        severity=impact.severity(share, e.strong, hit.hit if hit else None),
        sentence=(
            f"{e.observed:.0f} {signal.label} on {e.variant} from {_hm(e.start)} to "
            f"{_hm(e.end)} UTC where about {e.expected:.0f} are usual "
            f"(×{e.ratio:.2g}, {e.minutes} min{share_text})."
        ),
        numbers={
            "signal": signal.name, "code": signal.codes[0] if signal.codes else None,
            "closes" if signal.codes else "events": e.observed, "expected": e.expected,
            "ratio": e.ratio, "excess": e.excess, "peak_per_minute": e.peak,
            "minutes": e.minutes, "pvalue": e.pvalue, "strict": e.strong, "source": source,
            **(hit.numbers() if hit else {"sessions_affected_share": None}),
        },
        detector=detector,
    )  # fmt: skip


def _hm(at: datetime) -> str:
    return f"{at:%H:%M}"


def scanned(data: IncidentData, name: str) -> tuple[list[Elevation], str]:
    """Elevations of one signal, server counters first, and where they were counted."""
    signal = SIGNALS[name]
    counts, source = signal_counts(data, signal)
    if counts is None:
        return [], ""
    found = elevations(counts, exposure(data, source), min_excess=MIN_EXCESS[source])
    return found, source


def detect(data: IncidentData) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_server and not data.has_rum:
        return [], [NotRun("close_codes", "no server metrics and no RUM beacons in the window")]
    has_codes = (data.has_server and "code" in data.samples.columns) or data.has_rum
    if not has_codes:
        return [], [NotRun("close_codes", "no ws_closes_total{code} series and no RUM beacons")]
    findings = []
    for name, kind in KINDS.items():
        found, source = scanned(data, name)
        findings += [
            f for e in found if (f := finding(data, SIGNALS[name], e, source, kind, "close_codes"))
        ]
    return sorted(findings, key=lambda f: (f.start, f.variant, f.kind)), []
