"""What the incident notebook computes, as functions a test can reach.

The notebook stays narrative and plots: it calls `investigate` (the same loading and the
same detectors as `wsanalysis incident`), writes `findings.json` with `write_findings`
(the command's document, plus the banner's `verdict` and `reason` the page draws and a
count per severity), and shows `finding_rows`, `evidence_rows` and `not_run_rows`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.errors import DataError
from wsanalysis.incident.analyze import Analysis, incident
from wsanalysis.incident.episodes import Episode, rank
from wsanalysis.incident.findings import SEVERITY_ORDER, Finding, dumps
from wsanalysis.incident.inputs import IncidentData

FINDINGS_FILE = "findings.json"
NO_FINDINGS = "NO FINDINGS"


@dataclass(frozen=True)
class IncidentReport:
    """The analysis, the data it ran on, and findings.json's document."""

    analysis: Analysis
    data: IncidentData
    document: dict[str, Any]

    @property
    def findings(self) -> list[Finding]:
        return self.analysis.findings

    @property
    def episodes(self) -> list[Episode]:
        return self.analysis.episodes


def worst(findings: list[Finding]) -> Finding | None:
    """The most severe finding; among equals the earliest, then the longest."""
    if not findings:
        return None
    return min(
        findings,
        key=lambda f: (-SEVERITY_ORDER[f.severity], f.start, -(f.end - f.start).total_seconds()),
    )


def severity_counts(items: list[Finding] | list[Episode]) -> dict[str, int]:
    """Findings (or episodes) per severity, high first (every level present, zeros included)."""
    counts = {level: 0 for level in sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.get, reverse=True)}
    for item in items:
        counts[item.severity] += 1
    return counts


def headline(episodes: list[Episode]) -> tuple[str, str]:
    """The banner: its word (how many episodes) and its sentence (by severity, then the
    first-ranked episode: a canary-only one before a fleet-wide one of the same severity)."""
    if not episodes:
        return NO_FINDINGS, "No detector found an incident in this window."
    n_findings = sum(len(e.findings) for e in episodes)
    word = f"{len(episodes)} EPISODE{'S' if len(episodes) > 1 else ''}"
    tally = ", ".join(f"{n} {level}" for level, n in severity_counts(episodes).items())
    top = rank(episodes)[0]
    plural = "s" if n_findings > 1 else ""
    return word, (
        f"{tally} ({n_findings} finding{plural}). First ({top.severity}, {top.scope}): "
        f"{top.sentence}"
    )


def report_of(analysis: Analysis) -> IncidentReport:
    """findings.json's document for an analysis (`wsanalysis.incident(...)`): the
    command's document plus the banner word and sentence and the severity counts."""
    data = analysis.data
    if data is None or data.window is None:
        source = (data.origin if data is not None else {}) or {}
        raise DataError(
            f"no server samples and no RUM beacons in {source.get('data') or source.get('prometheus')}",
            "check parameters data/prometheus, start and end: the window must hold data",
        )
    document = json.loads(
        dumps(analysis.findings, analysis.not_run, data.metadata(), analysis.episodes)
    )
    word, reason = headline(analysis.episodes)
    document["verdict"] = word
    document["reason"] = reason
    document["severity_counts"] = severity_counts(analysis.findings)
    counts = document["severity_counts"]
    document["banner_class"] = (
        "nogo" if counts.get("high") else "inconclusive" if sum(counts.values()) else "go"
    )
    document["exit_code"] = 0
    return IncidentReport(analysis, data, document)


def investigate(**inputs: Any) -> IncidentReport:
    """`wsanalysis.incident(**inputs)` (read, run every detector) and its document."""
    return report_of(incident(**inputs))


def write_findings(report: IncidentReport, output_dir: str | Path) -> Path:
    """`findings.json` in `output_dir` (the executor adds the run's metadata after)."""
    path = Path(output_dir) / FINDINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.document, indent=2, default=str) + "\n")
    return path


def _clock(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def finding_rows(findings: list[Finding]) -> pl.DataFrame:
    """The manager's findings table, most severe first, then in time order."""
    ordered = sorted(findings, key=lambda f: (-SEVERITY_ORDER[f.severity], f.start, f.kind))
    rows = [
        {
            "severity": f.severity,
            "kind": f.kind,
            "variant": f.variant,
            "start": _clock(f.start),
            "end": _clock(f.end),
            "minutes": f"{(f.end - f.start).total_seconds() / 60:g}",
            "sentence": f.sentence,
        }
        for f in ordered
    ]
    schema = ["severity", "kind", "variant", "start", "end", "minutes", "sentence"]
    return pl.DataFrame(rows, schema={c: pl.Utf8 for c in schema})


def episode_rows(episodes: list[Episode]) -> pl.DataFrame:
    """The episodes table, ranked (most severe first; canary-only first among equals)."""
    rows = [
        {
            "severity": e.severity,
            "scope": e.scope,
            "start": _clock(e.start),
            "end": _clock(e.end),
            "minutes": f"{(e.end - e.start).total_seconds() / 60:g}",
            "findings": str(len(e.findings)),
            "sentence": e.sentence,
        }
        for e in rank(episodes)
    ]
    schema = ["severity", "scope", "start", "end", "minutes", "findings", "sentence"]
    return pl.DataFrame(rows, schema={c: pl.Utf8 for c in schema})


def _number_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def evidence_rows(findings: list[Finding]) -> pl.DataFrame:
    """The numbers behind each finding, one row per (finding, number), in time order."""
    rows = [
        {
            "finding": f"{f.kind} ({f.variant}, {f.start.astimezone(UTC):%H:%M})",
            "detector": f.detector,
            "number": name,
            "value": _number_text(value),
        }
        for f in sorted(findings, key=lambda f: (f.start, f.kind, f.variant))
        for name, value in f.numbers.items()
    ]
    schema = ["finding", "detector", "number", "value"]
    return pl.DataFrame(rows, schema={c: pl.Utf8 for c in schema})


def not_run_rows(analysis: Analysis) -> pl.DataFrame:
    """Detectors that could not run on this data, and why."""
    rows = [{"detector": n.detector, "reason": n.reason} for n in analysis.not_run]
    return pl.DataFrame(rows, schema={"detector": pl.Utf8, "reason": pl.Utf8})


def input_rows(document: dict[str, Any]) -> pl.DataFrame:
    """What the findings were computed from: source, window, RUM sampling, fingerprints."""
    inputs = document.get("inputs") or {}
    rows = [
        {"input": k, "value": str(v)}
        for k, v in inputs.items()
        if k != "fingerprints" and v is not None
    ]
    window = document.get("window") or {}
    rows += [{"input": f"window {k}", "value": str(v)} for k, v in window.items()]
    rows.append({"input": "RUM session sampling", "value": str(document.get("rum_sample"))})
    rows += [
        {"input": f"sha256 {name}", "value": digest}
        for name, digest in (inputs.get("fingerprints") or {}).items()
    ]
    return pl.DataFrame(rows, schema={"input": pl.Utf8, "value": pl.Utf8})
