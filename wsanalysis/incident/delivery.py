"""Delivery problems the user sees: duplicate messages shown, dedup and stale-socket
drops (the client saving the day), and clients that gave up reconnecting — the proxy for
"the user refreshed the page by hand". All from RUM beacons."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from wsanalysis.incident.findings import Finding, NotRun, severity_from
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.signals import episodes, rum_counts, unusual, with_baseline


@dataclass(frozen=True)
class DeliveryCounts:
    """Per variant, in the sampled beacons: messages, duplicates delivered, drops, give-ups."""

    frame: pl.DataFrame  # variant, messages, duplicates, dedup_drops, stale_drops, give_ups


def delivery_counts(beacons: pl.DataFrame) -> DeliveryCounts:
    """A message delivered twice is a second `ws.message` with the same session and trace."""
    messages = beacons.filter(pl.col("type") == "ws.message")
    duplicates = (
        messages.filter(pl.col("trace").is_not_null())
        .group_by("variant", "session_id", "trace")
        .agg((pl.len() - 1).alias("extra"))
        .group_by("variant")
        .agg(pl.col("extra").sum().cast(pl.Float64).alias("duplicates"))
    )
    by_type = beacons.group_by("variant").agg(
        (pl.col("type") == "ws.message").sum().cast(pl.Float64).alias("messages"),
        (pl.col("type") == "ws.dedup_drop").sum().cast(pl.Float64).alias("dedup_drops"),
        (pl.col("type") == "ws.stale_drop").sum().cast(pl.Float64).alias("stale_drops"),
        (pl.col("type") == "ws.give_up").sum().cast(pl.Float64).alias("give_ups"),
    )
    frame = by_type.join(duplicates, on="variant", how="left").with_columns(
        pl.col("duplicates").fill_null(0.0)
    )
    return DeliveryCounts(frame.sort("variant"))


def detect(data: IncidentData) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_rum or data.window is None:
        return [], [NotRun("delivery", "duplicates, drops and give-ups are seen only in RUM")]
    findings: list[Finding] = []
    not_run: list[NotRun] = []
    counts = delivery_counts(data.beacons)
    if counts.frame["messages"].sum() == 0:
        not_run.append(NotRun("delivery.duplicates", "no ws.message beacons (excluded from RUM)"))
    for row in counts.frame.iter_rows(named=True):
        if row["duplicates"] > 0 and row["messages"] > 0:
            share = row["duplicates"] / row["messages"]
            findings.append(
                Finding(
                    kind="duplicates_delivered",
                    start=data.window.start,
                    end=data.window.end,
                    variant=row["variant"],
                    severity=severity_from(share, 0.005, 0.02),
                    sentence=(
                        f"{row['duplicates']:.0f} messages were shown twice on "
                        f"{row['variant']} ({share:.2%} of messages; dedup drops: "
                        f"{row['dedup_drops']:.0f})."
                    ),
                    numbers={**row, "duplicate_share": share, "rum_sample": data.rum_sample},
                    detector="delivery",
                )
            )
    gave_up = rum_counts(data, "ws.give_up")
    marked = with_baseline(gave_up)
    for e in episodes(marked, unusual(marked, ratio=3, z=4, min_count=3), gap=3):
        findings.append(
            Finding(
                kind="give_ups",
                start=e.start,
                end=e.end,
                variant=e.variant,
                severity=severity_from(e.observed / data.rum_sample, 10, 100),
                sentence=(
                    f"{e.observed:.0f} sampled clients on {e.variant} gave up reconnecting "
                    f"between {e.start:%H:%M} and {e.end:%H:%M} UTC (about "
                    f"{e.observed / data.rum_sample:.0f} users left to refresh by hand)."
                ),
                numbers={"give_ups": e.observed, "estimated_users": e.observed / data.rum_sample},
                detector="delivery",
            )
        )
    return findings, not_run
