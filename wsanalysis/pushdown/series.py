"""Per-step values of any PromQL, one series per variant, computed by the server.

A `series` gate's figure is an expression in the service's own names giving one series
per variant: grouped by the variant label (`sum by (track) (...)`), or with `{variant}`
where each variant's label matchers go (`sum(rate(cpu_seconds_total{ {variant} }[2m]))`,
one query per variant). The server evaluates it at the query's `step` over the window,
and the values come back as a frame (timestamp, query, variant, value) in the contract's
variant names. What to ask arrives as `SeriesQuery` values; nothing here knows a gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from wsanalysis.errors import PromQLError, UsageError
from wsanalysis.sources.prometheus import PrometheusSource
from wsanalysis.sources.schema import TIMESTAMP
from wsanalysis.sources.variants import VariantMapping

#: In a query's PromQL, the variant's label matchers (one expression per variant).
VARIANT_PLACEHOLDER = "{variant}"
ROLES = ("canary", "control")
SERIES_SCHEMA = {"timestamp": TIMESTAMP, "query": pl.Utf8, "variant": pl.Utf8, "value": pl.Float64}


@dataclass(frozen=True)
class SeriesQuery:
    """One expression to evaluate per variant: `name` keys its values (a gate's name)."""

    name: str
    promql: str
    step: timedelta


def empty_series() -> pl.DataFrame:
    return pl.DataFrame(schema=SERIES_SCHEMA)


def _matchers_text(mapping: VariantMapping, role: str) -> str:
    return ",".join(m.promql() for m in mapping.matchers_of(role))


def per_variant_promql(name: str, promql: str, mapping: VariantMapping) -> dict[str, str]:
    """The expression for each variant alone: `{variant}` replaced by that variant's
    matchers, or the grouped expression kept to that variant's value of the label."""
    if VARIANT_PLACEHOLDER in promql:
        return {
            role: promql.replace(VARIANT_PLACEHOLDER, _matchers_text(mapping, role))
            for role in ROLES
        }
    if mapping.selectors:
        raise UsageError(
            f"series gate {name!r} groups by a variant label, and the variants are "
            "picked by selectors",
            f"write {VARIANT_PLACEHOLDER} in its promql where each variant's matchers go, or "
            "give the variants by a label",
        )
    kept = {}
    for role in ROLES:
        (matcher,) = mapping.matchers_of(role)
        value = matcher.value.replace("\\", "\\\\").replace('"', '\\"')
        kept[role] = (
            f"({promql}) and on ({mapping.label}) label_replace(vector(1), "
            f'"{mapping.label}", "{value}", "", "")'
        )
    return kept


def series_values(
    server: PrometheusSource,
    query: SeriesQuery,
    start: datetime,
    end: datetime,
    mapping: VariantMapping,
) -> pl.DataFrame:
    """One query's per-step values per variant over [start, end]."""
    parts = []
    if VARIANT_PLACEHOLDER in query.promql:
        for role, promql in per_variant_promql(query.name, query.promql, mapping).items():
            frame = _asked(server, query, promql, start, end)
            if frame.height:
                parts.append(_one_series(query, frame, role))
    else:
        if mapping.selectors:
            per_variant_promql(query.name, query.promql, mapping)  # raises the fix
        frame = _asked(server, query, query.promql, start, end)
        labels = [c for c in frame.columns if c not in ("timestamp", "value")]
        if frame.height:
            frame = frame.with_columns(variant=mapping.variant_expr(labels))
            frame = frame.filter(pl.col("variant").is_in(ROLES))
            for (role,), part in frame.group_by(["variant"]):
                parts.append(_one_series(query, part, str(role)))
    return pl.concat(parts) if parts else empty_series()


def _asked(
    server: PrometheusSource, query: SeriesQuery, promql: str, start: datetime, end: datetime
) -> pl.DataFrame:
    try:
        return server.query_range(promql, start, end, query.step)
    except PromQLError as error:
        raise PromQLError(f"series gate {query.name!r}: {error.problem}", error.fix) from None


def _one_series(query: SeriesQuery, frame: pl.DataFrame, role: str) -> pl.DataFrame:
    """Exactly one series for a variant: several would be averaged without a word."""
    labels = [c for c in frame.columns if c not in ("timestamp", "value", "variant")]
    if labels and frame.select(labels).unique().height > 1:
        raise UsageError(
            f"series gate {query.name!r} gives {frame.select(labels).unique().height} series "
            f"for {role}, not one",
            "aggregate it to one series per variant (e.g. avg by (the variant label) (...))",
        )
    return frame.select(
        pl.col("timestamp").cast(TIMESTAMP),
        pl.lit(query.name).alias("query"),
        pl.lit(role).alias("variant"),
        pl.col("value").cast(pl.Float64),
    )
