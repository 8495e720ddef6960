"""What a verdict is about: the one loader's frames, read for a profile's gates.

Every judge reads through here (the `judge` command, the reports and notebooks,
`judge-server`, `wsanalysis.judge`): a `DataSource` and the profile's reads
(`canary.reads`) go to `wsanalysis.loading.load`, so a report, the pipeline and the
service read the same data the same way and name the same inputs; what was read is
checked against what the gates read (`canary.coverage`) once, here.
"""

from __future__ import annotations

from pathlib import Path

from wsanalysis.canary.coverage import check_input
from wsanalysis.canary.gates import Profile
from wsanalysis.canary.judge import JudgeInput
from wsanalysis.canary.plan import SequentialPlan, sequential_plan
from wsanalysis.canary.reads import gate_metric_names, judge_reads
from wsanalysis.loading import DataSource, Reads, load
from wsanalysis.pushdown.engines import Engine
from wsanalysis.sources.telemetry import Telemetry


def judge_input(
    profile: Profile,
    source: DataSource,
    *,
    canary_share: float | None = None,
    sequential: SequentialPlan | None = None,
    narrow: bool = True,
) -> JudgeInput:
    """The judge's input for `profile` from `source`. `narrow` reads only the gates'
    series and RUM columns (a verdict alone); a report's charts read everything. From a
    server the gates' sums are computed by the server unless the source says `raw`; with
    an engine (`duckdb`, `spark`) the RUM gates' sums are computed there. A metrics file
    is checked whole: a line that breaks its format's rules is an error even in a series
    no gate reads, unless the source is `lenient`, which drops such lines, counts them
    (`inputs.dropped_lines`) and leaves every gate reading a series with dropped lines
    undecided, as a partial server answer does. `source.telemetry` names the user's
    metrics, labels, variant and beacons (docs/telemetry.md)."""
    loaded = load(source, judge_reads(profile, narrow=narrow))
    found = check_input(profile, loaded, source.variants)  # what the gates read is there
    return JudgeInput.of(loaded, canary_share, sequential, found)


def load_judge_input(
    profile: Profile,
    *,
    data: str | Path | None = None,
    prometheus: str | None = None,
    start: str | None = None,
    end: str | None = None,
    rum: str | Path | None = None,
    canary_share: float | None = None,
    variant_label: str | None = None,
    canary_selector: str | None = None,
    control_selector: str | None = None,
    sequential: bool = False,
    look: str = "5m",
    horizon: str = "48h",
    rum_columns: list[str] | None = None,
    metric_names: list[str] | None = None,
    raw: bool = False,
    engine: Engine = "polars",
    lenient: bool = False,
    telemetry: str | Path | Telemetry | None = None,
) -> JudgeInput:
    """`judge_input` from keywords, as tests and older notebooks call it: the same
    `DataSource.of` checks and the same loader. `metric_names` / `rum_columns` narrow a
    file read (a server always reads the gates' series)."""
    source = DataSource.of(
        data=data, prometheus=prometheus, start=start, end=end, rum=rum, raw=raw,
        engine=engine, lenient=lenient, variant_label=variant_label,
        canary_selector=canary_selector, control_selector=control_selector, telemetry=telemetry,
    )  # fmt: skip
    plan = sequential_plan(look, horizon) if sequential else None
    names = metric_names or (gate_metric_names(profile) if prometheus is not None else None)
    reads = Reads(
        metrics=tuple(names) if names is not None else None,
        rum_columns=tuple(rum_columns) if rum_columns is not None else None,
        pushdown=judge_reads(profile).pushdown,
        series=judge_reads(profile).series,
    )
    loaded = load(source, reads)
    return JudgeInput.of(loaded, canary_share, plan, check_input(profile, loaded, source.variants))
