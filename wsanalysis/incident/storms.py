"""Reconnection storms: reconnects far above their usual rate for minutes on end.

Counted from the clients (`ws.reconnect_scheduled` beacons) and from the server
(`ws_connections_total` increases), each scanned against its own baseline per open
connection at every time scale (`scan.elevations`). A surge already explained by a
restart, an outage or an auth spike of the same variant is left to that finding; a
storm is what remains, lasting at least MIN_MINUTES. Both sources seeing one storm make
one finding.
"""

from __future__ import annotations

from dataclasses import replace

from wsanalysis.incident.close_codes import MIN_EXCESS, finding
from wsanalysis.incident.findings import Finding, NotRun
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.scan import Elevation, elevations
from wsanalysis.incident.signals import MINUTE, SIGNALS, exposure, rum_signal, server_signal

MIN_MINUTES = 3


def _storm_elevations(data: IncidentData) -> list[tuple[Elevation, str]]:
    """Reconnect elevations: the clients' reconnects when RUM has them (the server's
    opened connections count new visitors too: a batch of arrivals is no storm), the
    server's opens else."""
    found: list[tuple[Elevation, str]] = []
    rum = rum_signal(data, SIGNALS["reconnects"])
    if rum is not None and rum["n"].sum() > 0:
        sources = [("rum", rum)]
    else:
        sources = [("server", server_signal(data, SIGNALS["opens"]))]
    for source, counts in sources:
        if counts is None or counts["n"].sum() <= 0:
            continue
        found += [(e, source) for e in elevations(counts, exposure(data, source),
                                                  min_excess=MIN_EXCESS[source])
                  if e.minutes >= MIN_MINUTES]  # fmt: skip
    return found


def detect(
    data: IncidentData, explained_by: list[Finding] | None = None
) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_server and not data.has_rum:
        return [], [NotRun("storms", "no ws_connections_total series and no RUM beacons")]
    explained_by = explained_by or []
    findings = []
    for e, source in sorted(_storm_elevations(data), key=lambda x: x[0].start):
        if any(
            f.variant == e.variant and f.overlaps(e.start - 2 * MINUTE, e.end) for f in explained_by
        ):
            continue
        signal = SIGNALS["reconnects" if source == "rum" else "opens"]
        f = finding(data, signal, e, source, "reconnect_storm", "storms",
                    felt=SIGNALS["reconnects"])  # fmt: skip
        if f is None:
            continue
        f.numbers.update({"reconnects": e.observed, "source": source})
        findings.append(
            replace(
                f,
                sentence=f"Reconnection storm on {e.variant}: "
                + f.sentence[0].lower()
                + f.sentence[1:],
            )  # fmt: skip
        )
    return findings, []
