"""What a verdict is about, loaded from a dataset folder or a live Prometheus.

One loader for every caller (the `judge` command, the canary notebook), so a report and
the pipeline read the same data the same way and name the same inputs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from wsanalysis.canary.coverage import check_input
from wsanalysis.canary.gates import Profile, parse_duration
from wsanalysis.canary.judge import JudgeInput, SequentialPlan
from wsanalysis.canary.series import with_series_values
from wsanalysis.errors import UsageError
from wsanalysis.frames.coverage import Held
from wsanalysis.frames.measures import Window
from wsanalysis.pushdown import SOURCE_WARNINGS, server_samples
from wsanalysis.pushdown.rum import engine_input, with_engine_window
from wsanalysis.secrets import checked_url
from wsanalysis.sources.dataset import Dataset, file_fingerprint
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL
from wsanalysis.sources.prometheus import PrometheusSource
from wsanalysis.sources.rum import BeaconSchema, read_rum
from wsanalysis.sources.schema import RUM_SCHEMA
from wsanalysis.sources.telemetry import Telemetry, load_telemetry
from wsanalysis.windows import checked_window


def gate_metric_names(profile: Profile) -> list[str]:
    """The server series a profile's gates read (what to fetch from Prometheus)."""
    names = {CONNECTIONS_TOTAL}
    for gate in profile.gates:
        names.update(gate.server_series)
    return sorted(names)


def gate_rum_columns(profile: Profile, variant_label: str = "variant") -> list[str]:
    """The RUM columns a profile's gates read (a Parquet scan then reads no others)."""
    names = {"ts", "type", "variant", "session_id", variant_label}  # windows, split, SRM
    for gate in profile.gates:
        for source in (gate.events, gate.exposure, gate.samples):
            if source is not None and source.rum is not None:
                names.update(source.rum.where)
                if source.rum.column:
                    names.add(source.rum.column)
        if gate.statistic == "survival_quantile":
            names.add("socket_id")  # still-open connections are found by their socket
    return sorted(names & set(RUM_SCHEMA))  # a field the frame lacks reads as missing


def load_judge_input(
    profile: Profile,
    *,
    data: str | Path | None = None,
    prometheus: str | None = None,
    start: str | None = None,
    end: str | None = None,
    rum: str | Path | None = None,
    canary_share: float | None = None,
    variant_label: str = "variant",
    canary_selector: str | None = None,
    control_selector: str | None = None,
    sequential: bool = False,
    look: str = "5m",
    horizon: str = "48h",
    rum_columns: list[str] | None = None,
    metric_names: list[str] | None = None,
    raw: bool = False,
    engine: str = "polars",
    lenient: bool = False,
    telemetry: str | Path | Telemetry | None = None,
) -> JudgeInput:
    """The frames and the provenance a verdict names, from a folder or a server.

    For a verdict alone, `rum_columns=gate_rum_columns(profile)` and
    `metric_names=gate_metric_names(profile)` keep only what the gates read (a
    report's charts read more). From a server, each gate's sums are computed by the
    server (`wsanalysis.pushdown`) unless `raw=True` asks for every sample; with
    `engine="duckdb"` or `"spark"` the RUM gates' sums are computed by that engine.
    A metrics file is still checked whole: a line that breaks its format's rules is an
    error even in a series no gate reads, unless `lenient`, which drops such lines,
    records them under `inputs.dropped_lines` (file -> rule -> count) and makes every
    gate reading a series with dropped lines inconclusive (as a partial server answer).
    `telemetry` (a file or a `Telemetry`) names the user's metrics, labels, variant and
    beacons; the variant options given here replace its `variants` (docs/telemetry.md).
    """
    if (data is None) == (prometheus is None):
        raise UsageError("give exactly one data source", "a dataset folder or a Prometheus URL")
    plan = None
    if sequential:
        try:
            plan = SequentialPlan(parse_duration(look), parse_duration(horizon))
        except ValueError as error:
            raise UsageError(f"look/horizon: {error}", "use durations like 5m and 48h") from None
    mapping = load_telemetry(telemetry)
    mapping = mapping.with_variants(variant_label, canary_selector, control_selector)
    variants = mapping.variant_mapping
    if engine != "polars" and not BeaconSchema.of(mapping).plain:
        raise UsageError(
            f"the {engine} engine reads beacons in the contract's names only",
            "use --engine polars with a telemetry file that maps beacon fields or types",
        )
    checked_url(prometheus, "prometheus")
    start_at, end_at = checked_window(
        start, end, required=prometheus is not None, needs="a Prometheus source"
    )
    fingerprints: dict[str, str] = {}
    server_warnings: dict[str, list[str]] = {}
    dropped: dict[str, dict[str, int]] = {}
    if data is not None:
        dataset = whole = Dataset.open(data)
        rum_path = dataset.rum_path if engine != "polars" else None
        if rum_path is not None:  # push-down: the engine reads the beacons, not polars
            dataset = replace(dataset, rum_path=None)
        # hashing and parsing release the GIL: the three run side by side
        with ThreadPoolExecutor(2) as pool:
            hashing = pool.submit(whole.fingerprints)
            reading = pool.submit(
                dataset.rum, start=start_at, end=end_at, columns=rum_columns, telemetry=mapping
            )
            metrics = dataset.metrics_load(
                variants=variants,
                telemetry=mapping,
                metrics=metric_names,
                start=start_at,
                end=end_at,
                lenient=lenient,
            )
            load, fingerprints = reading.result(), hashing.result()
        where = dataset.metrics_path
        held = Held.of(str(where), metrics.names, mapping) if where is not None else None
        samples, server_warnings = metrics.frame, metrics.warnings()
        if metrics.dropped and dataset.metrics_path is not None:
            dropped[dataset.metrics_path.name] = dict(sorted(metrics.dropped.items()))
        origin: dict = {"data": str(data)}
    else:
        with PrometheusSource(prometheus) as server:
            names = gate_metric_names(profile)
            samples, server_warnings = server_samples(
                server, profile, start_at, end_at, variants, raw=raw, metric_names=names,
                telemetry=mapping,
            )  # fmt: skip
            spelled = server.metric_names(start_at, end_at)
        held = Held.of(f"Prometheus at {prometheus}", spelled, mapping)
        rum_path = Path(rum) if rum and engine != "polars" else None
        wanted = rum and rum_path is None
        load = (
            read_rum(rum, start=start_at, end=end_at, columns=rum_columns, telemetry=mapping)
            if wanted
            else None
        )
        if rum:
            fingerprints[Path(rum).name] = file_fingerprint(Path(rum))
        origin = {"prometheus": prometheus, "selectors": variants.selectors or None}
    samples = with_series_values(
        profile, samples, data=data, prometheus=prometheus, start=start_at, end=end_at,
        variants=variants,
    )  # fmt: skip
    beacons = load.frame if load is not None else None
    rum_where = load.source if load is not None else "the RUM export"
    metadata = {
        "inputs": {
            **origin,
            "fingerprints": fingerprints,
            "rum_bad_lines": load.bad_lines if load is not None else None,
            "lenient": lenient,
            "dropped_lines": dropped,
            "telemetry": mapping.provenance(),
        },
        SOURCE_WARNINGS: server_warnings,
        **check_input(profile, samples, held, variants.describe(), load, rum_where),
    }
    window = Window(start_at, end_at) if start_at and end_at else None
    if rum_path is None:
        return JudgeInput(samples, beacons, window, canary_share, metadata, plan)
    pushed = engine_input(engine, rum_path, start_at, end_at)  # type: ignore[arg-type]
    metadata["inputs"]["rum_engine"] = engine
    window = with_engine_window(window, samples, pushed)
    return JudgeInput(samples, None, window, canary_share, metadata, plan, pushed.measures)
