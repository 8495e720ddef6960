"""One look at one canary: read what is new (and the late margin), judge the whole window.

A look reads through the one loader, as `wsanalysis judge --prometheus --sequential`
does: the server sums what the gates need (push-down) from the bucket the last look
ended in, less the late-arrival margin (`--late`), and those buckets replace the ones
kept (`bucket_stats`), so a sample that reaches the server up to `late` after its
timestamp is counted. The library's judge then runs with a `SequentialPlan` on the
whole window's statistics, with the server's warnings kept for the buckets they cover:
the answer is what the CLI says on the same window. A series gate's values (any PromQL
per step) are asked over the whole window at every look, as the CLI asks them. A GO or a NO_GO is final: later
looks return it unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.canary.coverage import check_input
from wsanalysis.canary.gates import GateFile, load_gate_file
from wsanalysis.canary.inputs import sequential_plan
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.canary.reads import judge_reads
from wsanalysis.canary.verdict import Verdict
from wsanalysis.errors import UsageError
from wsanalysis.frames.measures import Window
from wsanalysis.loading import DEFAULT_LATE, DataSource, SourceWarnings, load, read_start
from wsanalysis.service import bucket_stats
from wsanalysis.service.requests import Look
from wsanalysis.service.state import Canary, LookRecord, StateStore
from wsanalysis.sources.telemetry import load_telemetry
from wsanalysis.times import epoch_ms

FINAL = ("GO", "NO_GO")


@dataclass(frozen=True)
class Answer:
    """What a look returns: the JSON document, and how much was received for it."""

    document: dict[str, Any]
    fetched_rows: int
    cached: bool  # a final decision returned as stored

    @property
    def verdict(self) -> str:
        return self.document["verdict"]


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def kept_warnings(
    stored: list[dict[str, Any]], fresh: SourceWarnings, read_from_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """The warnings still in force: those of buckets this look did not re-read, and this
    look's own over what it read (a clean re-read lifts the old ones it covers)."""
    kept = [w for w in stored if not (w["from_ms"] >= read_from_ms and w["to_ms"] <= end_ms)]
    for family, texts in fresh.by_family.items():
        kept += [
            {"family": family, "text": t, "from_ms": read_from_ms, "to_ms": end_ms} for t in texts
        ]
    return kept


def in_force(stored: list[dict[str, Any]]) -> SourceWarnings:
    found: dict[str, list[str]] = {}
    for warning in stored:
        found.setdefault(warning["family"], []).append(warning["text"])
    return SourceWarnings.of(found)


class Judge:
    """Looks at canaries whose server series live in one Prometheus-compatible server."""

    def __init__(
        self,
        store: StateStore,
        prometheus: str,
        *,
        report_url: str | None = None,
        late: timedelta = DEFAULT_LATE,
        telemetry: str | Path | None = None,
    ) -> None:
        self.store = store
        self.prometheus = prometheus
        self.report_url = report_url
        self.late = late
        self.telemetry = load_telemetry(telemetry)  # the server's default mapping

    def look(self, look: Look) -> Answer:
        with self.store.lock(look.id):
            return self._look(look)

    def _look(self, look: Look) -> Answer:
        canary = self.store.get(look.id)
        settings = look.settings()
        if canary is None:
            start = look.start or look.end  # Flagger: the canary starts at its first look
            canary = self.store.create(look.id, settings, epoch_ms(start))
        if canary.settings != settings:
            changed = sorted(k for k in settings if settings[k] != canary.settings.get(k))
            raise UsageError(
                f"canary {look.id!r} was started with other {', '.join(changed)}",
                "keep a canary's settings from look to look, or give the new one a new id",
            )
        if look.start is not None and epoch_ms(look.start) != canary.start_ms:
            raise UsageError(
                f"canary {look.id!r} started at {_at(canary.start_ms).isoformat()}, "
                f"not {look.start.isoformat()}",
                "keep its start, or give the new canary a new id",
            )
        if canary.final is not None:
            document = {**canary.final, "looks": canary.looks + 1, "fetched_samples": 0,
                        "received_bytes": 0}  # fmt: skip
            return Answer(document, 0, cached=True)
        end_ms = max(epoch_ms(look.end), canary.start_ms)
        if canary.looked_ms is not None and end_ms < canary.looked_ms:
            raise UsageError(
                f"end {look.end.isoformat()} is before the last look "
                f"({_at(canary.looked_ms).isoformat()})",
                "looks move forward in time; send the current time or omit end",
            )
        gate_file = load_gate_file(look.gates)
        start, end = _at(canary.start_ms), _at(end_ms)
        if end <= start:  # nothing to read yet
            verdict = Verdict("INCONCLUSIVE", "The canary has just started: its window holds "
                              "no time yet.", (), look.profile, "wsanalysis",
                              {"window": {"start": start.isoformat(), "end": end.isoformat()}},
                              gate_file)  # fmt: skip
            return self._answer(canary, look, verdict, end_ms, end_ms, (0, 0), None, [])
        return self._judged(canary, look, gate_file, start, end)

    def _judged(
        self, canary: Canary, look: Look, gate_file: GateFile, start: datetime, end: datetime
    ) -> Answer:
        profile = gate_file.profile(look.profile)
        reads = judge_reads(profile)
        assert reads.pushdown is not None
        bucket = reads.pushdown.bucket
        source = DataSource.of(
            prometheus=self.prometheus, start=start, end=end, rum=look.rum,
            variant_label=look.variant_label, canary_selector=look.canary_selector,
            control_selector=look.control_selector,
            telemetry=look.telemetry or self.telemetry,  # the look's file, else the server's
        )  # fmt: skip
        if canary.looked_ms is not None:
            source = source.since(_at(canary.looked_ms), self.late)
        began = time.perf_counter()
        loaded = load(source, reads)
        read_seconds = time.perf_counter() - began  # the server's answers, mostly
        read_from = loaded.read_from or start
        first = bucket_stats.bucket_index(start, end, bucket, read_from)
        fresh = bucket_stats.increments(loaded.samples, start, end, bucket)
        statistics = bucket_stats.replaced(self.store.statistics(canary), fresh, first)
        warnings = kept_warnings(
            canary.warnings, loaded.warnings, epoch_ms(read_from), epoch_ms(end)
        )
        samples = bucket_stats.as_counters(statistics, start, end, bucket)
        data = JudgeInput(
            samples,
            loaded.beacons,
            Window(start, end),
            look.canary_share,
            sequential_plan(look.look, look.horizon),
            loaded.measures,
            in_force(warnings),
            loaded.inputs,
            loaded.series,  # series gates: their values over the whole window, every look
            check_input(profile, loaded, source.variants, samples),
        )
        # the buckets the next look reads again (its late margin) stay apart in the state
        settle_from = read_start(source.since(end, self.late), reads) or start
        settled_k = bucket_stats.bucket_index(start, end, bucket, settle_from)
        answer = self._answer(
            canary, look, judge(profile, data, gate_file=gate_file), epoch_ms(end),
            epoch_ms(read_from), (loaded.received_rows, loaded.received_bytes), statistics,
            warnings, settled_k,
        )  # fmt: skip
        answer.document["read_seconds"] = round(read_seconds, 3)
        return answer

    def _answer(
        self,
        canary: Canary,
        look: Look,
        verdict: Verdict,
        end_ms: int,
        read_from_ms: int,
        received: tuple[int, int],
        statistics: pl.DataFrame | None,
        warnings: list[dict[str, Any]],
        settled_k: int = 0,
    ) -> Answer:
        """The answer (the verdict's one JSON rendering, plus the look's own fields),
        stored with the look."""
        document = verdict.to_json()
        final = verdict.overall in FINAL
        elapsed = (end_ms - canary.start_ms) / 1000
        document |= {
            "id": look.id,
            "report": self.report_url.format(id=look.id) if self.report_url else None,
            "looks": canary.looks + 1,
            "elapsed_s": elapsed,
            "final": final,
            "fetched_samples": received[0],  # rows the server sent
            "received_bytes": received[1],
        }
        record = LookRecord(
            end_ms, read_from_ms, look.canary_share, received[0], verdict.overall, document, final
        )
        if statistics is None:  # nothing read yet
            statistics = pl.DataFrame(schema={bucket_stats.INDEX: pl.Int32})
        self.store.save(canary, statistics, settled_k, warnings, record)
        return Answer(document, received[0], cached=False)
