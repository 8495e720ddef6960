"""Delivery problems the user sees: duplicate messages shown, dedup and stale-socket
drops (the client saving the day), and clients that gave up reconnecting — the proxy for
"the user refreshed the page by hand". All from RUM beacons."""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from wsanalysis.incident.close_codes import MIN_EXCESS, finding
from wsanalysis.incident.findings import Finding, NotRun, severity_from
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.scan import elevations
from wsanalysis.incident.signals import SIGNALS, exposure, rum_signal, rum_variants
from wsanalysis.sources.schema import DEDUP_DROP, GIVE_UP, MESSAGE, STALE_DROP


@dataclass(frozen=True)
class DeliveryCounts:
    """Per variant, in the sampled beacons: messages, duplicates delivered, drops, give-ups."""

    frame: pl.DataFrame  # variant, messages, duplicates, dedup_drops, stale_drops, give_ups


#: The beacon types counted per variant, and their column.
COUNTED = {MESSAGE: "messages", DEDUP_DROP: "dedup_drops",
           STALE_DROP: "stale_drops", GIVE_UP: "give_ups"}  # fmt: skip


def delivery_counts(data: IncidentData) -> DeliveryCounts:
    """A message delivered twice is a second `ws.message` with the same session and trace.
    Counted on the beacons split by type (every variant of the beacons gets a row)."""
    frame = pl.DataFrame({"variant": rum_variants(data)})
    for beacon_type, name in COUNTED.items():
        counted = (
            data.of_type(beacon_type).group_by("variant").agg(pl.len().cast(pl.Float64).alias(name))
        )
        frame = frame.join(counted, on="variant", how="left")
    duplicates = (
        data.of_type(MESSAGE)
        .filter(pl.col("trace").is_not_null())
        .group_by("variant", "session_id", "trace")
        .agg((pl.len() - 1).alias("extra"))
        .group_by("variant")
        .agg(pl.col("extra").sum().cast(pl.Float64).alias("duplicates"))
    )
    frame = frame.join(duplicates, on="variant", how="left").with_columns(
        pl.exclude("variant").fill_null(0.0)
    )
    return DeliveryCounts(frame.sort("variant"))


def detect(data: IncidentData) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_rum or data.window is None:
        return [], [NotRun("delivery", "duplicates, drops and give-ups are seen only in RUM")]
    findings: list[Finding] = []
    not_run: list[NotRun] = []
    counts = delivery_counts(data)
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
    gave_up = rum_signal(data, SIGNALS["give_ups"])
    for e in elevations(gave_up, exposure(data, "rum"), min_excess=MIN_EXCESS["rum"]):
        f = finding(data, SIGNALS["give_ups"], e, "rum", "give_ups", "delivery")
        if f is None:
            continue
        users = e.observed / data.rum_sample
        f.numbers.update({"give_ups": e.observed, "estimated_users": users})
        findings.append(
            replace(f, sentence=(
                f"{e.observed:.0f} sampled clients on {e.variant} gave up reconnecting "
                f"between {e.start:%H:%M} and {e.end:%H:%M} UTC where about "
                f"{e.expected:.0f} are usual (about {users:.0f} users left to refresh by "
                f"hand)."
            ))
        )  # fmt: skip
    return findings, not_run
