"""Run every detector that can run on the data, in dependency order.

Restarts first (they are the markers a herd is looked for after, and they explain the
1006 bursts of refused handshakes), then close codes and outages, then storms (a surge
that a restart, an outage or an auth spike explains is not a storm), then the rest.
A detector that cannot run says why in `not_run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsanalysis.incident import (
    close_codes,
    delivery,
    herd,
    outages,
    restarts,
    storms,
    survival,
    ttfb,
)
from wsanalysis.incident.findings import Finding, NotRun
from wsanalysis.incident.inputs import IncidentData


@dataclass(frozen=True)
class Analysis:
    findings: list[Finding]
    not_run: list[NotRun] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]


def analyze(data: IncidentData) -> Analysis:
    if data.window is None:
        return Analysis([], [NotRun("all", "the window holds no server samples and no beacons")])
    findings: list[Finding] = []
    not_run: list[NotRun] = []

    def take(result: tuple[list[Finding], list[NotRun]]) -> list[Finding]:
        findings.extend(result[0])
        not_run.extend(result[1])
        return result[0]

    restart = take(restarts.detect(data))
    codes = take(close_codes.detect(data))
    outage = take(outages.detect(data, restart))
    auth = [f for f in codes if f.kind == "auth_spike"]
    storm = take(storms.detect(data, restart + outage + auth))
    take(herd.detect(data, restart))
    take(delivery.detect(data))
    take(survival.detect(data, restart + outage + auth + storm))
    take(ttfb.detect(data))
    findings.sort(key=lambda f: (f.start, f.variant, f.kind))
    return Analysis(findings, not_run)
