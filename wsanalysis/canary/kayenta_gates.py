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

from wsanalysis.canary.coverage import NOTES
from wsanalysis.canary.gates import Gate, Profile
from wsanalysis.canary.judge import CANARY, CONTROL, JudgeInput
from wsanalysis.canary.kinds import kind_of
from wsanalysis.canary.partial import dropped_lines_sentence
from wsanalysis.canary.reads import gate_metric_names
from wsanalysis.canary.verdict import Overall, Verdict
from wsanalysis.frames.measures import Window
from wsanalysis.stats.kayenta import KayentaJudgeResult, KayentaMetric, kayenta_judge

KAYENTA_STEP = timedelta(minutes=5)
VERDICTS: dict[str, Overall] = {"Pass": "GO", "Marginal": "INCONCLUSIVE", "Fail": "NO_GO"}


def gate_series(gate: Gate, data: JudgeInput, window: Window) -> dict[str, list[float]] | None:
    """Canary and control values per time step for one gate (None without data)."""
    return kind_of(gate).per_step(gate, data, window, KAYENTA_STEP)


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
        # the notes about the inputs stay said, as the native judge says them
        reason=" ".join([reason, *([dropped] if dropped else []), *native.metadata.get(NOTES, [])]),
        judge="kayenta",
        metadata={**native.metadata, "kayenta": found},
    )
