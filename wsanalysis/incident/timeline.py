"""One timeline of cause and effect: server closes by code, client reconnect attempts,
give-ups, restart markers and findings, per minute and variant, in one long frame and
one plotly figure (findings as shaded spans, restarts as vertical lines)."""

from __future__ import annotations

import polars as pl

from wsanalysis.incident.findings import Finding
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.signals import rum_counts, server_counts
from wsanalysis.sources.schema import TIMESTAMP

SCHEMA = {
    "time": TIMESTAMP,
    "end": TIMESTAMP,
    "variant": pl.Utf8,
    "source": pl.Utf8,
    "event": pl.Utf8,
    "count": pl.Float64,
    "detail": pl.Utf8,
}


def _counts(frame: pl.DataFrame | None, source: str, event: str) -> pl.DataFrame | None:
    if frame is None:
        return None
    return frame.filter(pl.col("n") > 0).select(
        pl.col("bucket").alias("time"),
        (pl.col("bucket") + pl.duration(minutes=1)).alias("end"),
        "variant",
        pl.lit(source).alias("source"),
        pl.lit(event).alias("event"),
        pl.col("n").alias("count"),
        pl.lit(None, pl.Utf8).alias("detail"),
    )


def timeline(data: IncidentData, findings: list[Finding]) -> pl.DataFrame:
    """Long frame (time, end, variant, source, event, count, detail), in time order."""
    parts: list[pl.DataFrame] = []
    if data.has_server and "code" in data.samples.columns:
        codes = data.samples.filter(pl.col("metric") == "ws_closes_total")["code"].unique()
        for code in codes.drop_nulls().sort().to_list():
            part = _counts(
                server_counts(data, "ws_closes_total", pl.col("code") == code),
                "server", f"close {code}",
            )  # fmt: skip
            parts.append(part)
    if data.has_rum:
        for event, beacon_type in (
            ("reconnect attempt", "ws.reconnect_scheduled"),
            ("give-up", "ws.give_up"),
            ("offline", "ws.offline"),
        ):
            parts.append(_counts(rum_counts(data, beacon_type), "rum", event))
    markers = [
        {
            "time": f.start, "end": f.end, "variant": f.variant,
            "source": "restart" if f.kind == "server_restart" else "finding",
            "event": f.kind, "count": None, "detail": f"{f.severity}: {f.sentence}",
        }
        for f in findings
    ]  # fmt: skip
    if markers:
        parts.append(pl.DataFrame(markers, schema=SCHEMA))
    parts = [
        p.select([pl.col(c).cast(t) for c, t in SCHEMA.items()]) for p in parts if p is not None
    ]
    if not parts:
        return pl.DataFrame(schema=SCHEMA)
    return pl.concat(parts).sort("time", "variant", "source", "event")


def figure(frame: pl.DataFrame, title: str = "Incident timeline"):
    """A plotly figure: one line per (variant, event) count series; findings shaded."""
    import plotly.graph_objects as go

    fig = go.Figure()
    counts = frame.filter(pl.col("count").is_not_null())
    for (variant, event), part in counts.group_by("variant", "event", maintain_order=True):
        fig.add_trace(
            go.Scatter(
                x=part["time"].to_list(), y=part["count"].to_list(), mode="lines",
                name=f"{variant}: {event}", line_shape="hv",
            )
        )  # fmt: skip
    for row in frame.filter(pl.col("source") == "restart").iter_rows(named=True):
        fig.add_vline(x=row["time"], line_dash="dash", line_color="black")
    for row in frame.filter(pl.col("source") == "finding").iter_rows(named=True):
        fig.add_vrect(
            x0=row["time"], x1=row["end"], fillcolor="red", opacity=0.12, line_width=0,
            annotation_text=f"{row['event']} ({row['variant']})", annotation_position="top left",
        )  # fmt: skip
    fig.update_layout(title=title, xaxis_title="time (UTC)", yaxis_title="events per minute",
                      hovermode="x unified")  # fmt: skip
    return fig
