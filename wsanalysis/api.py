"""The public face: judge a canary, analyse an incident, from Python, in one call each.

`wsanalysis.judge(...)` reads a data source through the one loader and judges it against
a gate profile, exactly as `wsanalysis judge` does (the same `DataSource.of` checks, the
same loader, the same judge); `wsanalysis.incident(...)` (`incident.analyze.incident`)
runs the incident detectors as `wsanalysis incident` does. Everything else in the
package sits behind these; the names `wsanalysis.__all__` lists come from here (the
result types re-exported as they are).
"""

from __future__ import annotations

from pathlib import Path

from wsanalysis.canary.gates import Profile as Profile
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import judge_input, sequential_plan
from wsanalysis.canary.judge import judge as judge_profile
from wsanalysis.canary.verdict import GateEvidence as GateEvidence
from wsanalysis.canary.verdict import GateResult as GateResult
from wsanalysis.canary.verdict import Verdict
from wsanalysis.incident.analyze import Analysis as Analysis
from wsanalysis.incident.analyze import incident as incident
from wsanalysis.incident.episodes import Episode as Episode
from wsanalysis.incident.findings import Finding as Finding
from wsanalysis.incident.findings import NotRun as NotRun
from wsanalysis.loading import DataSource
from wsanalysis.pushdown.engines import Engine
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.telemetry import Telemetry

#: what `data` may be: a dataset folder, a `Dataset`, a `DataSource`
Source = str | Path | Dataset | DataSource


def judge(
    data: Source | None = None,
    *,
    prometheus: str | None = None,
    start: str | None = None,
    end: str | None = None,
    rum: str | Path | None = None,
    canary_share: float | None = None,
    gates: str | Path | None = None,
    profile: str = "canary",
    telemetry: str | Path | Telemetry | None = None,
    sequential: bool = False,
    look: str = "5m",
    horizon: str = "48h",
    engine: Engine = "polars",
    raw: bool = False,
    lenient: bool = False,
    variant_label: str | None = None,
    canary_selector: str | None = None,
    control_selector: str | None = None,
    frames: bool = False,
) -> Verdict:
    """Judge a canary against control: the `Verdict` `wsanalysis judge` writes.

    `data` is a dataset folder (or a `Dataset`, or a `DataSource`); else `prometheus`
    with `start` and `end` (and a RUM export in `rum`). `canary_share` is the declared
    split (the sample-ratio check); `gates` a gate file (default: the production gates)
    and `profile` one of its profiles; `telemetry` a mapping file naming your metrics and
    fields; `sequential` the anytime-valid mode for a pipeline that looks every `look`
    through a canary of `horizon`; `engine` where the RUM gates' sums are computed
    (`polars`, `duckdb`, `spark`); `raw` reads every sample from a server instead of the
    gates' sums. The frames it judged are `verdict.data` (a `JudgeInput`): only what the
    gates read, or every series and RUM field with `frames=True` (for charts). Errors
    are `wsanalysis.errors.WsAnalysisError` (problem and fix).

        >>> verdict = wsanalysis.judge(data="data/error_rate_x2", canary_share=0.1)
        >>> verdict.overall
        'NO_GO'
    """
    gate_file = load_gate_file(gates)
    chosen = gate_file.profile(profile)
    source = DataSource.of(
        data=data, prometheus=prometheus, start=start, end=end, rum=rum, telemetry=telemetry,
        raw=raw, engine=engine, lenient=lenient, variant_label=variant_label,
        canary_selector=canary_selector, control_selector=control_selector,
    )  # fmt: skip
    plan = sequential_plan(look, horizon) if sequential else None
    data = judge_input(
        chosen, source, canary_share=canary_share, sequential=plan, narrow=not frames
    )
    return judge_profile(chosen, data, gate_file=gate_file)
