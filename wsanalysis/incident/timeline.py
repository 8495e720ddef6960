"""One timeline of cause and effect: server closes by code, client reconnect attempts,
give-ups, restart markers and findings, per minute and variant, in one long frame and
one plotly figure (findings as shaded spans, restarts as vertical lines)."""

from __future__ import annotations

import polars as pl

from wsanalysis.incident.findings import Finding
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.signals import rum_counts, server_counts
from wsanalysis.sources.metric_names import CLOSES_TOTAL
from wsanalysis.sources.schema import GIVE_UP, OFFLINE, RECONNECT_SCHEDULED, TIMESTAMP

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
        codes = data.samples.filter(pl.col("metric") == CLOSES_TOTAL)["code"].unique()
        for code in codes.drop_nulls().sort().to_list():
            part = _counts(
                server_counts(data, CLOSES_TOTAL, pl.col("code") == code),
                "server", f"close {code}",
            )  # fmt: skip
            parts.append(part)
    if data.has_rum:
        for event, beacon_type in (
            ("reconnect attempt", RECONNECT_SCHEDULED),
            ("give-up", GIVE_UP),
            ("offline", OFFLINE),
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


#: Keyed list under the chart: one line per finding, this many pixels apart.
KEY_LINE_PX = 18
LABEL_WIDTH = 0.035  # share of the time axis a span's number label takes, for lane packing


def label_lanes(spans: list[tuple[float, float]], width: float) -> list[int]:
    """A lane (row) per span's label so labels in one lane never overlap: a label takes
    `width` from its span's start; greedy interval packing, spans in start order."""
    lanes: list[float] = []  # where each lane's last label ends
    out = [0] * len(spans)
    for index in sorted(range(len(spans)), key=lambda k: (spans[k][0], k)):
        start = spans[index][0]
        lane = next((n for n, end in enumerate(lanes) if end <= start), len(lanes))
        if lane == len(lanes):
            lanes.append(0.0)
        lanes[lane] = start + width
        out[index] = lane
    return out


def figure(frame: pl.DataFrame, title: str = "Incident timeline"):
    """A plotly figure: one line per (variant, event) count series; findings shaded and
    numbered (numbers packed in rows so none overlaps), keyed in a list under the chart."""
    from html import escape

    import plotly.graph_objects as go

    fig = go.Figure()
    counts = frame.filter(pl.col("count").is_not_null())
    for (variant, event), part in counts.group_by("variant", "event", maintain_order=True):
        fig.add_trace(
            go.Scatter(
                x=part["time"].to_list(), y=part["count"].to_list(), mode="lines",
                name=escape(f"{variant}: {event}"), line_shape="hv",
            )
        )  # fmt: skip
    for row in frame.filter(pl.col("source") == "restart").iter_rows(named=True):
        fig.add_vline(x=row["time"], line_dash="dash", line_color="black")
    marked = frame.filter(pl.col("source") == "finding").sort("time", "variant", "event")
    rows = list(marked.iter_rows(named=True))
    if rows:
        low = frame["time"].min()
        extent = max((frame["end"].max() - low).total_seconds(), 1.0)
        spans = [((r["time"] - low).total_seconds() / extent,
                  (r["end"] - low).total_seconds() / extent) for r in rows]  # fmt: skip
        lanes = label_lanes(spans, LABEL_WIDTH)
    for number, (row, lane) in enumerate(zip(rows, lanes if rows else [], strict=True), 1):
        fig.add_vrect(x0=row["time"], x1=row["end"], fillcolor="red", opacity=0.12, line_width=0)
        fig.add_annotation(
            x=row["time"], xref="x", xanchor="left", y=1, yref="paper", yanchor="top",
            yshift=-KEY_LINE_PX * lane, text=f"<b>{number}</b>", showarrow=False,
            bgcolor="rgba(255,255,255,0.85)", borderpad=1, font={"size": 11},
        )  # fmt: skip
        fig.add_annotation(
            x=0, xref="paper", xanchor="left", y=0, yref="paper", yanchor="top",
            yshift=-60 - KEY_LINE_PX * (number - 1), showarrow=False, align="left",
            text=escape(
                f"{number}  {row['event']} ({row['variant']}), {row['time']:%H:%M}–"
                f"{row['end']:%H:%M} UTC, {(row['detail'] or '').split(':')[0]}"
            ),
            font={"size": 11},
        )  # fmt: skip
    fig.update_layout(title=title, xaxis_title="time (UTC)", yaxis_title="events per minute",
                      hovermode="x unified", height=450 + KEY_LINE_PX * len(rows),
                      margin={"b": 70 + KEY_LINE_PX * len(rows)})  # fmt: skip
    return fig
