"""What the canary notebook computes, as functions a test can reach.

The notebook stays narrative and plots: it judges with `wsanalysis.judge(...)` (the
public call: the same loader and the same judge as `wsanalysis judge`), writes
`verdict.json` with `write_verdict`, and shows `gate_rows` and `settle_paths` of that
verdict.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.canary.evidence import one_sided_alpha
from wsanalysis.canary.formatting import format_value
from wsanalysis.canary.gates import Gate, Profile
from wsanalysis.canary.judge import evaluate_gate
from wsanalysis.canary.kinds import kind_for
from wsanalysis.canary.verdict import Verdict
from wsanalysis.frames.measures import Window
from wsanalysis.stats.settle import half_width_ratio

VERDICT_FILE = "verdict.json"


def write_verdict(verdict: Verdict, output_dir: str | Path) -> Path:
    """`verdict.json` in `output_dir` (the executor adds the run's metadata after)."""
    path = Path(output_dir) / VERDICT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict.to_json(), indent=2, default=str) + "\n")
    return path


def _number(value: Any) -> float | None:
    """verdict.json's numbers back as floats (JSON stores infinities as "inf")."""
    if value is None:
        return None
    return float(value)


def _relative(gate: dict[str, Any], spec: Gate | None) -> bool:
    """A ratio to control: as verdict.json says (`scale`), or for a document written before
    it said so, as the gate file does."""
    if "scale" in gate:
        return gate["scale"] == "ratio"
    return spec is not None and spec.relative


def _ratio(value: Any) -> str:
    value = _number(value)
    if value is None or math.isnan(value):
        return "n/a"
    return "×∞" if math.isinf(value) else f"×{value:.2f}"


def _difference(gate: dict[str, Any], spec: Gate | None) -> str:
    e = gate["evidence"]
    unit = gate["unit"]
    if e.get("effect") is None:
        return "n/a"
    own = _kind_cell(gate)  # a kind's own figure (a spike's worst bucket)
    if own is not None:
        return own
    if _relative(gate, spec):
        text = _ratio(e["effect"])
        low, high = _ratio(e.get("ci_low")), _ratio(e.get("ci_high"))
    else:
        signed = gate["comparison"] == "control"
        text = format_value(_number(e["effect"]), unit, signed)
        low = format_value(_number(e.get("ci_low")), unit, signed)
        high = format_value(_number(e.get("ci_high")), unit, signed)
    return f"{text} [{low}, {high}]"


def _kind_cell(gate: dict[str, Any]) -> str | None:
    try:
        kind = kind_for(gate.get("statistic", ""), gate.get("comparison", "control"))
    except KeyError:  # a statistic this version does not know: the general figure
        return None
    return kind.cell(gate)


def _threshold(gate: dict[str, Any], spec: Gate | None) -> str:
    limit = _number(gate["evidence"]["limit"])
    word = "≤" if gate["worse"] == "increase" else "≥"
    if _relative(gate, spec):
        return f"{word} {_ratio(limit)} control"
    if gate["comparison"] == "control":
        return f"{word} control {format_value(limit, gate['unit'], True)}"
    return f"{word} {format_value(limit, gate['unit'])}"


def gate_rows(document: dict[str, Any], profile: Profile | None = None) -> pl.DataFrame:
    """The manager's gate table: one row per gate, every figure already formatted.

    Columns: gate, critical, canary, control, difference (with its CI), threshold,
    decision, sentence. Relative gates show ratios (×), others the gate's unit.
    """
    specs = {g.name: g for g in profile.gates} if profile is not None else {}
    rows = []
    for gate in document.get("gates", []):
        e = gate["evidence"]
        spec = specs.get(gate["name"])
        rows.append(
            {
                "gate": gate["title"],
                "critical": "yes" if gate["critical"] else "no",
                "canary": format_value(_number(e.get("canary")), gate["unit"]),
                "control": format_value(_number(e.get("control")), gate["unit"]),
                "difference (95% CI)": _difference(gate, spec),
                "threshold": _threshold(gate, spec),
                "decision": gate["decision"],
                "sentence": gate["sentence"],
            }
        )
    schema = [
        "gate",
        "critical",
        "canary",
        "control",
        "difference (95% CI)",
        "threshold",
        "decision",
        "sentence",
    ]
    return pl.DataFrame(rows, schema={c: pl.Utf8 for c in schema})


def input_rows(document: dict[str, Any]) -> pl.DataFrame:
    """What the verdict was computed from: source, window, file fingerprints."""
    inputs = document.get("inputs", {})
    rows = [{"input": k, "value": str(v)} for k, v in inputs.items() if k != "fingerprints"]
    window = document.get("window") or {}
    rows += [{"input": f"window {k}", "value": str(v)} for k, v in window.items()]
    rows += [
        {"input": f"sha256 {name}", "value": digest}
        for name, digest in (inputs.get("fingerprints") or {}).items()
    ]
    gate_file = document.get("gate_file") or {}
    if gate_file:
        rows.append({"input": "gate file", "value": f"{gate_file['path']} ({gate_file['sha256']})"})
    return pl.DataFrame(rows, schema={"input": pl.Utf8, "value": pl.Utf8})


SETTLE_SCHEMA = {
    "gate": pl.Utf8,
    "hours": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "estimate": pl.Float64,
    "bound": pl.Float64,
    "tolerance": pl.Float64,
    "kind": pl.Utf8,  # "observed" or "projection"
}


def settle_paths(verdict: Verdict, points: int = 6) -> pl.DataFrame:
    """Each gate's interval over the window (judged again on its first 1/points, 2/points,
    ... of the data the verdict judged), and its projection at the observed traffic until
    it would settle (or to twice the window when it has): what the settle chart draws.

    On a gate's effect scale (ratio, difference or the figure), beside its two lines.
    """
    data = verdict.data
    window = data.resolved_window() if data is not None else None
    rows: list[dict[str, Any]] = []
    if data is None or window is None or window.duration.total_seconds() <= 0:
        return pl.DataFrame(schema=SETTLE_SCHEMA)
    gates = [result.gate for result in verdict.gates if result.gate is not None]
    results = {g.name: g for g in verdict.gates}
    total = window.duration.total_seconds() / 3600
    for k in range(1, points + 1):
        end = window.start + window.duration * (k / points)
        part = Window(window.start, end)
        cut = replace(
            data,
            samples=data.samples.filter(pl.col("timestamp") <= end),
            beacons=None if data.beacons is None else data.beacons.filter(pl.col("ts") <= end),
            window=part,
        )
        for gate in gates:
            found = evaluate_gate(gate, cut, part)
            if found.missing or found.ci_low is None or found.ci_high is None:
                continue
            rows.append(_settle_row(gate, found, total * k / points, "observed"))
    for gate in gates:
        result = results.get(gate.name)
        if result is None or result.evidence.missing or result.evidence.effect is None:
            continue
        rows += _projection(gate, result, total)
    return pl.DataFrame(rows, schema=SETTLE_SCHEMA)


def _settle_row(gate: Gate, found, hours: float, kind: str, low=None, high=None, estimate=None):
    return {
        "gate": gate.name,
        "hours": hours,
        "low": _finite(found.ci_low if low is None else low),
        "high": _finite(found.ci_high if high is None else high),
        "estimate": _finite(found.effect if estimate is None else estimate),
        "bound": float(gate.bound_line),
        "tolerance": float(gate.tolerance),
        "kind": kind,
    }


def _finite(value: Any) -> float | None:
    value = _number(value)
    return value if value is not None and math.isfinite(value) else None


def _projection(gate: Gate, result, hours: float) -> list[dict[str, Any]]:
    """The interval narrowing around today's estimate, as more of the same traffic comes."""
    e = result.evidence
    low, high, effect = _finite(e.ci_low), _finite(e.ci_high), _finite(e.effect)
    if low is None or high is None or effect is None:
        return []
    until = hours + (result.settle_in_s or 0) / 3600
    until = max(until, 2 * hours)
    log = e.log_scale and low > 0 and effect > 0
    out = []
    for step in range(0, 13):
        at = hours + (until - hours) * step / 12
        shrink = half_width_ratio(at / hours, anytime=e.anytime, alpha=one_sided_alpha(gate))
        if log:
            lo = effect * (low / effect) ** shrink
            hi = effect * (high / effect) ** shrink
        else:
            lo, hi = effect - (effect - low) * shrink, effect + (high - effect) * shrink
        out.append(_settle_row(gate, e, at, "projection", lo, hi, effect))
    return out
