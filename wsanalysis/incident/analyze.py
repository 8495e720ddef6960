"""Run every detector that can run on the data, in dependency order.

Restarts first (they are the markers a herd is looked for after, and they explain the
1006 bursts of refused handshakes), then close codes and outages, then storms (a surge
that a restart, an outage or an auth spike explains is not a storm), then level shifts
between the variants, last: what remains once every incident in time is taken out.
A detector that cannot run says why in `not_run`. Detectors that need no other's
findings run in threads alongside that chain: their time is spent in polars and numpy
with the GIL released. Findings and `not_run` come out in the same order either way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from wsanalysis.incident import (
    close_codes,
    delivery,
    herd,
    outages,
    restarts,
    shifts,
    storms,
    ttfb,
)
from wsanalysis.incident.episodes import Episode, episodes
from wsanalysis.incident.findings import Finding, NotRun
from wsanalysis.incident.inputs import IncidentData

DETECTOR_WORKERS = 3  # the detectors with no dependency, run beside the chain


@dataclass(frozen=True)
class Analysis:
    findings: list[Finding]
    not_run: list[NotRun] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)  # the findings grouped, ranked

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

    data.split_by_type()  # once, before the detectors share it
    with ThreadPoolExecutor(DETECTOR_WORKERS) as pool:
        # detectors that need no other's findings start at once, the chain runs alongside
        codes_run = pool.submit(close_codes.detect, data)
        delivery_run = pool.submit(delivery.detect, data)
        ttfb_run = pool.submit(ttfb.detect, data)
        restart = take(restarts.detect(data))
        herd_run = pool.submit(herd.detect, data, restart)
        codes = take(codes_run.result())
        outage = take(outages.detect(data, restart))
        auth = [f for f in codes if f.kind == "auth_spike"]
        take(storms.detect(data, restart + outage + auth))
        take(herd_run.result())
        take(delivery_run.result())
        take(ttfb_run.result())
        take(shifts.detect(data, timed=list(findings)))
    findings.sort(key=lambda f: (f.start, f.variant, f.kind))
    return Analysis(findings, not_run, episodes(data, findings))
