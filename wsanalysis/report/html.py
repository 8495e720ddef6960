"""The manager's page: one self-contained HTML file built from the executed notebook.

Why not nbconvert: its templates load require.js and MathJax from a CDN, and plotly's
mimetype outputs (what the notebook stores) are dropped, so charts vanish silently. We
walk the notebook's outputs ourselves: markdown cells become narrative, plotly
mimetype outputs become charts drawn by plotly.js inlined once, HTML outputs (built by
this module, escaped) are kept, code is left out. The verdict banner comes first, from
`verdict.json`; a failed run gets a "report failed" banner instead, never a quiet
partial page. Every string that came from data goes through `html.escape`, and JSON
inside `<script>` has `<`, `>` and `&` escaped so no value can close the tag.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import polars as pl

PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"
ROLE_KEY = "wsanalysis"
BANNER_ROLE = "banner"
SIZE_BUDGET = 6 * 1024 * 1024
BANNER_CLASSES = {"GO": "go", "NO_GO": "nogo", "INCONCLUSIVE": "inconclusive"}
BANNER_WORDS = {"GO": "GO", "NO_GO": "NO-GO", "INCONCLUSIVE": "INCONCLUSIVE"}

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;
background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
.banner{padding:18px 24px;border-radius:6px;margin:8px 0 16px;color:#fff}
.banner .word{font-size:2.2em;font-weight:700;letter-spacing:.04em}
.banner .why{font-size:1.1em;margin-top:4px}
.banner.go{background:#1e7b34}.banner.nogo{background:#b3261e}
.banner.inconclusive{background:#8a6d00}.banner.failed{background:#5c0a0a}
nav.toc{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 20px;margin:12px 0}
nav.toc li.h3{margin-left:1.5em}
table.data{border-collapse:collapse;background:#fff;margin:8px 0;font-size:.92em}
table.data th,table.data td{border:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top}
table.data th{background:#f0f0f0}
td,.banner,p.context,footer{overflow-wrap:anywhere}
td.decision-pass{color:#1e7b34;font-weight:600}td.decision-fail{color:#b3261e;font-weight:600}
td.decision-inconclusive,td.decision-no_data{color:#8a6d00;font-weight:600}
.plot{background:#fff;border:1px solid #ddd;border-radius:6px;margin:8px 0;min-height:360px;
overflow:hidden}
img{max-width:100%}
pre.output{background:#fff;border:1px solid #ddd;padding:8px;overflow-x:auto}
.error{background:#fdecea;border:1px solid #b3261e;padding:8px;white-space:pre-wrap}
p.context{color:#444;margin:0 0 8px}
footer{color:#666;font-size:.85em;margin-top:32px}
.verdict-GO{color:#1e7b34;font-weight:700}.verdict-NO_GO,.verdict-FAILED{color:#b3261e;
font-weight:700}.verdict-INCONCLUSIVE{color:#8a6d00;font-weight:700}
.filters{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:end;background:#fff;
border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:8px 0}
.filters label{display:flex;flex-direction:column;font-size:.85em;color:#444}
.filters select,.filters input{font:inherit;font-size:1rem;padding:4px;max-width:100%}
.filters .shown{margin-left:auto;color:#444}
td .why{color:#555;font-size:.85em;margin-top:2px;font-weight:400}
ul.tally{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:6px 18px}
[hidden]{display:none!important}
@media (max-width:700px){
main{padding:8px 10px 32px}
.banner{padding:12px 14px}.banner .word{font-size:1.7em}
table.data,table.data tbody,table.data tr,table.data td{display:block;width:auto}
table.data thead{display:none}
table.data tr{border:1px solid #ddd;border-radius:6px;margin:0 0 10px;padding:6px 10px;
background:#fff}
table.data td{border:0;padding:2px 0}
table.data td::before{content:attr(data-label) ": ";font-weight:600;color:#555}
table.data td:first-child{font-weight:700;font-size:1.05em}
table.data td:first-child::before{content:none}
table.data td:empty{display:none}
.filters .shown{margin-left:0}
}
@media print{
body{background:#fff}main{max-width:none;padding:0}
nav.toc,.filters{display:none}
.plot,table.data tr,.banner{break-inside:avoid}
.banner{-webkit-print-color-adjust:exact;print-color-adjust:exact}
a{color:inherit}
}
"""

LOADER = """
var narrow = window.matchMedia("(max-width: 700px)").matches;
function wrapped(text, width) {  // a long title in lines, for plotly (which never wraps)
  var lines = [""];
  String(text).split(" ").forEach(function (word) {
    var last = lines[lines.length - 1];
    if (last && (last + " " + word).length > width) { lines.push(word); }
    else { lines[lines.length - 1] = last ? last + " " + word : word; }
  });
  return lines;
}
function phone(figure, layout) {
  // the legend one entry a line at the foot of the figure (under anything drawn below the
  // plot, such as a timeline's key), the title wrapped, thin side margins: the plot keeps
  // its own height and the figure grows by what was added
  var entries = (figure.data || []).filter(function (t) { return t.showlegend !== false; });
  var shown = layout.showlegend === true || (layout.showlegend !== false && entries.length > 1);
  var legend = layout.legend || {};
  var titled = legend.title && legend.title.text;
  var foot = shown ? 20 * entries.length + (titled ? 26 : 8) : 0;
  layout.legend = Object.assign({}, legend, {orientation: "v", x: 0, xanchor: "left",
                                             yref: "container", y: 0, yanchor: "bottom"});
  var title = typeof layout.title === "string" ? {text: layout.title} : (layout.title || {});
  var lines = title.text ? wrapped(title.text, 36) : [];
  var head = 24 * Math.max(0, lines.length - 1);
  if (lines.length) { layout.title = Object.assign({}, title, {text: lines.join("<br>")}); }
  var margin = layout.margin || {};
  layout.margin = Object.assign({}, margin, {
    l: 44, r: 8,
    b: (margin.b === undefined ? 80 : margin.b) + foot,
    t: (margin.t === undefined ? 100 : margin.t) + head,
  });
  layout.height = (layout.height || 450) + foot + head;
  layout.width = undefined;
  return layout;
}
document.querySelectorAll("script.plotly-figure").forEach(function (source) {
  var figure = JSON.parse(source.textContent);
  var target = document.getElementById(source.dataset.target);
  var layout = figure.layout || {};
  if (narrow) { layout = phone(figure, layout); }
  Plotly.newPlot(target, figure.data || [], layout,
                 {responsive: true, displaylogo: false, displayModeBar: !narrow});
});
"""


@dataclass(frozen=True)
class Failure:
    """Why a run did not finish: a failed cell, a timeout or a dead kernel."""

    kind: str
    message: str
    cell: int | None = None


def escape(value: Any) -> str:
    """Data-derived text as HTML text."""
    return html.escape(str(value), quote=True)


def script_json(value: Any) -> str:
    """JSON safe inside a `<script>` element (no `</script>`, no `<!--`)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def banner_html(verdict: str, reason: str, css: str | None = None) -> str:
    """The verdict banner: GO / NO-GO / INCONCLUSIVE and the one sentence why.

    `css` overrides the colour for reports whose headline is not a verdict word (an
    incident report's "5 FINDINGS" is red when one of them is high).
    """
    css = css if css in BANNER_CLASSES.values() else BANNER_CLASSES.get(verdict, "inconclusive")
    word = BANNER_WORDS.get(verdict, verdict)
    return (
        f'<div class="banner {css}" id="verdict"><div class="word">{escape(word)}</div>'
        f'<div class="why">{escape(reason)}</div></div>'
    )


def failure_banner_html(failure: Failure) -> str:
    where = f" (cell {failure.cell})" if failure.cell is not None else ""
    return (
        '<div class="banner failed" id="verdict"><div class="word">REPORT FAILED</div>'
        f'<div class="why">{escape(failure.kind)}{escape(where)}: {escape(failure.message)}. '
        "No verdict: do not release on this report.</div></div>"
    )


def table_html(frame: pl.DataFrame, decision_column: str | None = None) -> str:
    """A frame as an HTML table, every header and cell escaped; each cell carries its
    column's name, so on a phone each row reads as a card (the first column its title)."""
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.iter_rows():
        cells = []
        for name, value in zip(frame.columns, row, strict=True):
            text = "" if value is None else value
            css = f' class="decision-{escape(text)}"' if name == decision_column else ""
            cells.append(f'<td data-label="{escape(name)}"{css}>{escape(text)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def display_html(markup: str, role: str | None = None) -> None:
    """Show HTML built here in the notebook (role `banner`: the page draws its own)."""
    from IPython.display import HTML, display

    display(HTML(markup), metadata={ROLE_KEY: role} if role else None)


def plot_html(figure: dict[str, Any], target: str) -> str:
    """One chart: a placeholder and its figure as JSON, drawn by `LOADER`."""
    return (
        f'<div class="plot" id="{escape(target)}"></div>'
        f'<script type="application/json" class="plotly-figure" data-target="{escape(target)}">'
        f"{script_json(figure)}</script>"
    )


def page_html(title: str, body: str, *, charts: bool, script: str = "") -> str:
    """The document around a page's body: the stylesheet, plotly.js inlined once when the
    page has charts, and the page's own `script` (ours, never data) after them."""
    scripts = f"<script>{plotly_js()}</script><script>{LOADER}</script>" if charts else ""
    if script:
        scripts += f"<script>{script}</script>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"{body}</main>{scripts}</body></html>\n"
    )


@cache
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")


@cache
def _markdown():
    import mistune

    return mistune.create_markdown(escape=True, plugins=["table"])


def _slug(text: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    return slug


def _markdown_html(source: str, toc: list[tuple[int, str, str]], used: set[str]) -> str:
    rendered = _markdown()(source)

    def anchor(match: re.Match[str]) -> str:
        level, inner = int(match.group(1)), match.group(2)
        text = html.unescape(re.sub(r"<[^>]+>", "", inner))
        slug = _slug(text, used)
        if level in (2, 3):
            toc.append((level, slug, text))
        return f'<h{level} id="{slug}">{inner}</h{level}>'

    return re.sub(r"<h([1-6])>(.*?)</h\1>", anchor, rendered, flags=re.S)


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _outputs_html(cell: dict[str, Any], counter: list[int]) -> Iterable[str]:
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "error":
            message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
            yield f'<div class="error">{escape(message)}</div>'
            continue
        if kind == "stream":
            if output.get("name") == "stdout":
                yield f'<pre class="output">{escape(_text(output.get("text", "")))}</pre>'
            continue
        if output.get("metadata", {}).get(ROLE_KEY) == BANNER_ROLE:
            continue
        data = output.get("data", {})
        if PLOTLY_MIMETYPE in data:
            counter[0] += 1
            yield plot_html(data[PLOTLY_MIMETYPE], f"plot-{counter[0]}")
        elif "text/html" in data:
            yield _text(data["text/html"])  # built by this module's escaping helpers
        elif "image/png" in data:
            yield f'<img alt="figure" src="data:image/png;base64,{escape(_text(data["image/png"]))}">'
        elif "text/plain" in data:
            yield f'<pre class="output">{escape(_text(data["text/plain"]))}</pre>'


def render_page(
    notebook: dict[str, Any],
    *,
    title: str,
    document: dict[str, Any] | None,
    failure: Failure | None = None,
    footer: str = "",
    context: str = "",
) -> str:
    """The whole page. Without a verdict document and without a failure, the page says
    the run failed anyway: a report never shows a verdict it did not compute."""
    if failure is None and (document is None or "verdict" not in document):
        failure = Failure("missing verdict", "the notebook finished without writing its verdict")
    banner = (
        failure_banner_html(failure)
        if failure is not None
        else banner_html(
            document["verdict"], document.get("reason", ""), document.get("banner_class")
        )
    )
    toc: list[tuple[int, str, str]] = []
    used: set[str] = {"verdict"}
    body: list[str] = []
    counter = [0]
    for cell in notebook.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "papermill-error-cell-tag" in tags:
            continue  # papermill's raw-HTML error notices: the failure banner says it
        if cell.get("cell_type") == "markdown":
            body.append(_markdown_html(_source(cell), toc, used))
        elif cell.get("cell_type") == "code" and not {"parameters", "injected-parameters"} & set(
            tags
        ):
            body.extend(_outputs_html(cell, counter))
    toc.insert(0, (2, "verdict", "Verdict"))
    items = "".join(
        f'<li class="h{level}"><a href="#{slug}">{escape(text)}</a></li>'
        for level, slug, text in toc
    )
    return page_html(
        title,
        banner
        + (f'<p class="context">{escape(context)}</p>' if context else "")
        + f'<nav class="toc"><strong>Contents</strong><ul>{items}</ul></nav>'
        + "\n".join(body)
        + f"<footer>{escape(footer)}</footer>",
        charts=bool(counter[0]),
    )
