"""How results read in a notebook cell: one-line `__repr__`s and small HTML tables.

An analyst who evaluates a verdict, a gate's evidence, a comparison, a finding or an
episode in JupyterLab should see what scipy and lifelines results show: the figures that
matter, named, not a dataclass dump. The result classes keep two tiny methods each
(`__repr__`, `_repr_html_`) that call the functions here, so all rendering lives in one
place. Every label, sentence and RUM-derived string is escaped: they are untrusted text.

This module imports nothing from the analyses (it reads attributes), so every layer may
use it without an arrow pointing the wrong way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any

import polars as pl

STYLE = (
    "border-collapse:collapse;font-size:0.9em;"
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"
)
CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top"
COLOURS = {
    "GO": "#1a7f37", "pass": "#1a7f37", "NO_GO": "#cf222e", "fail": "#cf222e",
    "INCONCLUSIVE": "#9a6700", "inconclusive": "#9a6700", "no_data": "#6e7781",
    "high": "#cf222e", "medium": "#9a6700", "low": "#6e7781",
    "canary": "#cf222e", "control": "#6e7781", "fleet": "#0969da",
}  # fmt: skip


# -- numbers as a reader wants them ------------------------------------------------------
def number(value: Any, digits: int = 4) -> str:
    """A figure for reading: 4 significant digits, '–' for missing, ∞ for infinities."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{digits}g}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return str(value)


def interval(low: Any, high: Any) -> str:
    return f"[{number(low)}, {number(high)}]"


def _badge(word: str) -> str:
    colour = COLOURS.get(word, "#57606a")
    return (
        f'<span style="color:white;background:{colour};border-radius:3px;'
        f'padding:1px 6px;font-weight:600">{escape(word)}</span>'
    )


def table(rows: Sequence[tuple[str, Any]], caption: str = "") -> str:
    """A two-column HTML table of (name, value); values escaped unless pre-rendered."""
    body = "".join(
        f'<tr><th style="{CELL}">{escape(name)}</th><td style="{CELL}">'
        f"{value.html if isinstance(value, Safe) else escape(number(value))}</td></tr>"
        for name, value in rows
    )
    head = f'<caption style="text-align:left;font-weight:600">{caption}</caption>'
    return f'<table style="{STYLE}">{head if caption else ""}{body}</table>'


def grid(frame: pl.DataFrame, caption: str = "") -> str:
    """A polars frame as an HTML table, every cell escaped."""
    head = "".join(f'<th style="{CELL}">{escape(str(c))}</th>' for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f'<td style="{CELL}">{escape(number(v))}</td>' for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    cap = f'<caption style="text-align:left;font-weight:600">{caption}</caption>'
    return f'<table style="{STYLE}">{cap if caption else ""}<tr>{head}</tr>{body}</table>'


class Safe:
    """HTML built here from escaped parts (so `table` does not escape it twice)."""

    def __init__(self, html: str) -> None:
        self.html = html


# -- a comparison (stats.results.Comparison and its subclasses) --------------------------
def comparison_text(c: Any) -> str:
    ci = c.confidence_interval()
    sign = "×" if c.effect == "ratio" else "Δ"
    enough = "" if c.sufficient else f", insufficient: {c.reason}"
    return (
        f"{type(c).__name__}({c.effect} {sign}{number(c.statistic)}, {ci.level:.0%} CI "
        f"{interval(ci.low, ci.high)}, p={number(c.pvalue, 3)}, canary={number(c.canary)}, "
        f"control={number(c.control)}, n={c.n_canary}/{c.n_control}{enough}; {c.method})"
    )


def comparison_rows(c: Any) -> list[tuple[str, Any]]:
    ci = c.confidence_interval()
    rows: list[tuple[str, Any]] = [
        ("effect", f"{c.effect} (canary {'/' if c.effect == 'ratio' else '−'} control)"),
        ("statistic", c.statistic),
        (f"{ci.level:.0%} confidence interval", interval(ci.low, ci.high)),
        ("p-value (two-sided)", c.pvalue),
        ("canary", c.canary),
        ("control", c.control),
        ("n canary / control", f"{c.n_canary} / {c.n_control}"),
        ("sufficient", c.sufficient if c.sufficient else f"False: {c.reason}"),
        ("method", c.method),
    ]
    for name in ("dispersion", "buckets", "events_canary", "events_control"):
        if hasattr(c, name):
            rows.append((name.replace("_", " "), getattr(c, name)))
    return rows


def comparison_html(c: Any) -> str:
    return table(comparison_rows(c), escape(type(c).__name__))


# -- a gate's evidence (canary.verdict.GateEvidence) and its result (GateResult) ----------
EVIDENCE_FIELDS = ("canary", "control", "effect", "ci_low", "ci_high", "limit", "p_harm",
                   "power", "sufficient", "method", "source", "n_canary", "n_control",
                   "reason", "worse")  # fmt: skip


def evidence_text(e: Any) -> str:
    if getattr(e, "missing", False):
        return f"GateEvidence(no data: {e.reason})"
    return (
        f"GateEvidence(canary={number(e.canary)}, control={number(e.control)}, "
        f"effect={number(e.effect)} CI {interval(e.ci_low, e.ci_high)}, "
        f"limit={number(e.limit)}, p_harm={number(e.p_harm, 3)}, power={number(e.power, 3)}, "
        f"n={e.n_canary}/{e.n_control}; {e.method} from {e.source})"
    )


def evidence_html(e: Any, caption: str = "Gate evidence") -> str:
    rows = [(name.replace("_", " "), getattr(e, name)) for name in EVIDENCE_FIELDS]
    rows += [(f"detail: {k}", _plain(v)) for k, v in e.details_json().items()]
    return table(rows, escape(caption))


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return str(value)
    return value


def evidence_frame(items: Iterable[Any]) -> pl.DataFrame:
    """Gate results (or bare evidence) as one polars row each, for an analyst's digging."""
    rows = []
    for item in items:
        evidence = getattr(item, "evidence", item)
        row: dict[str, Any] = {}
        if evidence is not item:
            row |= {
                "gate": item.name, "decision": item.decision, "critical": item.critical,
                "p_adjusted": _float(item.p_adjusted), "sentence": item.sentence,
            }  # fmt: skip
        for name in EVIDENCE_FIELDS:
            value = getattr(evidence, name)
            row[name] = _float(value) if isinstance(value, float) else value
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def gate_text(g: Any) -> str:
    return (
        f"GateResult({g.name}: {g.decision}{' (critical)' if g.critical else ''}, "
        f"p_adjusted={number(g.p_adjusted, 3)} — {g.sentence})"
    )


def gate_html(g: Any) -> str:
    head = (
        f"<p>{_badge(g.decision)} <b>{escape(g.title or g.name)}</b> "
        f"({escape(g.name)}{', critical' if g.critical else ''})<br>{escape(g.sentence)}</p>"
    )
    return head + evidence_html(g.evidence)


# -- the verdict (canary.verdict.Verdict) ------------------------------------------------
def verdict_text(v: Any) -> str:
    gates = ", ".join(f"{g.name}={g.decision}" for g in v.gates)
    return f"Verdict({v.overall}: {v.reason} | profile={v.profile}, judge={v.judge}; {gates})"


def verdict_html(v: Any) -> str:
    frame = pl.DataFrame(
        [
            {
                "gate": g.name, "decision": g.decision, "critical": str(g.critical),
                "canary": number(g.evidence.canary), "control": number(g.evidence.control),
                "effect": number(g.evidence.effect),
                "95% CI": interval(g.evidence.ci_low, g.evidence.ci_high),
                "limit": number(g.evidence.limit), "p adjusted": number(g.p_adjusted, 3),
                "sentence": g.sentence,
            }
            for g in v.gates
        ],
        schema={c: pl.Utf8 for c in ("gate", "decision", "critical", "canary", "control",
                                     "effect", "95% CI", "limit", "p adjusted", "sentence")},
    )  # fmt: skip
    head = (
        f"<p>{_badge(v.overall)} {escape(v.reason)}<br><small>profile "
        f"{escape(str(v.profile))}, judge {escape(str(v.judge))}</small></p>"
    )
    return head + grid(frame)


# -- incident findings and episodes (incident.findings.Finding, incident.episodes.Episode) -
FINDING_COLUMNS = ("kind", "variant", "severity", "start", "end", "detector", "sentence")


def finding_text(f: Any) -> str:
    return (
        f"Finding({f.kind} on {f.variant}, {f.severity}, {f.start:%Y-%m-%d %H:%M} to "
        f"{f.end:%H:%M} UTC: {f.sentence})"
    )


def finding_html(f: Any) -> str:
    rows: list[tuple[str, Any]] = [
        ("variant", f.variant), ("start", f.start), ("end", f.end), ("detector", f.detector),
    ]  # fmt: skip
    rows += [(name, _plain(value)) for name, value in f.numbers.items()]
    head = (
        f"<p>{_badge(f.severity)} <b>{escape(f.kind)}</b> on {escape(f.variant)}<br>"
        f"{escape(f.sentence)}</p>"
    )
    return head + table(rows)


def findings_frame(findings: Iterable[Any]) -> pl.DataFrame:
    """Findings as a polars frame: the fixed columns, then one column per number."""
    rows = []
    for f in findings:
        row = {name: getattr(f, name) for name in FINDING_COLUMNS}
        row |= {
            k: (str(v) if isinstance(v, dict | list | tuple) else v) for k, v in f.numbers.items()
        }
        rows.append(row)
    if not rows:
        return pl.DataFrame(schema={c: pl.Utf8 for c in FINDING_COLUMNS})
    return pl.DataFrame(rows, infer_schema_length=None, strict=False)


def episode_text(e: Any) -> str:
    return (
        f"Episode({e.scope}, {e.severity}, {e.start:%Y-%m-%d %H:%M} to {e.end:%H:%M} UTC, "
        f"{len(e.findings)} finding{'s' if len(e.findings) != 1 else ''}: {e.sentence})"
    )


def episode_html(e: Any) -> str:
    head = (
        f"<p>{_badge(e.severity)} {_badge(e.scope)} {escape(number(e.start))} to "
        f"{escape(number(e.end))}<br>{escape(e.sentence)}</p>"
    )
    shown = findings_frame(e.findings).select("kind", "variant", "severity", "sentence")
    return head + grid(shown, "Findings (evidence)")
