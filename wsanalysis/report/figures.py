"""The production dashboard's panels, redrawn for canary against control.

Each panel is two functions: a pure one from frames to a tidy polars frame (the
numbers, tested on their own) and one from that frame to a plotly figure (drawing
only). Every label that came from data (close codes, reasons, event names) is
HTML-escaped before it reaches plotly: plotly.js renders a subset of HTML in text and
decodes entities, so an escaped `<script>` shows as text and never as markup.
`show` hands a figure to Jupyter as the plotly mimetype, which the report's HTML
renderer draws with the inlined plotly.js (no renderer setting, no CDN).
"""

from __future__ import annotations

import html
from datetime import timedelta

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from wsanalysis.frames.counters import increases
from wsanalysis.frames.measures import Window, bucket_of, connection_durations, histogram_counts
from wsanalysis.frames.selection import RumFilter
from wsanalysis.report.html import PLOTLY_MIMETYPE
from wsanalysis.sources.metric_names import (
    ASSISTANT_TTFB,
    CLOSES_TOTAL,
    CONNECTION_DURATION,
    FRAMES_SENT_TOTAL,
)
from wsanalysis.sources.schema import CLOSE, RECONNECT_SCHEDULED, TTFB
from wsanalysis.stats.quantiles import histogram_quantile
from wsanalysis.stats.survival import kaplan_meier

VARIANTS = ("canary", "control")
VARIANT_COLORS = {"canary": "#d62728", "control": "#1f77b4"}
CLOSES = RumFilter(type=CLOSE, column="duration_ms", scale=0.001)
MAX_CURVE_POINTS = 400


def _empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def _per_bucket_increase(
    samples: pl.DataFrame, metric: str, window: Window, bucket: timedelta, by: list[str]
) -> pl.DataFrame:
    selected = samples.filter(pl.col("metric") == metric)
    if selected.is_empty():
        return _empty({"bucket": pl.Datetime("ms", "UTC"), "variant": pl.Utf8, "value": pl.Float64})
    return (
        increases(selected)
        .group_by(bucket_of("timestamp", window, bucket).alias("bucket"), "variant", *by)
        .agg(pl.col("increase").sum().alias("value"))
        .sort("bucket", "variant", *by)
    )


# -- close codes over time -----------------------------------------------------------------


def close_codes_over_time(
    samples: pl.DataFrame, beacons: pl.DataFrame | None, window: Window, bucket: timedelta
) -> pl.DataFrame:
    """Closes per bucket by variant and code: server counter, else RUM `ws.close`."""
    schema = {
        "bucket": pl.Datetime("ms", "UTC"),
        "variant": pl.Utf8,
        "code": pl.Utf8,
        "closes": pl.Float64,
    }
    if "code" in samples.columns and samples.filter(pl.col("metric") == CLOSES_TOTAL).height:
        frame = _per_bucket_increase(samples, CLOSES_TOTAL, window, bucket, ["code"])
        return frame.rename({"value": "closes"}).select(list(schema))
    if beacons is None or "code" not in beacons.columns:
        return _empty(schema)
    return (
        beacons.filter(pl.col("type") == CLOSE)
        .group_by(
            bucket_of("ts", window, bucket).alias("bucket"),
            "variant",
            pl.col("code").cast(pl.Utf8).fill_null("none"),
        )
        .agg(pl.len().cast(pl.Float64).alias("closes"))
        .sort("bucket", "variant", "code")
        .select(list(schema))
    )


def close_reasons(beacons: pl.DataFrame | None, limit: int = 10) -> pl.DataFrame:
    """The commonest (code, reason) pairs of RUM `ws.close` beacons, per variant."""
    schema = {"variant": pl.Utf8, "code": pl.Utf8, "reason": pl.Utf8, "closes": pl.UInt32}
    if beacons is None or beacons.is_empty() or "reason" not in beacons.columns:
        return _empty(schema)
    return (
        beacons.filter(pl.col("type") == CLOSE)
        .group_by(
            "variant",
            pl.col("code").cast(pl.Utf8).fill_null(""),
            pl.col("reason").cast(pl.Utf8).fill_null(""),
        )
        .agg(pl.len().alias("closes"))
        .sort(["variant", "closes", "code", "reason"], descending=[False, True, False, False])
        .group_by("variant", maintain_order=True)
        .head(limit)
        .select(list(schema))
    )


def _palette(values: list[str]) -> dict[str, str]:
    colors = qualitative.Plotly + qualitative.D3
    return {v: colors[i % len(colors)] for i, v in enumerate(values)}


def _two_panels(title: str, y_title: str) -> go.Figure:
    figure = make_subplots(rows=1, cols=2, subplot_titles=VARIANTS, shared_xaxes=True)
    figure.update_layout(title=title, height=380, margin={"t": 70, "b": 40, "l": 60, "r": 20})
    figure.update_yaxes(title_text=y_title, col=1)
    return figure


def _per_variant_panels(
    frame: pl.DataFrame, title: str, y_title: str, category: str, value: str, bars: bool
) -> go.Figure:
    """One panel per variant, one trace per category with a shared legend entry."""
    figure = _two_panels(title, y_title)
    categories = sorted(frame[category].unique().to_list()) if frame.height else []
    colors = _palette(categories)
    for col, variant in enumerate(VARIANTS, start=1):
        part = frame.filter(pl.col("variant") == variant)
        for name in categories:
            rows = part.filter(pl.col(category) == name)
            label = html.escape(name)
            trace = {
                "x": rows["bucket"].to_list(),
                "y": rows[value].to_list(),
                "name": label,
                "legendgroup": label,
                "showlegend": col == 1,
                "row": 1,
                "col": col,
            }
            if bars:
                figure.add_bar(marker_color=colors[name], **trace)
            else:
                figure.add_scatter(line_color=colors[name], **trace)
    figure.update_layout(legend_title_text=category.replace("_", " "))
    return figure


def close_codes_figure(frame: pl.DataFrame) -> go.Figure:
    """Stacked closes per bucket and code, one panel per variant (scales differ)."""
    figure = _per_variant_panels(
        frame, "Close codes over time", "closes per bucket", "code", "closes", bars=True
    )
    figure.update_layout(barmode="stack", legend_title_text="close code")
    return figure


# -- connection durations ----------------------------------------------------------------


def duration_distribution(samples: pl.DataFrame) -> pl.DataFrame:
    """Share of connections per duration bucket (server histogram), per variant."""
    schema = {"variant": pl.Utf8, "le": pl.Float64, "share": pl.Float64}
    counts = histogram_counts(CONNECTION_DURATION, samples)
    if counts is None:
        return _empty(schema)
    frame = counts.frame.sort("variant", "le")
    per_bucket = pl.col("count") - pl.col("count").shift(1, fill_value=0.0).over("variant")
    return (
        frame.with_columns(per_bucket.clip(0).alias("n"))
        .with_columns((pl.col("n") / pl.col("n").sum().over("variant")).alias("share"))
        .select(list(schema))
    )


def survival_curves(beacons: pl.DataFrame | None, window: Window | None) -> pl.DataFrame:
    """Kaplan–Meier survival of RUM connections per variant, open ones censored.

    At most `MAX_CURVE_POINTS` steps per variant are kept (evenly over the timeline,
    the last always), enough for a chart and small enough for the HTML budget.
    """
    schema = {
        "variant": pl.Utf8,
        "seconds": pl.Float64,
        "survival": pl.Float64,
        "lower": pl.Float64,
        "upper": pl.Float64,
    }
    durations = connection_durations(CLOSES, beacons, window) if window else None
    if durations is None:
        return _empty(schema)
    parts = []
    for variant in VARIANTS:
        rows = durations.frame.filter(pl.col("variant") == variant)
        if rows.is_empty():
            continue
        fit = kaplan_meier(rows["duration"].to_numpy(), rows["observed"].to_numpy())
        lower, upper = fit.confidence_band()
        keep = np.unique(
            np.linspace(0, len(fit.timeline) - 1, min(MAX_CURVE_POINTS, len(fit.timeline)))
            .round()
            .astype(int)
        )
        parts.append(
            pl.DataFrame(
                {
                    "variant": variant,
                    "seconds": fit.timeline[keep],
                    "survival": fit.survival[keep],
                    "lower": lower[keep],
                    "upper": upper[keep],
                }
            )
        )
    return pl.concat(parts).select(list(schema)) if parts else _empty(schema)


def durations_figure(distribution: pl.DataFrame, survival: pl.DataFrame) -> go.Figure:
    """Left: duration histogram shares; right: Kaplan–Meier survival with its band."""
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("duration distribution (server histogram)", "survival (RUM, censored)"),
    )
    for variant in VARIANTS:
        color = VARIANT_COLORS[variant]
        part = distribution.filter(pl.col("variant") == variant)
        labels = [_bucket_label(le) for le in part["le"].to_list()]
        figure.add_bar(
            x=labels,
            y=part["share"].to_list(),
            name=variant,
            legendgroup=variant,
            marker_color=color,
            row=1,
            col=1,
        )
        curve = survival.filter(pl.col("variant") == variant)
        hours = (curve["seconds"] / 3600).to_list()
        figure.add_scatter(
            x=hours + hours[::-1],
            y=curve["upper"].to_list() + curve["lower"].to_list()[::-1],
            fill="toself",
            fillcolor=color,
            opacity=0.15,
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            row=1,
            col=2,
        )
        figure.add_scatter(
            x=hours,
            y=curve["survival"].to_list(),
            mode="lines",
            line={"shape": "hv", "color": color},
            name=variant,
            legendgroup=variant,
            showlegend=False,
            row=1,
            col=2,
        )
    figure.update_layout(
        title="Connection durations", barmode="group", height=380, margin={"t": 70, "b": 40}
    )
    figure.update_xaxes(title_text="connection lasted at most", col=1)
    figure.update_yaxes(title_text="share of connections", col=1)
    figure.update_xaxes(title_text="hours", col=2)
    figure.update_yaxes(title_text="still connected", range=[0, 1.02], col=2)
    return figure


def _bucket_label(le: float) -> str:
    if np.isinf(le):
        return "+Inf"
    if le < 60:
        return f"{le:g} s"
    if le < 3600:
        return f"{le / 60:g} min"
    return f"{le / 3600:g} h"


# -- reconnect backoff, TTFB, frames ---------------------------------------------------------


def backoff_over_time(
    beacons: pl.DataFrame | None, window: Window, bucket: timedelta
) -> pl.DataFrame:
    """Median and p90 of RUM `backoff_ms` of scheduled reconnects, per bucket and variant."""
    schema = {
        "bucket": pl.Datetime("ms", "UTC"),
        "variant": pl.Utf8,
        "median_ms": pl.Float64,
        "p90_ms": pl.Float64,
        "reconnects": pl.UInt32,
    }
    if beacons is None or "backoff_ms" not in beacons.columns:
        return _empty(schema)
    return (
        beacons.filter((pl.col("type") == RECONNECT_SCHEDULED) & pl.col("backoff_ms").is_not_null())
        .group_by(bucket_of("ts", window, bucket).alias("bucket"), "variant")
        .agg(
            pl.col("backoff_ms").cast(pl.Float64).median().alias("median_ms"),
            pl.col("backoff_ms").cast(pl.Float64).quantile(0.9, "linear").alias("p90_ms"),
            pl.len().alias("reconnects"),
        )
        .sort("bucket", "variant")
        .select(list(schema))
    )


def ttfb_p95_over_time(
    samples: pl.DataFrame, beacons: pl.DataFrame | None, window: Window, bucket: timedelta
) -> pl.DataFrame:
    """p95 time-to-first-byte per bucket (seconds): server histogram, else RUM `ttfb_ms`.

    The server figure is PromQL's `histogram_quantile(0.95, increase(...[bucket]))`.
    """
    schema = {
        "bucket": pl.Datetime("ms", "UTC"),
        "variant": pl.Utf8,
        "p95_seconds": pl.Float64,
        "source": pl.Utf8,
    }
    buckets = _per_bucket_increase(samples, f"{ASSISTANT_TTFB}_bucket", window, bucket, ["le"])
    if buckets.height and "le" in buckets.columns:
        wide = (
            buckets.with_columns(pl.col("le").str.replace(r"^\+Inf$", "inf").cast(pl.Float64))
            .sort("le")
            .pivot(on="le", index=["bucket", "variant"], values="value", sort_columns=False)
            .sort("bucket", "variant")
        )
        bounds = [c for c in wide.columns if c not in ("bucket", "variant")]
        le = np.array([float(b) for b in bounds])
        order = np.argsort(le)
        matrix = wide.select(bounds).fill_null(0.0).to_numpy()[:, order]
        p95 = np.atleast_1d(histogram_quantile(0.95, le[order], matrix))
        return wide.select("bucket", "variant").with_columns(
            pl.Series("p95_seconds", p95, dtype=pl.Float64), pl.lit("prometheus").alias("source")
        )
    if beacons is None or "ttfb_ms" not in beacons.columns:
        return _empty(schema)
    return (
        beacons.filter((pl.col("type") == TTFB) & pl.col("ttfb_ms").is_not_null())
        .group_by(bucket_of("ts", window, bucket).alias("bucket"), "variant")
        .agg((pl.col("ttfb_ms").quantile(0.95, "linear") / 1000).alias("p95_seconds"))
        .with_columns(pl.lit("rum").alias("source"))
        .sort("bucket", "variant")
        .select(list(schema))
    )


def frames_by_event(samples: pl.DataFrame, window: Window, bucket: timedelta) -> pl.DataFrame:
    """Frames sent per second by event type, per bucket and variant (server counter)."""
    schema = {
        "bucket": pl.Datetime("ms", "UTC"),
        "variant": pl.Utf8,
        "event": pl.Utf8,
        "per_second": pl.Float64,
    }
    if "event" not in samples.columns:
        return _empty(schema)
    frame = _per_bucket_increase(samples, FRAMES_SENT_TOTAL, window, bucket, ["event"])
    if frame.is_empty():
        return _empty(schema)
    return frame.with_columns(
        (pl.col("value") / bucket.total_seconds()).alias("per_second"),
        pl.col("event").fill_null(""),
    ).select(list(schema))


def lines_by_variant(
    frame: pl.DataFrame, y: str, title: str, y_title: str, dash: str | None = None
) -> go.Figure:
    """One line per variant over time (`dash`: an optional second column, dotted)."""
    figure = go.Figure()
    for variant in VARIANTS:
        part = frame.filter(pl.col("variant") == variant)
        color = VARIANT_COLORS[variant]
        figure.add_scatter(
            x=part["bucket"].to_list(), y=part[y].to_list(), name=variant, line_color=color
        )
        if dash:
            figure.add_scatter(
                x=part["bucket"].to_list(),
                y=part[dash].to_list(),
                name=f"{variant} ({dash.removesuffix('_ms')})",
                line={"color": color, "dash": "dot"},
            )
    figure.update_layout(
        title=title, yaxis_title=y_title, height=360, margin={"t": 60, "b": 40, "l": 60}
    )
    return figure


def frames_figure(frame: pl.DataFrame) -> go.Figure:
    """Frames per second by event, one panel per variant."""
    return _per_variant_panels(
        frame, "Frames sent by event", "frames per second", "event", "per_second", bars=False
    )


def show(figure: go.Figure, title: str = "") -> None:
    """Display as the plotly mimetype only (JupyterLab draws it; so does `report.html`)."""
    from IPython.display import display

    bundle = {
        PLOTLY_MIMETYPE: figure.to_plotly_json(),
        "text/plain": title or str(figure.layout.title.text or "figure"),
    }
    display(_jsonable(bundle), raw=True)


def _jsonable(value):
    """plotly's own encoder (numpy, datetimes) round-trip, so the notebook stores plain JSON."""
    import json

    from plotly.utils import PlotlyJSONEncoder

    return json.loads(json.dumps(value, cls=PlotlyJSONEncoder))


# -- the judge: each gate's interval settling toward its two lines ----------------------


def settle_figure(paths: pl.DataFrame) -> go.Figure:
    """One panel per gate: its confidence interval as the window grew (solid band), the
    projection at the observed traffic (dotted), the bound (where harm starts) and the
    tolerance (harm that must never pass). A gate settles when the band's lower edge
    crosses the bound (fail) or its upper edge the tolerance (pass)."""
    gates = list(dict.fromkeys(paths["gate"].to_list())) if paths.height else []
    figure = make_subplots(
        rows=max(1, len(gates)), cols=1, subplot_titles=[html.escape(g) for g in gates],
        vertical_spacing=0.08,
    )  # fmt: skip
    for row, gate in enumerate(gates, start=1):
        part = paths.filter(pl.col("gate") == gate).sort("hours")
        for kind, dash, opacity in (("observed", "solid", 0.35), ("projection", "dot", 0.15)):
            piece = part.filter(pl.col("kind") == kind)
            if not piece.height:
                continue
            hours = piece["hours"].to_list()
            figure.add_scatter(
                x=hours + hours[::-1],
                y=piece["high"].to_list() + piece["low"].to_list()[::-1],
                fill="toself", fillcolor=f"rgba(31,119,180,{opacity})",
                line={"color": "rgba(31,119,180,0.8)", "dash": dash},
                name=f"interval ({kind})", legendgroup=kind, showlegend=row == 1,
                row=row, col=1,
            )  # fmt: skip
            figure.add_scatter(
                x=hours, y=piece["estimate"].to_list(), mode="lines",
                line={"color": "rgb(31,119,180)", "dash": dash}, name=f"estimate ({kind})",
                legendgroup=kind, showlegend=False, row=row, col=1,
            )  # fmt: skip
        span = [part["hours"].min(), part["hours"].max()]
        for column, color, label in (
            ("bound", "crimson", "bound"),
            ("tolerance", "orange", "tolerance"),
        ):
            value = part[column][0]
            figure.add_scatter(
                x=span, y=[value, value], mode="lines", line={"color": color, "dash": "dash"},
                name=label, legendgroup=label, showlegend=row == 1, row=row, col=1,
            )  # fmt: skip
    figure.update_xaxes(title_text="hours since the window's start", row=max(1, len(gates)))
    figure.update_layout(
        title="How each gate settles: interval, bound and tolerance",
        height=max(320, 240 * len(gates)),
        margin={"t": 70, "b": 40, "l": 60, "r": 20},
    )
    return figure
