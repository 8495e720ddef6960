"""The release history: every result document under a folder, one row per run, and trends.

A run is one `verdict.json` (a canary: the `judge` command, a canary report, a final
answer of `judge-server`) or one `findings.json` (an incident: the `incident` command,
an incident report), found at any depth. Each is read through its `about` block
(`wsanalysis.run_metadata`: service, release, environment, window, finish time) and, for
documents written before that block existed, the fields every producer writes (`window`,
`run.created`, `created`; the file's modification time last, and said so). A file that
cannot be read, is not JSON, or is JSON of another shape becomes an `Unreadable` with the
reason: listed on the page, never fatal. The trends are polars frames over the rows, one
function each, so a test reaches every number a chart draws.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.run_metadata import FIELDS, KEY
from wsanalysis.times import as_utc

CANARY_FILE = "verdict.json"
INCIDENT_FILE = "findings.json"
RESULT_FILES = (CANARY_FILE, INCIDENT_FILE)
REPORT_FILE = "report.html"
VERDICTS = ("GO", "NO_GO", "INCONCLUSIVE")
FAILED = "FAILED"  # a report whose run failed: verdict null, never a GO
OPEN_DECISIONS = ("inconclusive", "no_data")
PROGRESS_FROM = 200  # files; fewer read in well under a second


class NotARun(ValueError):
    """A result file that cannot be read as one of our documents (the reason inside)."""


@dataclass(frozen=True)
class Episode:
    """One incident episode as the index shows it."""

    severity: str
    scope: str  # canary / control (one variant hit beyond the other) or fleet
    kinds: tuple[str, ...]
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class Run:
    """One run: who and what it was about, and what it decided or found."""

    path: Path  # the result file
    kind: str  # canary | incident
    producer: str | None  # judge, report, judge-server, incident (None: not recorded)
    service: str | None
    release: str | None
    environment: str | None
    finished: datetime
    finished_recorded: bool  # False: the file's modification time stands in
    reason: str
    window_s: float | None
    report: Path | None  # report.html beside the result file
    verdict: str | None = None  # canary: GO / NO_GO / INCONCLUSIVE / FAILED; incident: FAILED
    decided_s: float | None = None  # GO / NO_GO: from the window's start to the decision
    decided_at: str = ""  # "look 72 of 576", "end of the window"
    settle_in_s: float | None = None  # INCONCLUSIVE: how much longer would settle it
    failed_gates: tuple[str, ...] = ()
    open_gates: tuple[str, ...] = ()
    episodes: tuple[Episode, ...] = ()

    @property
    def outcome(self) -> str:
        """What the filters and the verdict column say: the verdict, or `incident`."""
        if self.verdict == FAILED or self.kind == "canary":
            return self.verdict or FAILED
        return "incident"


@dataclass(frozen=True)
class Unreadable:
    """A result file the index could not read as a run, and why."""

    path: Path
    problem: str


@dataclass(frozen=True)
class History:
    """Every run under `root`, newest first, and the files that were not runs."""

    root: Path
    runs: list[Run]
    unreadable: list[Unreadable]

    def summary(self) -> str:
        """One line for the command's output."""
        canaries = [r for r in self.runs if r.kind == "canary"]
        counts = ", ".join(
            f"{sum(r.verdict == v for r in canaries)} {v}"
            for v in (*VERDICTS, FAILED)
            if any(r.verdict == v for r in canaries)
        )
        incidents = sum(r.kind == "incident" for r in self.runs)
        line = counted(len(canaries), "canary run") + (f" ({counts})" if counts else "")
        line += f", {counted(incidents, 'incident run')}"
        if self.unreadable:
            line += f"; {len(self.unreadable)} files are not reports (listed on the page)"
        if not self.runs and not self.unreadable:
            line += f": no {CANARY_FILE} or {INCIDENT_FILE} under {self.root}"
        return line


def counted(n: int, thing: str) -> str:
    """`1 canary run`, `2 canary runs`."""
    return f"{n} {thing}{'' if n == 1 else 's'}"


def result_files(root: Path) -> Iterator[Path]:
    """Every verdict.json and findings.json under `root`, any depth (symbolic links to
    folders are not followed, so a link cannot loop)."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name in RESULT_FILES:
                yield Path(folder) / name


def read_history(root: Path) -> History:
    """Every run under `root` (see `result_files`), newest first; never raises for a
    file: what cannot be read is listed in `unreadable`. A bar on a terminal when the
    folder holds many files."""
    from tqdm import tqdm

    paths = list(result_files(root))
    runs: list[Run] = []
    unreadable: list[Unreadable] = []
    bar = tqdm(paths, desc="reading reports", unit="file", file=sys.stderr,
               disable=True if len(paths) < PROGRESS_FROM else None)  # fmt: skip
    for path in bar:
        try:
            runs.append(read_run(path))
        except NotARun as error:
            unreadable.append(Unreadable(path, str(error)))
    runs.sort(key=lambda r: (r.finished, str(r.path)), reverse=True)
    return History(root, runs, unreadable)


def read_run(path: Path) -> Run:
    """One result file as a run; `NotARun` says why it is not one."""
    try:
        text = path.read_bytes()
    except OSError as error:
        raise NotARun(f"cannot be read: {error.strerror or error}") from None
    try:
        document = json.loads(text)
    except UnicodeDecodeError:
        raise NotARun("broken: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise NotARun(f"broken: not JSON ({error.msg}, line {error.lineno})") from None
    except RecursionError:
        raise NotARun("broken: JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise NotARun(f"foreign: a JSON {type(document).__name__}, not a wsanalysis result")
    try:
        return _run(path, document)
    except NotARun:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise NotARun(f"foreign: unexpected shape ({type(error).__name__}: {error})") from None
    except OSError as error:  # gone while being read (its time, its report beside it)
        raise NotARun(f"cannot be read: {error.strerror or error}") from None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _moment(value: Any) -> datetime | None:
    if value in (None, "") or isinstance(value, bool | dict | list):
        return None
    try:
        return as_utc(value)
    except (ValueError, TypeError, OverflowError):
        return None


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _kind(path: Path, about: dict[str, Any]) -> str:
    kind = about.get("kind")
    if kind in ("canary", "incident"):
        return kind
    return "incident" if path.name == INCIDENT_FILE else "canary"


def _finished(path: Path, document: dict[str, Any], about: dict[str, Any]) -> tuple[datetime, bool]:
    run = document.get("run") if isinstance(document.get("run"), dict) else {}
    for value in (
        about.get("finished"),
        run.get("finished"),
        run.get("created"),
        document.get("created"),
    ):
        moment = _moment(value)
        if moment is not None:
            return moment, True
    return datetime.fromtimestamp(path.stat().st_mtime, UTC), False


def _window_s(document: dict[str, Any], about: dict[str, Any]) -> float | None:
    if _seconds(about.get("window_s")) is not None:
        return _seconds(about["window_s"])
    window = about.get("window") or document.get("window")
    if not isinstance(window, dict):
        return None
    start, end = _moment(window.get("start")), _moment(window.get("end"))
    return (end - start).total_seconds() if start and end and end >= start else None


def _run(path: Path, document: dict[str, Any]) -> Run:
    about = document.get(KEY) if isinstance(document.get(KEY), dict) else {}
    kind = _kind(path, about)
    if kind == "canary" and "verdict" not in document:
        raise NotARun("foreign: no 'verdict' field, so not a wsanalysis verdict")
    failed = "verdict" in document and document["verdict"] is None
    if failed and "failure" not in document:
        raise NotARun("foreign: 'verdict' is null and no 'failure' says why")
    finished, recorded = _finished(path, document, about)
    window_s = _window_s(document, about)
    outcome: dict[str, Any] = {"verdict": FAILED} if failed else {}
    if kind == "canary" and not failed:
        outcome = _canary_outcome(document, window_s)
    elif kind == "incident" and not failed:
        outcome = {"episodes": _episodes(document)}
    report = path.with_name(REPORT_FILE)
    return Run(
        path=path,
        kind=kind,
        producer=_text(about.get("producer")),
        **{name: _text(about.get(name)) for name in FIELDS},
        finished=finished,
        finished_recorded=recorded,
        reason=_text(document.get("reason")) or "",
        window_s=window_s,
        report=report if report.is_file() else None,
        **outcome,
    )


def _canary_outcome(document: dict[str, Any], window_s: float | None) -> dict[str, Any]:
    """A verdict's fields of the row: the verdict, its gates, the time to decision."""
    verdict = document["verdict"]
    if verdict not in VERDICTS:
        raise NotARun(f"foreign: verdict {verdict!r} is not GO, NO_GO or INCONCLUSIVE")
    gates = document.get("gates")
    if not isinstance(gates, list):
        raise NotARun("foreign: no 'gates' list beside the verdict")
    decided_s, decided_at = _decision(document, verdict, window_s)
    open_gates = [str(g["name"]) for g in gates if g["decision"] in OPEN_DECISIONS]
    return {
        "verdict": verdict,
        "failed_gates": tuple(str(g["name"]) for g in gates if g["decision"] == "fail"),
        "open_gates": () if verdict == "GO" else tuple(open_gates),
        "decided_s": decided_s,
        "decided_at": decided_at,
        "settle_in_s": (
            _seconds(document.get("settle_in_s")) if verdict == "INCONCLUSIVE" else None
        ),
    }


def _episodes(document: dict[str, Any]) -> tuple[Episode, ...]:
    found = document.get("episodes")
    if not isinstance(found, list):
        raise NotARun("foreign: no 'episodes' list in an incident result")
    return tuple(_episode(e) for e in found)


def _decision(
    document: dict[str, Any], verdict: str, window_s: float | None
) -> tuple[float | None, str]:
    """Time to decision: the sequential look that decided (looks count from the window's
    start, one every `look_minutes`), else the whole window (a fixed-horizon verdict is
    taken at its end)."""
    if verdict not in ("GO", "NO_GO"):
        return None, ""
    plan = document.get("sequential")
    if isinstance(plan, dict):
        index = plan.get("go_at_look" if verdict == "GO" else "no_go_at_look")
        minutes = _seconds(plan.get("look_minutes"))
        if isinstance(index, int) and not isinstance(index, bool) and minutes:
            planned = plan.get("planned_looks")
            of = f" of {planned}" if isinstance(planned, int) else ""
            return (index + 1) * minutes * 60, f"look {index + 1}{of}"
    return window_s, "end of the window" if window_s is not None else ""


def _episode(item: dict[str, Any]) -> Episode:
    kinds = item.get("kinds") or []
    return Episode(
        severity=_text(item.get("severity")) or "?",
        scope=_text(item.get("scope")) or "?",
        kinds=tuple(str(k) for k in kinds) if isinstance(kinds, list) else (),
        start=_moment(item.get("start")),
        end=_moment(item.get("end")),
    )


# -- trends: polars frames over the runs -------------------------------------------------------

RUNS_SCHEMA = {
    "finished": pl.Datetime("us", "UTC"),
    "kind": pl.Utf8,
    "outcome": pl.Utf8,
    "service": pl.Utf8,
    "environment": pl.Utf8,
    "decided_h": pl.Float64,
    "failed_gates": pl.List(pl.Utf8),
    "open_gates": pl.List(pl.Utf8),
    "scopes": pl.List(pl.Utf8),
}


def runs_frame(runs: Iterable[Run]) -> pl.DataFrame:
    """One row per run, with `week` (the Monday, UTC, of its finish time)."""
    rows = [
        {
            "finished": r.finished,
            "kind": r.kind,
            "outcome": r.outcome,
            "service": r.service,
            "environment": r.environment,
            "decided_h": None if r.decided_s is None else r.decided_s / 3600,
            "failed_gates": list(r.failed_gates),
            "open_gates": list(r.open_gates),
            "scopes": [e.scope for e in r.episodes],
        }
        for r in runs
    ]
    frame = pl.DataFrame(rows, schema=RUNS_SCHEMA)
    return frame.with_columns(week=pl.col("finished").dt.truncate("1w").dt.date())


def verdicts_per_week(frame: pl.DataFrame) -> pl.DataFrame:
    """Canary runs per week and outcome (GO, NO_GO, INCONCLUSIVE, FAILED)."""
    return (
        frame.filter(pl.col("kind") == "canary")
        .group_by("week", "outcome")
        .agg(runs=pl.len())
        .sort("week", "outcome")
    )


def decision_times_per_week(frame: pl.DataFrame) -> pl.DataFrame:
    """Time to decision (hours) of the decided canaries (GO, NO_GO): median and p90 per week."""
    return (
        frame.filter(pl.col("kind") == "canary", pl.col("decided_h").is_not_null())
        .group_by("week")
        .agg(
            runs=pl.len(),
            median_h=pl.col("decided_h").median(),
            p90_h=pl.col("decided_h").quantile(0.9, interpolation="linear"),
        )
        .sort("week")
    )


def blocking_gates(frame: pl.DataFrame, top: int = 10) -> pl.DataFrame:
    """The gates that kept releases back most often: failed (NO_GO) or left open
    (INCONCLUSIVE), counted over canary runs, most first."""
    canaries = frame.filter(pl.col("kind") == "canary")
    failed = canaries.select(gate=pl.col("failed_gates")).explode("gate").drop_nulls()
    open_ = canaries.select(gate=pl.col("open_gates")).explode("gate").drop_nulls()
    counts = (
        pl.concat(
            [failed.with_columns(how=pl.lit("failed")), open_.with_columns(how=pl.lit("open"))]
        )
        .group_by("gate")
        .agg(
            failed=(pl.col("how") == "failed").sum().cast(pl.Int64),
            open=(pl.col("how") == "open").sum().cast(pl.Int64),
        )
        .with_columns(total=pl.col("failed") + pl.col("open"))
    )
    return counts.sort(["total", "failed", "gate"], descending=[True, True, False]).head(top)


def incidents_per_week(frame: pl.DataFrame) -> pl.DataFrame:
    """Incident episodes per week and scope (canary: the release; fleet: everyone)."""
    return (
        frame.filter(pl.col("kind") == "incident")
        .select("week", scope=pl.col("scopes"))
        .explode("scope")
        .drop_nulls()
        .group_by("week", "scope")
        .agg(episodes=pl.len())
        .sort("week", "scope")
    )
