"""Raw samples through VictoriaMetrics' `/api/v1/export`: no query engine, one pass.

Prometheus reads raw samples only through range-vector queries (chunked, see
`source`); VictoriaMetrics also streams every sample of the matched series as JSON
lines (`{"metric": {...}, "values": [...], "timestamps": [ms, ...]}`), which skips the
query engine, its lookback and its per-query limits. Prometheus answers 404 there:
`export_samples` then returns None and the caller reads the usual way.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import polars as pl
import requests

from wsanalysis.sources.prometheus.decoding import _Series
from wsanalysis.sources.prometheus.source import (
    PrometheusSource,
    _variant_queries,
    user_selector_parts,
)
from wsanalysis.sources.prometheus.timing import _iso, _seconds, to_epoch_ms
from wsanalysis.sources.telemetry import REFERENCE, Telemetry
from wsanalysis.sources.translation import samples_to_reference
from wsanalysis.sources.variants import VariantMapping


def export_samples(
    source: PrometheusSource,
    selector: str,
    start: datetime | str | float,
    end: datetime | str | float,
    variants: VariantMapping,
    telemetry: Telemetry = REFERENCE,
) -> pl.DataFrame | None:
    """The samples frame `read_samples` would return, or None without the export API."""
    name, inner = user_selector_parts(selector, telemetry)
    start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
    samples, tables = [], []
    for variant, query in _variant_queries(name, inner, variants):
        params = {"match[]": query, "start": _seconds(start_ms), "end": _seconds(end_ms)}
        if not source.settings.partial_response:
            params["partial_response"] = "false"
        try:
            response = source.session.get(
                f"{source.url}/api/v1/export",
                params=params,
                headers=source.headers,
                auth=source.credentials.auth,
                timeout=source.settings.timeout,
                verify=source.settings.verify,
            )
        except requests.RequestException:
            return None
        if response.status_code != 200:
            return None  # not VictoriaMetrics (Prometheus: 404); read the usual way
        series = _Series()
        ids, stamps, values = [], [], []
        for line in response.text.splitlines():
            if not line:
                continue
            row = json.loads(line)
            series.labels.append(row["metric"])
            ids.append(np.full(len(row["timestamps"]), len(series.labels) - 1, dtype=np.int64))
            stamps.append(np.asarray(row["timestamps"], dtype=np.int64))
            values.append(np.asarray([float(v) for v in row["values"]], dtype=np.float64))
        first = sum(t.height for t in tables)
        if series.labels:
            frame = pl.DataFrame(
                {
                    "series": np.concatenate(ids) + first,
                    "timestamp_ms": np.concatenate(stamps),
                    "value": np.concatenate(values),
                }
            )
            samples.append(frame.filter(pl.col("timestamp_ms").is_between(start_ms, end_ms)))
            table = series.table(first)
            tables.append(
                table if variant is None else table.with_columns(_variant=pl.lit(variant))
            )
    if not tables:
        samples = [
            pl.DataFrame(schema={"series": pl.Int64, "timestamp_ms": pl.Int64, "value": pl.Float64})
        ]
        tables = [pl.DataFrame(schema={"series": pl.Int64})]
    what = f"{selector} between {_iso(start_ms)} and {_iso(end_ms)}"
    frame = source._to_samples(
        pl.concat(samples), pl.concat(tables, how="diagonal"), what, variants, None
    )
    return samples_to_reference(frame, telemetry)
