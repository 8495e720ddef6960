"""Time-to-first-byte degradation windows: per 15-minute bucket, the p95 of RUM `ws.ttfb`
against control in the same bucket (or, for a single variant, against its own median
bucket), joined into windows where it stays markedly worse."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from wsanalysis.frames.measures import bucket_of
from wsanalysis.incident.findings import Finding, NotRun
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.stats.quantiles import quantile_difference

BUCKET = timedelta(minutes=15)
RATIO = 1.25
MIN_DIFF_MS = 50.0
MIN_SAMPLES = 30


def p95_per_bucket(data: IncidentData) -> pl.DataFrame:
    """bucket, variant, p95_ms, n from RUM ws.ttfb beacons."""
    return (
        data.of_type("ws.ttfb")
        .filter(pl.col("ttfb_ms").is_not_null())
        .group_by(bucket_of("ts", data.window, BUCKET).alias("bucket"), "variant")
        .agg(pl.col("ttfb_ms").quantile(0.95).alias("p95_ms"), pl.len().alias("n"))
        .sort("variant", "bucket")
    )


def whole_window(data: IncidentData) -> Finding | None:
    """Canary p95 against control over the whole window (session-clustered bootstrap):
    a regression present all along shows here even when each bucket is too noisy."""
    t = data.of_type("ws.ttfb").filter(pl.col("ttfb_ms").is_not_null())
    a, b = t.filter(pl.col("variant") == "canary"), t.filter(pl.col("variant") == "control")
    if a.height < MIN_SAMPLES or b.height < MIN_SAMPLES:
        return None
    point = a["ttfb_ms"].quantile(0.95) - b["ttfb_ms"].quantile(0.95)
    if point < MIN_DIFF_MS:  # the interval's low end cannot clear what the estimate does not
        return None
    result = quantile_difference(
        a["ttfb_ms"].to_numpy(), a["session_id"].to_numpy(),
        b["ttfb_ms"].to_numpy(), b["session_id"].to_numpy(), q=0.95, n_resamples=400,
    )  # fmt: skip
    low = result.confidence_interval().low
    if not (result.sufficient and low >= MIN_DIFF_MS):
        return None
    return Finding(
        kind="ttfb_degradation",
        start=data.window.start,
        end=data.window.end,
        variant="canary",
        severity="high" if result.statistic >= 0.5 * result.control else "medium",
        sentence=(
            f"Canary assistant first-byte p95 is {result.canary:.0f} ms against "
            f"{result.control:.0f} ms on control over the whole window (+{result.statistic:.0f}"
            f" ms, 95% CI {low:.0f} to {result.confidence_interval().high:.0f})."
        ),
        numbers={"p95_ms": result.canary, "reference_p95_ms": result.control,
                 "difference_ms": result.statistic, "ci_low_ms": low,
                 "ci_high_ms": result.confidence_interval().high, "pvalue": result.pvalue},
        detector="ttfb",
    )  # fmt: skip


def detect(data: IncidentData) -> tuple[list[Finding], list[NotRun]]:
    if not data.has_rum or data.window is None:
        return [], [NotRun("ttfb", "needs RUM ws.ttfb beacons")]
    table = p95_per_bucket(data).filter(pl.col("n") >= MIN_SAMPLES)
    if table.is_empty():
        return [], [NotRun("ttfb", f"fewer than {MIN_SAMPLES} ws.ttfb beacons per bucket")]
    variants = table["variant"].unique().to_list()
    if {"canary", "control"} <= set(variants):
        ref = table.filter(pl.col("variant") == "control").select(
            "bucket", pl.col("p95_ms").alias("reference")
        )
        table = table.filter(pl.col("variant") != "control").join(ref, on="bucket")
        against = "control"
    else:
        table = table.with_columns(pl.col("p95_ms").median().over("variant").alias("reference"))
        against = "its usual level"
    worse = (pl.col("p95_ms") >= RATIO * pl.col("reference")) & (
        pl.col("p95_ms") - pl.col("reference") >= MIN_DIFF_MS
    )
    flagged = table.filter(worse).sort("variant", "bucket")
    total = table.group_by("variant").len()
    findings = []
    for variant in flagged["variant"].unique(maintain_order=True).to_list():
        rows = flagged.filter(pl.col("variant") == variant)
        runs: list[list[dict]] = []
        for row in rows.iter_rows(named=True):
            if runs and row["bucket"] - runs[-1][-1]["bucket"] <= BUCKET:
                runs[-1].append(row)
            else:
                runs.append([row])
        buckets = int(total.filter(pl.col("variant") == variant)["len"][0])
        for run in runs:
            p95 = sum(r["p95_ms"] for r in run) / len(run)
            ref = sum(r["reference"] for r in run) / len(run)
            hours = len(run) * BUCKET / timedelta(hours=1)
            severity = "low" if len(run) < 4 else ("high" if p95 >= 1.5 * ref else "medium")
            findings.append(
                Finding(
                    kind="ttfb_degradation",
                    start=run[0]["bucket"],
                    end=run[-1]["bucket"] + BUCKET,
                    variant=variant,
                    severity=severity,
                    sentence=(
                        f"Assistant first-byte time on {variant} was worse than {against} for "
                        f"{hours:.2g} h: p95 {p95:.0f} ms against {ref:.0f} ms."
                    ),
                    numbers={"p95_ms": p95, "reference_p95_ms": ref, "buckets": len(run),
                             "buckets_total": buckets},
                    detector="ttfb",
                )
            )  # fmt: skip
    overall = whole_window(data) if against == "control" else None
    return findings + ([overall] if overall else []), []
