"""What the production runbook watches, as figures drawn from the gate file.

The dashboard and the rules both start here, so a panel, the alert beside it and the
canary judge read one figure with one threshold. The runbook's targets that the gate
file lacks are the named constants below (a proposal for the gate file: add them as
gates, and these constants go away).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from wsanalysis.canary.gates import CompareSpec, GateFile, MetricSource, Series, load_gate_file
from wsanalysis.errors import UsageError
from wsanalysis.observability import promql
from wsanalysis.observability.promql import GateFigure
from wsanalysis.sources import metric_names as names
from wsanalysis.sources.telemetry import REFERENCE, Telemetry

#: Runbook "assistant time-to-first-byte p95 target <= 2 s" (absolute, per variant). The
#: gate file's `ttfb_p95` gate only compares the canary with control (+100 ms).
TTFB_P95_TARGET_SECONDS = 2.0
#: Runbook "alert when the average client reconnect backoff exceeds 10 s". A client-side
#: (RUM) figure: Prometheus holds no backoff series, so no alerting rule can use it; the
#: dashboard's backoff panel states the bound and points to the notebook.
RECONNECT_BACKOFF_ALERT_SECONDS = 10.0
#: Runbook "alert on a spike of 1011": neither runbook nor gate file give a bound. Our
#: choice: more than 1 in 20 connections opened closing with 1011 within 5 minutes, the
#: per-bucket share the gate file sets for 4401 (`auth_spike_after_login`); judged like
#: that gate (confidence bound beyond it, `min_events` connections, as `error_rate`).
INTERNAL_ERROR_SPIKE_BOUND = 0.05
INTERNAL_ERROR_EVENTS = (Series.parse(f'{names.CLOSES_TOTAL}{{code="1011"}}'),)
CONNECTIONS = (Series.parse(names.CONNECTIONS_TOTAL),)


@dataclass(frozen=True)
class RunbookFigures:
    """Every figure the dashboard and the alerts read, each with its gate (and threshold).

    A figure whose gate the file lacks (renamed, removed) or cannot write as PromQL (read
    from RUM only) is None, and `skipped` says which and why; every other gate of the
    file is exported as a gate of its own (`others`)."""

    auth_spike: GateFigure | None  # staging `auth_spike_after_login`: 4401 share, bound
    auth_against_control: GateFigure | None  # canary `auth_spike`: 4401 against control
    error_rate: GateFigure | None  # canary `error_rate`: against control
    internal_errors: GateFigure  # runbook: 1011 share (INTERNAL_ERROR_SPIKE_BOUND)
    duration_p95: GateFigure | None  # staging `duration_p95`
    duration_p50: GateFigure | None  # staging `duration_p50`
    reconnect_rate: GateFigure | None  # canary `reconnect_rate`: share per hour, bound
    ttfb: GateFigure | None  # canary `ttfb_p95`: against control
    ttfb_target: GateFigure | None  # runbook: p95 TTFB against TTFB_P95_TARGET_SECONDS
    others: tuple[GateFigure, ...] = ()  # the file's other gates with a PromQL form
    skipped: tuple[str, ...] = ()  # what is left out, and why (one sentence each)

    def all(self) -> list[GateFigure]:
        runbook = [getattr(self, name) for name in RUNBOOK_FIELDS]
        return [f for f in runbook if f is not None] + list(self.others)


RUNBOOK_FIELDS = (
    "auth_spike", "auth_against_control", "error_rate", "internal_errors", "duration_p95",
    "duration_p50", "reconnect_rate", "ttfb", "ttfb_target",
)  # fmt: skip
#: The gates the runbook's panels and alerts read: (profile, gate).
RUNBOOK_GATES = {
    ("staging", "auth_spike_after_login"), ("canary", "auth_spike"), ("canary", "error_rate"),
    ("staging", "duration_p95"), ("staging", "duration_p50"), ("canary", "reconnect_rate"),
    ("canary", "ttfb_p95"),
}  # fmt: skip


def runbook_figure(base: GateFigure, name: str, bound: float, **changes: object) -> GateFigure:
    """A figure for a runbook target the gate file lacks, shaped like gate `base`'s."""
    gate = replace(base.gate, name=name, compare=CompareSpec("bound", bound=bound), **changes)
    return promql.figure_of(gate, "runbook", base.telemetry)


def figures(gate_file: GateFile, telemetry: Telemetry = REFERENCE) -> RunbookFigures:
    """The runbook's figures from `gate_file`, in `telemetry`'s names; a runbook gate
    missing or unusable is left out and named in `skipped`."""
    skipped: list[str] = []

    def gate(profile: str, name: str, user: str) -> GateFigure | None:
        try:
            return promql.gate_figure(gate_file, profile, name, used_by=user, telemetry=telemetry)
        except UsageError as error:
            skipped.append(f"{user[0].upper()}{user[1:]} left out: {error.problem}.")
            return None

    error_rate = gate("canary", "error_rate", "the error-rate panel and alert")
    ttfb = gate("canary", "ttfb_p95", "the p95 TTFB panel and alert")
    base = error_rate or promql.gate_figure(
        load_gate_file(), "canary", "error_rate", used_by="the 1011 alert", telemetry=telemetry
    )
    internal = runbook_figure(
        base,
        "internal_error_spike",
        INTERNAL_ERROR_SPIKE_BOUND,
        events=MetricSource(prometheus=INTERNAL_ERROR_EVENTS),
        exposure=MetricSource(prometheus=CONNECTIONS),
        statistic="spike",
        bucket=timedelta(minutes=5),
        worse="increase",
    )
    ttfb_target = (
        runbook_figure(ttfb, "ttfb_p95_target", TTFB_P95_TARGET_SECONDS, quantile=0.95)
        if ttfb is not None and ttfb.kind == "quantile"
        else ttfb  # a gate known only by its promql text: used as it is
    )
    others = []
    for profile_name, profile in gate_file.profiles.items():
        for one in profile.gates:
            if (profile_name, one.name) in RUNBOOK_GATES:
                continue
            try:
                others.append(promql.figure_of(one, profile_name, telemetry))
            except UsageError as error:
                skipped.append(
                    f"Gate {one.name} (profile {profile_name}) left out: {error.problem}."
                )
    return RunbookFigures(
        auth_spike=gate("staging", "auth_spike_after_login", "the 4401 panel and alert"),
        auth_against_control=gate("canary", "auth_spike", "the 4401 panel's canary limit"),
        error_rate=error_rate,
        internal_errors=internal,
        duration_p95=gate("staging", "duration_p95", "the p95 connection duration panel"),
        duration_p50=gate("staging", "duration_p50", "the p50 connection duration panel"),
        reconnect_rate=gate("canary", "reconnect_rate", "the reconnect-rate panel and alert"),
        ttfb=ttfb,
        ttfb_target=ttfb_target,
        others=tuple(others),
        skipped=tuple(skipped),
    )
