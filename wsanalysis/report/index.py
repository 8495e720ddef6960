"""`wsanalysis report index`: one page over every canary and incident report in a folder.

For managers: how releases are doing, what blocks them, how long a canary takes to decide,
which incidents were the release's. The rows come from `history.read_history`; the page
is built with the reports' own helpers (`html.page_html`, `plot_html`, `escape`), so it
follows their rules: self-contained (plotly.js inlined, no request leaves the file),
every string from a document escaped (service and release names are whatever a caller
typed), a card per run on a phone, no filters on paper. Filtering is client-side: each
row carries its service, environment and outcome as data attributes, and a few lines of
our own script (which never reads a value as markup) hide the rows that do not match.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import plotly.graph_objects as go
import polars as pl

from wsanalysis.canary.formatting import format_duration
from wsanalysis.files import write_text_atomic
from wsanalysis.report.history import (
    FAILED,
    VERDICTS,
    History,
    Run,
    blocking_gates,
    counted,
    decision_times_per_week,
    incidents_per_week,
    read_history,
    runs_frame,
    verdicts_per_week,
)
from wsanalysis.report.html import BANNER_WORDS, escape, page_html, plot_html
from wsanalysis.version import __version__

INDEX_FILE = "index.html"
NOT_SET = "(not set)"
COLOURS = {"GO": "#1e7b34", "NO_GO": "#b3261e", "INCONCLUSIVE": "#c9a100", FAILED: "#5c0a0a"}
SCOPE_COLOURS = {"canary": "#b3261e", "control": "#1f6fb2", "fleet": "#7a7a7a"}
SCOPE_NAMES = {"canary": "canary (the release)", "control": "control", "fleet": "fleet-wide"}
COLUMNS = (
    "finished",
    "service",
    "release",
    "environment",
    "kind",
    "verdict",
    "window",
    "time to decision",
    "gates failed / open",
    "incident episodes",
    "report",
)

FILTER_SCRIPT = """
(function () {
  var table = document.getElementById("runs");
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  function apply() {
    var words = search.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var keep = selects.every(function (s) {
        return s.value === "" || row.dataset[s.dataset.filter] === s.value;
      });
      if (keep && words) { keep = row.textContent.toLowerCase().indexOf(words) >= 0; }
      row.hidden = !keep;
      if (keep) { count += 1; }
    });
    shown.textContent = count + " of " + rows.length + " runs shown";
  }
  selects.concat([search]).forEach(function (control) {
    control.addEventListener("input", apply);
    control.addEventListener("change", apply);
  });
  apply();
})();
"""


def write_index(root: Path, out: Path | None = None) -> History:
    """Read every report under `root` and write the page (atomically) to `out`."""
    out = out or root / INDEX_FILE
    history = read_history(root)
    write_text_atomic(out, render_index(history, out), what="index page")
    return history


def render_index(history: History, out: Path) -> str:
    """The page for `history`, its links relative to where the page is written (`out`)."""
    frame = runs_frame(history.runs)
    charts = trend_figures(frame)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        f"<h1>Release history</h1>"
        f'<p class="context">{escape(history.root)} · {escape(history.summary())}</p>',
        _tally(history),
        '<nav class="toc"><strong>Contents</strong><ul>'
        '<li class="h2"><a href="#runs-section">Runs</a></li>'
        '<li class="h2"><a href="#trends">Trends</a></li>'
        + (
            '<li class="h2"><a href="#not-reports">Files that are not reports</a></li>'
            if history.unreadable
            else ""
        )
        + "</ul></nav>",
        _runs_section(history, out),
        '<h2 id="trends">Trends</h2>'
        "<p>Over every run in the folder (the filters above narrow the table only); weeks "
        "start on Monday (UTC), by the time each run finished.</p>",
        *(plot_html(figure, f"trend-{n}") for n, figure in enumerate(charts, 1)),
        *([] if charts else ["<p>No run to draw yet.</p>"]),
        _unreadable_section(history, out),
        f"<footer>generated {escape(generated)} · wsanalysis {escape(__version__)}</footer>",
    ]
    return page_html(
        "Release history", "\n".join(sections), charts=bool(charts), script=FILTER_SCRIPT
    )


# -- the table ---------------------------------------------------------------------------------


def _href(target: Path, out: Path) -> str:
    """A relative link from the page to `target`, every character that could end the
    attribute or name a scheme percent-encoded."""
    relative = os.path.relpath(target.resolve(), out.resolve().parent)
    return escape(quote(Path(relative).as_posix()))


def _span(seconds: float | None) -> str:
    """12 h, 5 h 55 min, 40 min: a length of time read at a glance."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours >= 48:
        return f"{hours / 24:.1f} d"
    return f"{hours} h" + (f" {rest} min" if rest else "")


def _decision_text(run: Run) -> str:
    if run.decided_s is not None:
        return f"{_span(run.decided_s)} ({run.decided_at})"
    if run.verdict == "INCONCLUSIVE":
        if run.settle_in_s is None:
            return "not settled; the time it needs is unknown"
        return f"not settled; needs {format_duration(run.settle_in_s)} more"
    return "—"


def _verdict_cell(run: Run) -> str:
    if run.kind == "incident" and run.verdict != FAILED:
        return counted(len(run.episodes), "episode")
    word = BANNER_WORDS.get(run.verdict or FAILED, run.verdict or FAILED)
    return f'<span class="verdict-{escape(run.verdict)}">{escape(word)}</span>'


def _gates_cell(run: Run) -> str:
    parts = []
    if run.failed_gates:
        parts.append("failed: " + ", ".join(escape(g) for g in run.failed_gates))
    if run.open_gates:
        parts.append("open: " + ", ".join(escape(g) for g in run.open_gates))
    return "<br>".join(parts)


def _episodes_cell(run: Run) -> str:
    lines = []
    for e in run.episodes:
        when = ""
        if e.start is not None and e.end is not None:
            when = f" {e.start:%m-%d %H:%M}–{e.end:%H:%M}"
        what = ", ".join(e.kinds)
        lines.append(
            f"{escape(e.severity)} · {escape(SCOPE_NAMES.get(e.scope, e.scope))}{escape(when)}"
            + (f": {escape(what)}" if what else "")
        )
    return "<br>".join(lines)


def _row(run: Run, out: Path) -> str:
    finished = f"{run.finished:%Y-%m-%d %H:%M} UTC"
    if not run.finished_recorded:
        finished += " (file time)"
    kind = run.kind + (f" · {run.producer}" if run.producer else "")
    target = run.report or run.path
    link = f'<a href="{_href(target, out)}">{escape(target.name)}</a>'
    verdict = _verdict_cell(run)
    if run.reason:
        verdict += f'<div class="why">{escape(run.reason)}</div>'
    cells = (
        escape(finished),
        escape(run.service or "—"),
        escape(run.release or "—"),
        escape(run.environment or "—"),
        escape(kind),
        verdict,
        escape(_span(run.window_s)),
        escape(_decision_text(run)),
        _gates_cell(run),
        _episodes_cell(run),
        link,
    )
    tds = "".join(
        f'<td data-label="{escape(name)}">{cell}</td>'
        for name, cell in zip(COLUMNS, cells, strict=True)
    )
    data = (
        f'data-service="{escape(run.service or NOT_SET)}" '
        f'data-environment="{escape(run.environment or NOT_SET)}" '
        f'data-outcome="{escape(run.outcome)}"'
    )
    return f"<tr {data}>{tds}</tr>"


def _options(values: list[str]) -> str:
    return '<option value="">all</option>' + "".join(
        f'<option value="{escape(v)}">{escape(v)}</option>' for v in values
    )


def _filters(history: History) -> str:
    def distinct(name: str) -> list[str]:
        return sorted({getattr(r, name) or NOT_SET for r in history.runs})

    outcomes = [
        o for o in (*VERDICTS, FAILED, "incident") if any(r.outcome == o for r in history.runs)
    ]
    return (
        '<div class="filters">'
        f'<label>service <select data-filter="service">{_options(distinct("service"))}'
        "</select></label>"
        f'<label>environment <select data-filter="environment">'
        f"{_options(distinct('environment'))}</select></label>"
        f'<label>verdict <select data-filter="outcome">{_options(outcomes)}</select></label>'
        '<label>search <input id="search" type="search" placeholder="release, gate, ..."></label>'
        '<span class="shown" id="shown"></span></div>'
    )


def _runs_section(history: History, out: Path) -> str:
    if not history.runs:
        return (
            '<h2 id="runs-section">Runs</h2><p>No verdict.json or findings.json was found '
            "in this folder.</p>"
        )
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    rows = "".join(_row(r, out) for r in history.runs)
    return (
        '<h2 id="runs-section">Runs</h2><p>Newest first. Time to decision: from the '
        "window's start to the look that decided (sequential), or the whole window "
        "(fixed-horizon); an INCONCLUSIVE run says how much longer would settle it.</p>"
        + _filters(history)
        + f'<table class="data runs" id="runs"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _tally(history: History) -> str:
    items = []
    for outcome in (*VERDICTS, FAILED):
        n = sum(r.kind == "canary" and r.outcome == outcome for r in history.runs)
        if n:
            word = BANNER_WORDS.get(outcome, outcome)
            items.append(f'<li><span class="verdict-{outcome}">{n} {escape(word)}</span></li>')
    incidents = [r for r in history.runs if r.kind == "incident"]
    if incidents:
        episodes = sum(len(r.episodes) for r in incidents)
        items.append(
            f"<li>{counted(len(incidents), 'incident run')}, {counted(episodes, 'episode')}</li>"
        )
    return f'<ul class="tally">{"".join(items)}</ul>' if items else ""


def _unreadable_section(history: History, out: Path) -> str:
    if not history.unreadable:
        return ""
    rows = "".join(
        f'<tr><td data-label="file"><a href="{_href(u.path, out)}">'
        f"{escape(_shown_path(u.path, history.root))}</a></td>"
        f'<td data-label="problem">{escape(u.problem)}</td></tr>'
        for u in history.unreadable
    )
    return (
        '<h2 id="not-reports">Files that are not reports</h2>'
        "<p>Named like a result file but not one the index can read; left out of the table "
        "and the trends.</p>"
        f'<table class="data"><thead><tr><th>file</th><th>problem</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _shown_path(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# -- the trends --------------------------------------------------------------------------------


def _layout(title: str, y_title: str, weeks: list[str] | None = None, **extra) -> dict:
    """A trend chart's layout; weeks are categories ("30 Nov 2026", the Monday), in order."""
    xaxis = {"type": "category", "categoryorder": "array", "categoryarray": weeks or []}
    return {
        "title": {"text": title},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "xaxis": xaxis if weeks is not None else {},
        "height": 340,
        "margin": {"t": 60, "b": 50, "l": 60, "r": 20},
        "legend": {"orientation": "h", "x": 0, "yref": "container", "y": 0, "yanchor": "bottom"},
        "showlegend": True,  # one scope or one verdict is still named
        **extra,
    }


def _weeks(frame: pl.DataFrame) -> list[str]:
    return [f"{d:%d %b %Y}" for d in frame["week"].to_list()]


def _all_weeks(frame: pl.DataFrame) -> list[str]:
    return _weeks(frame.select("week").unique().sort("week"))


def verdicts_figure(per_week: pl.DataFrame) -> dict:
    traces = []
    for outcome in (*VERDICTS, FAILED):
        part = per_week.filter(pl.col("outcome") == outcome)
        if part.height:
            traces.append(
                go.Bar(
                    x=_weeks(part),
                    y=part["runs"].to_list(),
                    name=BANNER_WORDS.get(outcome, outcome),
                    marker_color=COLOURS[outcome],
                )
            )
    layout = _layout("Canary verdicts per week", "runs", _all_weeks(per_week), barmode="stack")
    return go.Figure(traces, layout).to_plotly_json()


def decision_figure(times: pl.DataFrame) -> dict:
    weeks = _weeks(times)
    runs = times["runs"].to_list()
    traces = [
        go.Scatter(
            x=weeks,
            y=times["median_h"].to_list(),
            name="median",
            mode="lines+markers",
            customdata=runs,
            hovertemplate="%{y:.1f} h (median of %{customdata} runs)",
        ),
        go.Scatter(
            x=weeks,
            y=times["p90_h"].to_list(),
            name="p90",
            mode="lines+markers",
            line={"dash": "dot"},
            customdata=runs,
            hovertemplate="%{y:.1f} h (p90 of %{customdata} runs)",
        ),
    ]
    layout = _layout("Time to decision per week", "hours (GO and NO_GO runs)", weeks)
    return go.Figure(traces, layout).to_plotly_json()


def gates_figure(gates: pl.DataFrame) -> dict:
    names = list(reversed(gates["gate"].to_list()))
    traces = [
        go.Bar(
            y=names,
            x=list(reversed(gates["failed"].to_list())),
            name="failed (NO_GO)",
            orientation="h",
            marker_color=COLOURS["NO_GO"],
        ),
        go.Bar(
            y=names,
            x=list(reversed(gates["open"].to_list())),
            name="left open (INCONCLUSIVE)",
            orientation="h",
            marker_color=COLOURS["INCONCLUSIVE"],
        ),
    ]
    layout = _layout("Gates that held releases back", "", barmode="stack")
    layout["xaxis"] = {"title": {"text": "runs"}, "rangemode": "tozero"}
    layout["yaxis"] = {"automargin": True, "type": "category"}
    layout["height"] = max(260, 90 + 34 * len(names))
    return go.Figure(traces, layout).to_plotly_json()


def incidents_figure(per_week: pl.DataFrame) -> dict:
    traces = []
    for scope in sorted(per_week["scope"].unique().to_list(), key=lambda s: (s != "canary", s)):
        part = per_week.filter(pl.col("scope") == scope)
        traces.append(
            go.Bar(
                x=_weeks(part),
                y=part["episodes"].to_list(),
                name=SCOPE_NAMES.get(scope, scope),
                marker_color=SCOPE_COLOURS.get(scope, "#444"),
            )
        )
    layout = _layout(
        "Incident episodes per week, by scope", "episodes", _all_weeks(per_week), barmode="stack"
    )
    return go.Figure(traces, layout).to_plotly_json()


def trend_figures(frame: pl.DataFrame) -> list[dict]:
    """The trend charts that have something to draw, in the page's order."""
    figures = []
    per_week = verdicts_per_week(frame)
    if per_week.height:
        figures.append(verdicts_figure(per_week))
    times = decision_times_per_week(frame)
    if times.height:
        figures.append(decision_figure(times))
    gates = blocking_gates(frame)
    if gates.height:
        figures.append(gates_figure(gates))
    incidents = incidents_per_week(frame)
    if incidents.height:
        figures.append(incidents_figure(incidents))
    return figures
