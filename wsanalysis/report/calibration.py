"""The canary report's calibration section: how the judge behaves on the service's own
history, read from a calibration.json (`wsanalysis calibrate`).

A path, not computed by the report: a calibration replays the judge over days of the
service's history (another, longer window than the canary's, read once and reused by
every canary of that service and gate file), which takes minutes; a report judges one
canary in seconds. The section says when the file does not fit this canary (another
profile, gate file, share or length).
"""

from __future__ import annotations

from wsanalysis.calibration.reading import fit_sentences, gate_rows, load_calibration
from wsanalysis.canary.verdict import Verdict
from wsanalysis.report.html import escape, table_html

NO_CALIBRATION = (
    "No calibration was given. Run `wsanalysis calibrate --data HISTORY --window 1h "
    "--canary-share 0.1 --out calibration.json` (or --prometheus URL --start --end) on "
    "days of this service's own traffic, then pass --param calibration=calibration.json: "
    "the section then says whether the judge's false NO_GO rate on that traffic is within "
    "its level, and how long a healthy canary needs to pass each gate."
)


def calibration_html(path: str | None, verdict: Verdict) -> str:
    """The section's body: the calibration's sentences and gate table, with what does
    not fit this canary's verdict first; a paragraph saying how to get one when `path`
    is None."""
    if not path:
        return f"<p>{escape(NO_CALIBRATION)}</p>"
    document = load_calibration(path)
    judged = verdict.to_json()
    window = verdict.data.resolved_window() if verdict.data is not None else None
    warnings = fit_sentences(
        document,
        profile=verdict.profile,
        gate_file_sha256=(judged.get("gate_file") or {}).get("sha256"),
        canary_share=judged.get("canary_share"),
        window_s=window.duration.total_seconds() if window is not None else None,
    )
    history = document.get("history") or {}
    origin = f"History {history.get('start')} to {history.get('end')}, from {path}."
    paragraphs = [f"<p><strong>Does not fit:</strong> {escape(s)}</p>" for s in warnings]
    paragraphs += [f"<p>{escape(s)}</p>" for s in document["sentences"]]
    paragraphs.append(f'<p class="context">{escape(origin)}</p>')
    return "".join(paragraphs) + table_html(gate_rows(document))
