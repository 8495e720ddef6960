"""`series` gates: any PromQL, one series per variant, judged step by step.

A gate's `promql:` is written in the service's own names and gives one series per
variant: grouped by the variant label (`sum by (track) (...)`), or with `{variant}`
where each variant's label matchers go (`sum(rate(cpu_seconds_total{ {variant} }[2m]))`,
one query per variant). The server evaluates it at the gate's `step`; the values travel
to the judge in the samples frame as the series `series:<gate>` (canary and control
rows, no labels), so sequential looks, settle paths and reports need nothing new. A
dataset folder has no server: it is backfilled into a local Prometheus (`prom up`'s
machinery) for the queries, or the gate is refused with the fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from wsanalysis.canary.evidence import comparison_evidence
from wsanalysis.canary.gates import VARIANT_PLACEHOLDER, Gate, Profile
from wsanalysis.canary.verdict import GateEvidence
from wsanalysis.errors import PromQLError, UsageError
from wsanalysis.frames.measures import Window
from wsanalysis.sources.prometheus import PrometheusSource
from wsanalysis.sources.schema import TIMESTAMP
from wsanalysis.sources.variants import VariantMapping
from wsanalysis.stats.series import compare_series

ROLES = ("canary", "control")


def series_metric(gate: Gate) -> str:
    """The samples frame's name for a series gate's per-step values."""
    return f"series:{gate.name}"


def series_gates(profile: Profile) -> list[Gate]:
    return [gate for gate in profile.gates if gate.statistic == "series"]


def _matchers_text(mapping: VariantMapping, role: str) -> str:
    return ",".join(m.promql() for m in mapping.matchers_of(role))


def per_variant_promql(gate: Gate, mapping: VariantMapping) -> dict[str, str]:
    """The gate's PromQL for each variant alone: `{variant}` replaced by that variant's
    matchers, or the grouped expression kept to that variant's value of the label."""
    assert gate.promql is not None
    if VARIANT_PLACEHOLDER in gate.promql:
        return {
            role: gate.promql.replace(VARIANT_PLACEHOLDER, _matchers_text(mapping, role))
            for role in ROLES
        }
    if mapping.selectors:
        raise UsageError(
            f"series gate {gate.name!r} groups by a variant label, and the variants are "
            "picked by selectors",
            f"write {VARIANT_PLACEHOLDER} in its promql where each variant's matchers go, or "
            "give the variants by a label",
        )
    kept = {}
    for role in ROLES:
        (matcher,) = mapping.matchers_of(role)
        value = matcher.value.replace("\\", "\\\\").replace('"', '\\"')
        kept[role] = (
            f"({gate.promql}) and on ({mapping.label}) label_replace(vector(1), "
            f'"{mapping.label}", "{value}", "", "")'
        )
    return kept


def _values(server: PrometheusSource, gate: Gate, start, end, mapping) -> pl.DataFrame:
    """One gate's per-step values per variant: timestamp, metric, variant, value."""
    assert gate.promql is not None and gate.step is not None
    parts = []
    if VARIANT_PLACEHOLDER in gate.promql:
        for role, query in per_variant_promql(gate, mapping).items():
            frame = _asked(server, gate, query, start, end)
            if frame.height:
                parts.append(_one_series(gate, frame, role))
    else:
        if mapping.selectors:
            per_variant_promql(gate, mapping)  # raises the fix
        frame = _asked(server, gate, gate.promql, start, end)
        labels = [c for c in frame.columns if c not in ("timestamp", "value")]
        if frame.height:
            frame = frame.with_columns(variant=mapping.variant_expr(labels))
            frame = frame.filter(pl.col("variant").is_in(ROLES))
            for (role,), part in frame.group_by(["variant"]):
                parts.append(_one_series(gate, part, str(role)))
    schema = {"timestamp": TIMESTAMP, "metric": pl.Utf8, "variant": pl.Utf8, "value": pl.Float64}
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def _asked(server: PrometheusSource, gate: Gate, query: str, start, end) -> pl.DataFrame:
    try:
        return server.query_range(query, start, end, gate.step)
    except PromQLError as error:
        raise PromQLError(f"series gate {gate.name!r}: {error.problem}", error.fix) from None


def _one_series(gate: Gate, frame: pl.DataFrame, role: str) -> pl.DataFrame:
    """Exactly one series for a variant: several would be averaged without a word."""
    labels = [c for c in frame.columns if c not in ("timestamp", "value", "variant")]
    if labels and frame.select(labels).unique().height > 1:
        raise UsageError(
            f"series gate {gate.name!r} gives {frame.select(labels).unique().height} series "
            f"for {role}, not one",
            "aggregate it to one series per variant (e.g. avg by (the variant label) (...))",
        )
    return frame.select(
        pl.col("timestamp").cast(TIMESTAMP),
        pl.lit(series_metric(gate)).alias("metric"),
        pl.lit(role).alias("variant"),
        pl.col("value").cast(pl.Float64),
    )


@contextmanager
def _server(
    data: str | Path | None, prometheus: str | None
) -> Iterator[tuple[PrometheusSource, Window | None]]:
    """The server holding the data (the one named, or a local Prometheus over the
    folder) and, for a folder, the window its samples span."""
    if prometheus is not None:
        with PrometheusSource(prometheus) as server:
            yield server, None
        return
    from wsanalysis.sources.local_prometheus import (
        find_binary,
        prometheus_for_dataset,
        tsdb_window,
    )

    try:
        find_binary("prometheus"), find_binary("promtool")
    except UsageError as error:
        raise UsageError(
            f"a series gate runs its PromQL on a server, and this dataset folder has none: "
            f"{error.problem}",
            f"{error.fix}; or judge against the Prometheus holding the data (--prometheus URL)",
        ) from None
    with prometheus_for_dataset(Path(str(data))) as local, PrometheusSource(local.url) as server:
        span = tsdb_window(local.tsdb)
        yield server, Window(_at(span[0]), _at(span[1])) if span else None


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def with_series_values(
    profile: Profile,
    samples: pl.DataFrame,
    *,
    data: str | Path | None,
    prometheus: str | None,
    start: datetime | None,
    end: datetime | None,
    variants: VariantMapping,
) -> pl.DataFrame:
    """`samples` plus every series gate's per-step values (unchanged without such gates)."""
    gates = series_gates(profile)
    if not gates:
        return samples
    with _server(data, prometheus) as (server, span):
        window = Window.of(samples, None) or span
        if window is None and (start is None or end is None):
            return samples  # no data anywhere: the judge says the window is empty
        start = start or window.start  # type: ignore[union-attr]
        end = end or window.end  # type: ignore[union-attr]
        values = [_values(server, gate, start, end, variants) for gate in gates]
    return pl.concat([samples, *values], how="diagonal_relaxed")


def series_evidence(gate: Gate, samples: pl.DataFrame, window: Window) -> GateEvidence:
    """The gate's evidence from its per-step values in `samples` (see the module)."""
    rows = samples.filter(
        (pl.col("metric") == series_metric(gate))
        & pl.col("timestamp").is_between(window.start, window.end)
    )
    if rows.is_empty():
        return GateEvidence.no_data(
            gate.bound_line,
            "its PromQL gave no values in the window (series gates are evaluated where "
            "the data are read: wsanalysis judge, canary, report)",
        )
    wide = rows.pivot(on="variant", index="timestamp", values="value").sort("timestamp")
    if not set(ROLES) <= set(wide.columns):
        missing = ", ".join(r for r in ROLES if r not in wide.columns)
        return GateEvidence.no_data(gate.bound_line, f"its PromQL gave no {missing} series")
    result = compare_series(
        wide["canary"].to_numpy(),
        wide["control"].to_numpy(),
        effect="ratio" if gate.relative else "difference",
        level=gate.confidence,
        min_steps=gate.min_events,
    )
    if math.isnan(result.statistic):
        return GateEvidence.no_data(gate.bound_line, result.reason)
    return comparison_evidence(
        gate, result, float(result.n_canary), "prometheus", details={"steps": result.n_canary}
    )
