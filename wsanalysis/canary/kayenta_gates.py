"""The gate file judged the way Kayenta would: `--judge kayenta`, to compare and migrate.

Kayenta sees each metric as one value per time step for canary and control and runs
its Mann–Whitney classifier on those values. So each gate becomes a per-bucket series:
a rate per bucket (events / exposure), a quantile of the bucket's RUM samples, or the
mean lifetime of the connections that closed in the bucket (Kayenta has no notion of
censoring). The score maps to the verdict: Pass → GO, Marginal → INCONCLUSIVE,
Fail → NO_GO; the thresholds are NetflixACAJudge's own defaults.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import polars as pl

from wsanalysis.canary.gates import Gate, Profile
from wsanalysis.canary.judge import CANARY, CONTROL, JudgeInput
from wsanalysis.canary.partial import dropped_lines_sentence
from wsanalysis.canary.reads import gate_metric_names
from wsanalysis.canary.verdict import Overall, Verdict
from wsanalysis.frames import measures
from wsanalysis.frames.measures import Window
from wsanalysis.stats.kayenta import KayentaJudgeResult, KayentaMetric, kayenta_judge

KAYENTA_STEP = timedelta(minutes=5)
VERDICTS: dict[str, Overall] = {"Pass": "GO", "Marginal": "INCONCLUSIVE", "Fail": "NO_GO"}


def _per_bucket(
    frame: pl.DataFrame, value: pl.Expr, window: Window, time: str
) -> dict[str, list[float]]:
    bucketed = frame.with_columns(measures.bucket_of(time, window, KAYENTA_STEP).alias("bucket"))
    per = bucketed.group_by("variant", "bucket").agg(value.alias("value")).sort("bucket")
    return {v: per.filter(pl.col("variant") == v)["value"].to_list() for v in (CANARY, CONTROL)}


def gate_series(gate: Gate, data: JudgeInput, window: Window) -> dict[str, list[float]] | None:
    """Canary and control values per time step for one gate (None without data)."""
    if gate.statistic in ("rate", "share", "spike"):
        counts = measures.counts(
            gate.events, gate.exposure, data.samples, data.beacons, window,
            gate.bucket or KAYENTA_STEP, gate.prefer,
        )  # fmt: skip
        if counts is None:
            return None
        ratio = pl.when(pl.col("exposure") > 0).then(pl.col("events") / pl.col("exposure"))
        frame = counts.frame.with_columns(ratio.otherwise(None).alias("value"))
        return {
            v: counts.variant(v).join(frame, on=["bucket", "variant"])["value"].to_list()
            for v in (CANARY, CONTROL)
        }
    if gate.statistic == "quantile" and gate.samples.rum is not None:
        samples = measures.rum_samples(gate.samples.rum, data.beacons)
        if samples is None:
            return None
        return _per_bucket(samples.frame, pl.col("value").quantile(gate.quantile), window, "ts")
    if (
        gate.statistic == "survival_quantile"
        and gate.samples.rum is not None
        and data.beacons is not None
    ):
        closes = data.beacons.filter(pl.col("type") == gate.samples.rum.type)
        column = gate.samples.rum.column
        value = (pl.col(column).cast(pl.Float64) * gate.samples.rum.scale).mean()
        return _per_bucket(closes, value, window, "ts") if closes.height else None
    return None


def kayenta_verdict(
    profile: Profile, data: JudgeInput
) -> tuple[Overall, KayentaJudgeResult | None, list[str]]:
    """Kayenta's verdict on the profile's gates, its full result, and skipped gates."""
    window = data.resolved_window()
    metrics, skipped = [], []
    for gate in profile.gates:
        series = gate_series(gate, data, window) if window is not None else None
        if series is None or not series[CANARY] or not series[CONTROL]:
            skipped.append(gate.name)
            continue
        metrics.append(
            KayentaMetric(
                name=gate.name,
                experiment=[float("nan") if v is None else v for v in series[CANARY]],
                control=[float("nan") if v is None else v for v in series[CONTROL]],
                direction=gate.worse,
                critical=gate.critical,
                must_have_data=True,
            )
        )
    if not metrics:
        return "INCONCLUSIVE", None, skipped
    result = kayenta_judge(metrics)
    overall = VERDICTS.get(result.classification, "INCONCLUSIVE")
    # a score on server series that came with warnings (a partial answer, lines dropped
    # from a file read leniently) is no GO: Kayenta itself never sees the warnings
    if overall == "GO" and data.warnings.about(gate_metric_names(profile)):
        overall = "INCONCLUSIVE"
    return overall, result, skipped


def kayenta_judged(profile: Profile, data: JudgeInput, native: Verdict) -> Verdict:
    """The native verdict with Kayenta's decision in its place (`--judge kayenta`): the
    gates' own evidence stays for reading, the score and its metrics ride in `kayenta`."""
    overall, result, skipped = kayenta_verdict(profile, data)
    reason = (
        f"Kayenta score {result.score:.0f} ({result.classification})"
        if result is not None
        else "Kayenta had no metric with data"
    )
    dropped = dropped_lines_sentence(data.inputs)
    found: dict[str, Any] = {"score": None, "skipped": skipped}
    if result is not None:
        found = {
            "score": result.score,
            "classification": result.classification,
            "reason": result.reason,
            "metrics": {m.name: m.classification.label for m in result.metrics},
            "skipped": skipped,
        }
    return replace(
        native,
        overall=overall,
        reason=f"{reason} {dropped}" if dropped else reason,
        judge="kayenta",
        metadata={**native.metadata, "kayenta": found},
    )
