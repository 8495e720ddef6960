"""What a calibration says: its interval, its sentences, its table.

The CLI prints these and the canary report shows them, both from the document
`calibration.json` holds, so the two never word a result differently.

Replays are not independent: the seeds of one window split the same data, so they
agree more than separate windows would. The interval on the false NO_GO rate counts
`effective_replays`: the replays divided by the design effect of windows as clusters
(1 + (m - 1) ρ, ρ the intraclass correlation of NO_GO within a window), and windows
alone when ρ cannot be estimated (no NO_GO, or every replay NO_GO): nothing then says
the seeds differ.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
from scipy import stats

from wsanalysis.canary.formatting import format_duration
from wsanalysis.errors import DataError

Z95 = float(stats.norm.isf(0.025))
VERSION = 1  # of the calibration.json document
REQUIRED = ("replays", "verdicts", "gates", "plan", "false_no_go", "settings", "sentences")
#: Below this many windows with a NO_GO (or without one), the intraclass correlation is
#: not estimated and windows are the independent unit.
MIN_WINDOWS_FOR_RHO = 5


def wilson_interval(rate: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion seen over `n` (maybe fractional)
    independent trials."""
    if n <= 0:
        return 0.0, 1.0
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def effective_replays(clusters: list[tuple[int, int]]) -> float:
    """Independent replays worth `clusters` (NO_GO count, replays) per window."""
    total = sum(n for _, n in clusters)
    hits = sum(k for k, _ in clusters)
    windows = len(clusters)
    if total == 0:
        return 0.0
    if windows < 2 or total == windows:  # one window, or one replay per window
        return float(windows if windows < 2 else total)
    rate = hits / total
    hit = sum(1 for k, _ in clusters if k > 0)
    missed = sum(1 for k, n in clusters if k < n)
    if min(hit, missed) < MIN_WINDOWS_FOR_RHO:  # too few windows to tell how alike seeds are
        return float(windows)
    # one-way ANOVA estimate of the intraclass correlation (binary outcomes)
    between = sum(n * (k / n - rate) ** 2 for k, n in clusters) / (windows - 1)
    within = sum(k - k * k / n for k, n in clusters) / (total - windows)
    n0 = (total - sum(n * n for _, n in clusters) / total) / (windows - 1)
    rho = (between - within) / (between + (n0 - 1) * within) if between + within > 0 else 1.0
    rho = min(1.0, max(0.0, rho))
    mean_size = total / windows
    return total / (1 + (mean_size - 1) * rho)


def within_level(low: float, high: float, level: float) -> bool | None:
    """True when the interval is inside the level, False when beyond it, None when it
    straddles it (the replays cannot tell)."""
    if high <= level:
        return True
    if low > level:
        return False
    return None


def detectable_rate(n: float, level: float) -> float | None:
    """The smallest false NO_GO rate `n` independent replays would show above `level`
    (its Wilson lower limit beyond the level), or None when no rate would."""
    if n <= 0 or wilson_interval(1.0, n)[0] <= level:
        return None
    low, high = level, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if wilson_interval(mid, n)[0] > level else (mid, high)
    return high


def replays_to_tell(level: float, worse: float, power: float = 0.8) -> int:
    """Independent replays that tell a rate at `level` from one at `worse` (one-sided
    5%, `power`): the normal-approximation size of a one-sample proportion test."""
    z_a, z_b = float(stats.norm.isf(0.05)), float(stats.norm.ppf(power))
    spread = z_a * math.sqrt(level * (1 - level)) + z_b * math.sqrt(worse * (1 - worse))
    return math.ceil((spread / (worse - level)) ** 2)


def _percent(x: float) -> str:
    if x == 0:
        return "0%"
    return f"{x:.1%}" if x < 0.1 else f"{x:.0%}"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def sentences(document: dict[str, Any]) -> list[str]:
    """The calibration in plain sentences: the false NO_GO rate against the judge's
    level, what this many replays can tell, what was not replayed and why, pods that
    stand out, the sample-ratio check, and the notes."""
    out = [_headline(document), _what_replays_tell(document)]
    verdicts, replays = document["verdicts"], document["replays"]
    gates_replayed = document["settings"]["gates_replayed"]
    out.append(
        f"A healthy canary got GO in {_percent(verdicts['GO'] / replays)} of the replays and "
        f"INCONCLUSIVE in {_percent(verdicts['INCONCLUSIVE'] / replays)} (verdicts over "
        f"{_names(gates_replayed)})."
    )
    by_reason: dict[str, list[str]] = {}
    for name, gate in document["gates"].items():
        if gate["not_replayable"]:
            by_reason.setdefault(gate["not_replayable"], []).append(name)
    for reason, names in by_reason.items():
        out.append(f"Not replayed: {_names(names)} ({reason}).")
    out += _never_decided(document)
    out += _bound_failures(document)
    out += _pods(document)
    srm = document["srm"]
    if not srm["checked"]:
        out.append(f"The sample-ratio check was not replayed: {srm['why_not']}.")
    elif srm["trips"]:
        out.append(
            f"The sample-ratio check tripped in {srm['trips']} of {replays} replays (its level "
            f"is {srm['alpha']:.1%}); a trip makes a would-be GO INCONCLUSIVE."
        )
    return out + list(document.get("notes") or [])


def _headline(document: dict[str, Any]) -> str:
    f = document["false_no_go"]
    settings, history = document["settings"], document["history"]
    hours = settings["window_s"] / 3600
    window = f"{hours:g} h" if hours >= 1 else f"{settings['window_s'] / 60:g} min"
    no_go = document["verdicts"]["NO_GO"]
    level = _percent(f["level"])
    verdict = {
        True: f"within the judge's {level} level",
        False: f"above the judge's {level} level: on this traffic the judge fails healthy "
        "canaries more often than it promises",
        None: f"consistent with the judge's {level} level, but these replays cannot show "
        "it is within it",
    }[f["within_level"]]
    return (
        f"{document['replays']} A/A replays ({history['windows']} windows of {window} × "
        f"{settings['seeds']} split seeds, canary share {settings['canary_share']:.0%}) gave "
        f"NO_GO {no_go} times: a false NO_GO rate of {_percent(f['rate'])} (95% CI "
        f"{_percent(f['low'])} to {_percent(f['high'])}, as {f['effective_replays']:.0f} "
        f"independent replays), {verdict}."
    )


def _what_replays_tell(document: dict[str, Any]) -> str:
    f = document["false_no_go"]
    n, level = f["effective_replays"], f["level"]
    needed = replays_to_tell(level, 2 * level)
    seen = detectable_rate(n, level)
    shown = (
        f"they would show a false NO_GO rate of {_percent(seen)} or more as above the level"
        if seen is not None
        else "they are too few to show any rate above the level"
    )
    return (
        f"What {n:.0f} independent replays can tell: {shown}; telling {_percent(level)} from "
        f"{_percent(2 * level)} needs about {needed:,} (more windows of history, not more "
        "seeds: seeds re-split the same data)."
    )


def _never_decided(document: dict[str, Any]) -> list[str]:
    """Gates that had no data in every replay, grouped by why."""
    settings = document["settings"]
    by_reason: dict[str, list[str]] = {}
    for name, gate in document["gates"].items():
        if not gate["not_replayable"] and gate["no_data"] == document["replays"]:
            by_reason.setdefault(gate.get("no_data_why") or "no data", []).append(name)
    window = format_duration(settings["window_s"]).removeprefix("about ")
    return [
        f"No decision in any replay: {_names(names)} ({reason}, in a {window} canary at "
        f"{_percent(settings['canary_share'])} of this traffic); a longer --window shows "
        "whether they settle, and the plan says how long they need."
        for reason, names in by_reason.items()
    ]


def _bound_failures(document: dict[str, Any]) -> list[str]:
    out = []
    for name, gate in document["gates"].items():
        if gate.get("comparison") == "bound" and gate["fail"]:
            out.append(
                f"{name} failed in {gate['fail']} replays against its absolute bound: control "
                "itself breaches it on this history, so a canary as good as control would too."
            )
    return out


def _pods(document: dict[str, Any]) -> list[str]:
    pods = document.get("pods")
    if not pods:
        return []
    out = []
    share = pods.get("canary_share")
    carried = f", {_percent(share)} of connections" if share is not None else ""
    out.append(
        f"Control's pods ({pods['label']} label, {pods['per_window']['max']} per window at "
        f"most) were split {pods['distinct_splits']} ways of {pods['possible_splits']} "
        f"possible{carried} to the canary, against the declared "
        f"{_percent(document['settings']['canary_share'])}; the plan is rescaled to the "
        "declared share."
    )
    by_pod = pods["by_pod"]
    total_in = sum(p["in_canary"] for p in by_pod.values())
    for pod, counts in by_pod.items():
        k_in, n_in = counts["no_go"], counts["in_canary"]
        others = [(p["no_go"], p["in_canary"]) for name, p in by_pod.items() if name != pod]
        k_out, n_out = sum(k for k, _ in others), sum(n for _, n in others)
        if n_in == 0 or n_out == 0 or total_in == 0 or k_in < 3:
            continue
        odds = stats.fisher_exact([[k_in, n_in - k_in], [k_out, n_out - k_out]], "greater")
        if odds.pvalue < 0.01:
            out.append(
                f"NO_GO in {k_in} of {n_in} replays whose canary group held {pod}, against "
                f"{k_out} of {n_out} for the other pods (Fisher p = {odds.pvalue:.1e}): {pod} "
                "is not like the others, so control as a whole is not a clean baseline."
            )
    return out


def gate_rows(document: dict[str, Any]) -> pl.DataFrame:
    """One row per gate: what it was replayed on, its decisions, its dispersion, how
    long a healthy canary at the declared share needs to pass it (the plan)."""
    rows = []
    for name, gate in document["gates"].items():
        plan = (document.get("plan") or {}).get(name) or {}
        settle = plan.get("settle_in_s")
        dispersion = gate.get("dispersion")
        rows.append(
            {
                "gate": name,
                "replayed on": gate["replayed_on"] or "not replayed",
                "pass": gate["pass"],
                "fail": gate["fail"],
                "inconclusive": gate["inconclusive"],
                "no_data": gate["no_data"],
                "dispersion": f"{dispersion:.2f}" if dispersion is not None else "",
                "healthy canary passes in": _plan_text(plan, settle),
            }
        )
    schema = {
        "gate": pl.Utf8, "replayed on": pl.Utf8, "pass": pl.Int64, "fail": pl.Int64,
        "inconclusive": pl.Int64, "no_data": pl.Int64, "dispersion": pl.Utf8,
        "healthy canary passes in": pl.Utf8,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def _plan_text(plan: dict[str, Any], settle: float | None) -> str:
    if not settle:
        return ""
    spoken = format_duration(settle)
    return f"within {spoken.removeprefix('about ')}" if plan.get("within_window") else spoken


def table_text(document: dict[str, Any]) -> str:
    """`gate_rows` as fixed-width text for a terminal or a log."""
    frame = gate_rows(document)
    columns = frame.columns
    cells = [columns] + [[str(v) for v in row] for row in frame.iter_rows()]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    verdicts = document["verdicts"]
    lines.append(
        f"verdicts over {document['replays']} replays: GO {verdicts['GO']}, NO_GO "
        f"{verdicts['NO_GO']}, INCONCLUSIVE {verdicts['INCONCLUSIVE']}"
    )
    return "\n".join(lines)


def load_calibration(path: str | Path) -> dict[str, Any]:
    """A calibration.json written by `wsanalysis calibrate`, checked; a `DataError` naming
    the file when it is not one."""
    path = Path(path)
    fix = "give the calibration.json that `wsanalysis calibrate ... --out FILE` wrote"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read the calibration {path}: {error}", fix) from None
    missing = [k for k in REQUIRED if not isinstance(document, dict) or k not in document]
    if missing:
        raise DataError(f"{path} is not a calibration (no {', '.join(missing)})", fix)
    if document.get("version") != VERSION:
        raise DataError(
            f"{path} is a calibration of version {document.get('version')}, not {VERSION}",
            "calibrate again with this version of wsanalysis",
        )
    return document


def fit_sentences(
    document: dict[str, Any],
    *,
    profile: str,
    gate_file_sha256: str | None,
    canary_share: float | None,
    window_s: float | None,
) -> list[str]:
    """Where a calibration does not describe this canary: another profile or gate file,
    another declared share, another length. Empty when it fits."""
    settings = document["settings"]
    out = []
    if settings.get("profile") != profile:
        out.append(
            f"This calibration is of profile {settings.get('profile')}, the verdict of "
            f"{profile}: its figures are not this judge's."
        )
    sha = settings.get("gate_file_sha256")
    if sha and gate_file_sha256 and sha != gate_file_sha256:
        out.append(
            f"This calibration used another gate file ({settings.get('gate_file')}): "
            "calibrate again with this canary's gates."
        )
    share = settings.get("canary_share")
    if canary_share is not None and share is not None and abs(share - canary_share) > 1e-9:
        out.append(
            f"It was calibrated at a canary share of {_percent(share)}; this canary declared "
            f"{_percent(canary_share)}, so its plan is for another traffic."
        )
    length = settings.get("window_s")
    if window_s and length and not 0.8 <= window_s / length <= 1.25:
        out.append(
            f"It was calibrated for canaries of {format_duration(length).removeprefix('about ')}"
            f"; this one ran {format_duration(window_s).removeprefix('about ')}: the false "
            "NO_GO rate above is for the calibrated length."
        )
    return out
