"""One look at one canary: fetch what is new, re-judge the whole window in sequential mode.

The judge is the library's (`canary.judge.judge` with a `SequentialPlan`), run on every
sample fetched since the canary started: only the fetch is incremental, so the verdict
is exactly what `wsanalysis judge --sequential` would say on the same window. A GO or a
NO_GO is final: later looks return it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.canary.gates import load_gate_file, parse_duration
from wsanalysis.canary.inputs import gate_metric_names
from wsanalysis.canary.judge import JudgeInput, SequentialPlan, judge
from wsanalysis.errors import UsageError
from wsanalysis.frames.measures import Window
from wsanalysis.frames.selection import variant_mapping
from wsanalysis.service.reports import write_final_answer
from wsanalysis.service.requests import Look
from wsanalysis.service.state import StateStore
from wsanalysis.sources.prometheus import PrometheusSource
from wsanalysis.sources.rum import read_rum
from wsanalysis.sources.schema import SAMPLES_FIXED, empty_samples

FINAL = ("GO", "NO_GO")


@dataclass(frozen=True)
class Answer:
    """What a look returns: the JSON document, and how much was fetched for it."""

    document: dict[str, Any]
    fetched_rows: int
    cached: bool  # a final decision returned as stored

    @property
    def verdict(self) -> str:
        return self.document["verdict"]


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _number(value: Any) -> float | str | None:
    """A JSON number; NaN is null and infinities are "inf" / "-inf", as in verdict.json."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def gate_json(result: Any) -> dict[str, Any]:
    """One gate as the service reports it (the fields an Argo condition may read)."""
    evidence = result.evidence
    return {
        "name": result.name,
        "decision": result.decision,
        "estimate": _number(evidence.effect),
        "interval": [_number(evidence.ci_low), _number(evidence.ci_high)],
        "sentence": result.sentence,
        "settle_in_s": _number(getattr(result, "settle_in_s", None)),
    }


def _appended(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The samples so far plus the new ones, columns in the contract's order.

    Not re-sorted: every use of a series orders it by time itself (`increase()` runs
    `over(..., order_by="timestamp")`), and sorting a 48 h frame on each look would cost
    more than judging it.
    """
    frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal_relaxed")
    labels = sorted(c for c in frame.columns if c not in SAMPLES_FIXED)
    return frame.select(*SAMPLES_FIXED, *labels)


class Judge:
    """Looks at canaries whose server series live in one Prometheus."""

    def __init__(
        self,
        store: StateStore,
        prometheus: str,
        *,
        report_url: str | None = None,
        reports: Path | None = None,
    ) -> None:
        self.store = store
        self.prometheus = prometheus
        self.report_url = report_url
        self.reports = reports  # --reports: each final answer is written there

    def look(self, look: Look) -> Answer:
        with self.store.lock(look.id):
            return self._look(look)

    def _look(self, look: Look) -> Answer:
        canary = self.store.get(look.id)
        settings = look.settings()
        if canary is None:
            start = look.start or look.end  # Flagger: the canary starts at its first look
            canary = self.store.create(look.id, settings, _ms(start))
        if canary.settings != settings:
            changed = sorted(k for k in settings if settings[k] != canary.settings.get(k))
            raise UsageError(
                f"canary {look.id!r} was started with other {', '.join(changed)}",
                "keep a canary's settings from look to look, or give the new one a new id",
            )
        if look.start is not None and _ms(look.start) != canary.start_ms:
            raise UsageError(
                f"canary {look.id!r} started at {_at(canary.start_ms).isoformat()}, "
                f"not {look.start.isoformat()}",
                "keep its start, or give the new canary a new id",
            )
        if canary.final is not None:
            document = {**canary.final, "looks": canary.looks + 1, "fetched_samples": 0}
            return Answer(document, 0, cached=True)
        end_ms = max(_ms(look.end), canary.start_ms)
        if canary.fetched_ms is not None and end_ms < canary.fetched_ms:
            raise UsageError(
                f"end {look.end.isoformat()} is before the last look "
                f"({_at(canary.fetched_ms).isoformat()})",
                "looks move forward in time; send the current time or omit end",
            )

        profile = load_gate_file(look.gates).profile(look.profile)
        variants = variant_mapping(look.variant_label, look.canary_selector, look.control_selector)
        before = self.store.samples(canary) if canary.fetched_ms is not None else None
        lower_ms = canary.start_ms if canary.fetched_ms is None else canary.fetched_ms + 1
        new = empty_samples()
        if end_ms >= lower_ms:
            selector = '{__name__=~"' + "|".join(gate_metric_names(profile)) + '"}'
            with PrometheusSource(self.prometheus) as server:
                new = server.read_samples(selector, _at(lower_ms), _at(end_ms), variants=variants)
        parts = [f for f in (before, new) if f is not None and not f.is_empty()]
        samples = _appended(parts) if parts else new
        start, end = _at(canary.start_ms), _at(end_ms)
        beacons = None
        if look.rum:
            beacons = read_rum(look.rum, start=start, end=end).frame
            if variants.label != "variant" and variants.label in beacons.columns:
                beacons = beacons.with_columns(pl.col(variants.label).alias("variant"))
        plan = SequentialPlan(parse_duration(look.look), parse_duration(look.horizon))
        window = Window(start, end) if end > start else None
        data = JudgeInput(
            samples,
            beacons,
            window,
            look.canary_share,
            {"inputs": {"prometheus": self.prometheus, "selectors": variants.selectors or None}},
            plan,
        )
        verdict = None if window is None else judge(profile, data)
        document = self._document(look.id, verdict, canary.looks + 1, start, end)
        final = document["verdict"] in FINAL
        document["final"] = final
        document["fetched_samples"] = new.height
        if final and self.reports is not None:  # before it is stored: a failed write retries
            write_final_answer(self.reports, look, document, verdict.to_json())
        self.store.append(canary, new, end_ms, document, final, samples if parts else None)
        return Answer(document, new.height, cached=False)

    def _document(
        self, canary_id: str, verdict: Any, looks: int, start: datetime, end: datetime
    ) -> dict[str, Any]:
        report = self.report_url.format(id=canary_id) if self.report_url else None
        window = {"start": start.isoformat(), "end": end.isoformat()}
        if verdict is None:
            return {
                "id": canary_id,
                "verdict": "INCONCLUSIVE",
                "reason": "The canary has just started: its window holds no time yet.",
                "settle_in_s": None,
                "gates": [],
                "report": report,
                "window": window,
                "looks": looks,
                "elapsed_s": 0.0,
            }
        return {
            "id": canary_id,
            "verdict": verdict.overall,
            "reason": verdict.reason,
            "settle_in_s": _number(getattr(verdict, "settle_in_s", None)),
            "gates": [gate_json(g) for g in verdict.gates],
            "report": report,
            "window": window,
            "looks": looks,
            "elapsed_s": (end - start) / timedelta(seconds=1),
        }
