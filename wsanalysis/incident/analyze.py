"""Run every detector that can run on the data, in dependency order.

Restarts first (they are the markers a herd is looked for after, and they explain the
1006 bursts of refused handshakes), then close codes and outages, then storms (a surge
that a restart, an outage or an auth spike explains is not a storm), then level shifts
between the variants, last: what remains once every incident in time is taken out.
A detector that cannot run says why in `not_run`. Detectors that need no other's
findings, and the reading the level shifts do whatever those findings are, run in
threads alongside that chain: their time is spent in polars and numpy with the GIL
released. Findings and `not_run` come out in the same order either way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from wsanalysis.incident.inputs import IncidentData, load_incident
from wsanalysis.loading import DataSource

DETECTOR_WORKERS = 3  # the detectors with no dependency, run beside the chain


@dataclass(frozen=True)
class Analysis:
    findings: list[Finding]
    not_run: list[NotRun] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)  # the findings grouped, ranked
    data: IncidentData | None = field(default=None, repr=False, compare=False)  # read

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]


def analyze(data: IncidentData) -> Analysis:
    if data.window is None:
        nothing = NotRun("all", "the window holds no server samples and no beacons")
        return Analysis([], [nothing], data=data)
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
        shifts_read = pool.submit(shifts.prepare, data)
        restart = take(restarts.detect(data))
        herd_run = pool.submit(herd.detect, data, restart)
        codes = take(codes_run.result())
        outage = take(outages.detect(data, restart))
        auth = [f for f in codes if f.kind == "auth_spike"]
        take(storms.detect(data, restart + outage + auth))
        take(herd_run.result())
        take(delivery_run.result())
        take(ttfb_run.result())
        shifts_read.result()
        take(shifts.detect(data, timed=list(findings)))
    findings.sort(key=lambda f: (f.start, f.variant, f.kind))
    return Analysis(findings, not_run, episodes(data, findings), data)


def incident(
    data: Any = None,
    *,
    prometheus: str | None = None,
    start: str | None = None,
    end: str | None = None,
    rum: str | Path | None = None,
    rum_sample: float | None = None,
    telemetry: Any = None,
    variant_label: str | None = None,
    canary_selector: str | None = None,
    control_selector: str | None = None,
) -> Analysis:
    """Find, bound and attribute incidents: the `Analysis` (`episodes`, `findings`,
    `not_run`) behind `wsanalysis incident`, called as `wsanalysis.incident(...)`.

    `data` is a dataset folder (or a `Dataset`, or a `DataSource`); else `prometheus` with
    `start` and `end`, and a RUM export in `rum` with the share of sessions it keeps
    (`rum_sample`; a folder's labels.json says its own). `telemetry` names your metrics.

        >>> analysis = wsanalysis.incident(data="data/network_outage")
        >>> analysis.episodes[0].sentence
    """
    source = DataSource.of(
        data=data, prometheus=prometheus, start=start, end=end, rum=rum, telemetry=telemetry,
        variant_label=variant_label, canary_selector=canary_selector,
        control_selector=control_selector, raw=True,
    )  # fmt: skip
    return analyze(load_incident(source, rum_sample))
