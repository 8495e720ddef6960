"""Episodes: the findings of one incident, across variants, with its scope.

The first question of an incident review is "was it the release?". Findings that overlap
in time (per-variant outages, close-code spikes, give-ups, a herd after a restart) are
one episode. Its scope says who was hit:

* `canary` or `control` when one variant was hit beyond the other;
* `fleet` when both were hit alike, or the data cannot tell them apart.

The test is the judge's rate statistic (`stats.rates.compare_rates`: conditional binomial,
quasi-Poisson with batch means when overdispersed): per minute of the episode, each
variant's *excess* events (observed minus the median of the previous two hours, the
baseline the detectors use) per exposure (connections opened, spread over the window),
canary against control. A fleet-wide incident gives a ratio near ×1 whatever the traffic
split; a canary-only one a large ratio, a control-only one a small one. "Beyond" needs
the 95% interval to exclude ×1 *and* the estimate to be at least ×2 (or at most ×0.5): a
fleet-wide incident that hit the canary a little harder stays fleet-wide, and says so.

Findings that span most of the window (a duration regression, a whole-window TTFB or
duplicate comparison) are not incidents in time: each kind of them is its own episode,
scoped by the variant the detector found worse (those detectors compare canary with
control themselves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import polars as pl

from wsanalysis.incident.findings import SEVERITY_ORDER, Finding, Severity, is_shift
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.scan import expected_counts
from wsanalysis.incident.signals import SIGNALS, exposure, signal_counts
from wsanalysis.stats.rates import RateComparison, compare_rates

Scope = Literal["fleet", "canary", "control"]
#: With equal severity, the release question ranks a canary-only episode first.
SCOPE_RANK: dict[str, int] = {"canary": 0, "fleet": 1, "control": 2}
GAP = timedelta(minutes=1)  # findings this close in time belong to one episode
#: A finding in time of a shifted signal starting this long before to after the shift's
#: start is its onset, told in the shift's episode.
ONSET = (timedelta(minutes=30), timedelta(hours=2))
WINDOW_WIDE = 0.5  # a finding spanning this share of the window is not an incident in time
BEYOND = 2.0  # "hit beyond the other": significant and at least ×2 (or at most ×0.5)
LEVEL = 0.95

#: The cause first: the finding whose kind comes first names the episode's event signal.
CAUSES = ("server_restart", "network_outage", "auth_spike", "error_spike", "close_code_spike",
          "reconnect_storm", "thundering_herd", "give_ups")  # fmt: skip


@dataclass(frozen=True)
class Attribution:
    """The scope test: excess events per exposure, canary against control."""

    signal: str  # what was counted, e.g. "1006 closes (server)"
    comparison: RateComparison | None
    excess: dict[str, float]  # excess events per variant over the episode
    summary: dict[str, Any] | None = None  # a level shift's own comparison, told as is

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        out: dict[str, Any] = {"signal": self.signal, "excess": dict(self.excess)}
        if self.summary:
            out |= {k: _finite(v) if isinstance(v, float) else v for k, v in self.summary.items()}
        if c is not None:
            ci = c.confidence_interval()
            out |= {
                "ratio": _finite(c.statistic), "ci_low": _finite(ci.low),
                "ci_high": _finite(ci.high), "level": ci.level, "pvalue": _finite(c.pvalue),
                "sufficient": c.sufficient, "method": c.method,
            }  # fmt: skip
        return out


@dataclass(frozen=True)
class Episode:
    """One incident in time: its span, who it hit, how bad, one sentence, its findings."""

    start: datetime
    end: datetime
    scope: Scope
    severity: Severity
    sentence: str
    findings: tuple[Finding, ...]
    attribution: Attribution | None = None

    @property
    def kinds(self) -> list[str]:
        return list(dict.fromkeys(f.kind for f in self.findings))

    @property
    def variants(self) -> list[str]:
        return sorted({f.variant for f in self.findings})

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "scope": self.scope,
            "severity": self.severity,
            "sentence": self.sentence,
            "kinds": self.kinds,
            "variants": self.variants,
            "test": self.attribution.to_json() if self.attribution else None,
            "findings": [f.to_json() for f in self.findings],
        }

    # -- rich display (rendering lives in wsanalysis.display) ----------------
    def __repr__(self) -> str:
        from wsanalysis.display import episode_text

        return episode_text(self)

    def _repr_html_(self) -> str:
        from wsanalysis.display import episode_html

        return episode_html(self)

    def to_polars(self) -> pl.DataFrame:
        from wsanalysis.display import findings_frame

        return findings_frame(list(self.findings))


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _signal(f: Finding) -> str | None:
    """The signal a finding counts: its own word, else its kind's, else its close code's."""
    name = f.numbers.get("signal") or CAUSE_SIGNAL.get(f.kind)
    if name is None and f.numbers.get("code") is not None:
        code = int(f.numbers["code"])
        name = next((n for n, s in SIGNALS.items() if code in s.codes), None)
    return "reconnects" if name == "opens" else name


def group(findings: list[Finding], window_seconds: float | None = None) -> list[list[Finding]]:
    """Findings overlapping in time (within `GAP`), across variants, as groups in time
    order. A variant's level shifts are one group, with the findings in time of the same
    signal on that variant that start at the shift (an onset seen against its own past);
    other window-wide findings are grouped by kind on their own."""
    shifts: dict[str, list[Finding]] = {}
    for f in findings:
        if is_shift(f):
            shifts.setdefault(f.variant, []).append(f)
    wide: dict[str, list[Finding]] = {}
    timed: list[Finding] = []
    for f in findings:
        if is_shift(f):
            continue
        onset = [g for g in shifts.get(f.variant, []) if _signal(g) == _signal(f)
                 and g.start - ONSET[0] <= f.start <= g.start + ONSET[1]]  # fmt: skip
        span = (f.end - f.start).total_seconds()
        if onset:
            shifts[f.variant].append(f)
        elif window_seconds and span >= WINDOW_WIDE * window_seconds:
            wide.setdefault(f.kind, []).append(f)
        else:
            timed.append(f)
    groups: list[list[Finding]] = []
    end: datetime | None = None
    for f in sorted(timed, key=lambda f: (f.start, f.end, f.variant, f.kind)):
        if end is not None and f.start <= end + GAP:
            groups[-1].append(f)
            end = max(end, f.end)
        else:
            groups.append([f])
            end = f.end
    groups += list(wide.values()) + list(shifts.values())
    return sorted(groups, key=lambda g: min(f.start for f in g))


def _cause(findings: list[Finding]) -> Finding | None:
    """The finding whose events the scope is tested on: the most severe, then by kind
    (the cause first: a restart before the herd it set off)."""
    ranked = [f for f in findings if f.kind in CAUSES]
    if not ranked:
        return None
    return min(ranked, key=lambda f: (-SEVERITY_ORDER[f.severity], CAUSES.index(f.kind)))


#: The signal each kind of cause counts (a finding that names its signal says it itself).
CAUSE_SIGNAL = {"server_restart": "restarts", "thundering_herd": "restarts",
                "network_outage": "1006", "auth_spike": "auth", "error_spike": "errors",
                "reconnect_storm": "reconnects", "give_ups": "give_ups"}  # fmt: skip


def event_counts(data: IncidentData, cause: Finding) -> tuple[pl.DataFrame | None, str, str]:
    """The events that make `cause`'s kind, per minute and variant: (counts, label, source)."""
    name = _signal(cause)
    if name not in SIGNALS:
        return None, "", ""
    signal = SIGNALS[name]
    counts, source = signal_counts(data, signal, prefer="rum" if signal.beacon else "server")
    return counts, f"{signal.label} ({source})", source


def attribute(
    data: IncidentData, findings: list[Finding], start: datetime, end: datetime
) -> Attribution | None:
    """Excess events per open connection over the cause's span within [start, end),
    canary against control (None when the episode has no countable cause, or a variant
    has no exposure). The excess of a minute is its count less the variant's usual rate
    (the episode left out) times its open connections. The cause's span, not the
    episode's: a weak finding alongside does not dilute the test."""
    cause = _cause(findings)
    if cause is None:
        return None
    start, end = max(start, cause.start), min(end, cause.end)
    counts, signal, source = event_counts(data, cause)
    if counts is None:
        return None
    exposed = exposure(data, source)
    if exposed is None or not {"canary", "control"} <= set(exposed["variant"].unique()):
        return None
    spans = {v: [(start, end)] for v in ("canary", "control")}
    marked = expected_counts(counts, exposed, spans).filter(
        pl.col("bucket").is_between(start, end, closed="left")
    )
    marked = marked.with_columns((pl.col("n") - pl.col("baseline")).clip(lower_bound=0).alias("x"))
    minutes_hit = marked["bucket"].unique().sort()
    if minutes_hit.is_empty():
        return None
    grid = pl.DataFrame({"bucket": minutes_hit})
    inside = exposed.filter(pl.col("bucket").is_between(start, end, closed="left"))

    def column(frame: pl.DataFrame, variant: str, name: str) -> np.ndarray:
        part = frame.filter(pl.col("variant") == variant).select("bucket", name)
        return grid.join(part, on="bucket", how="left").sort("bucket")[name].fill_null(
            0.0).to_numpy()  # fmt: skip

    # a variant without the series (no 4401 close on control) had no such event
    per = {v: column(marked, v, "x") for v in ("canary", "control")}
    load = {v: np.maximum(column(inside, v, "n"), 1e-9) for v in ("canary", "control")}
    excess = {v: float(x.sum()) for v, x in per.items()}
    if sum(excess.values()) <= 0 or min(x.sum() for x in load.values()) <= 1e-6:
        return Attribution(signal, None, excess)
    comparison = compare_rates(per["canary"], load["canary"], per["control"], load["control"],
                               level=LEVEL, method="robust")  # fmt: skip
    return Attribution(signal, comparison, excess)


def _times(value: float) -> str:
    if not math.isfinite(value):
        return "×∞" if value > 0 else "–"
    return f"×{value:.2g}" if value < 10 else f"×{value:.0f}"


def decide(
    attribution: Attribution | None, findings: list[Finding], variants: list[str]
) -> tuple[Scope, str]:
    """The scope and the attribution sentence."""
    hit = sorted({f.variant for f in findings})
    if not {"canary", "control"} <= set(variants):
        names = ", ".join(variants) or "one variant"
        return "fleet", f"only {names} in the data: the whole fleet, no control to compare"
    c = attribution.comparison if attribution else None
    if c is None or not c.sufficient:
        if attribution is None:
            why = f"{', '.join(sorted({f.kind for f in findings}))}: no event rate to compare"
        else:
            why = f"too few excess {attribution.signal} to compare the variants"
        if hit == ["canary"]:
            return "canary", f"seen on the canary only ({why}): the release is suspect"
        if hit == ["control"]:
            return "control", f"seen on control only ({why}): not the release"
        return "fleet", f"seen on canary and control ({why}): not attributed to the release"
    ci = c.confidence_interval()
    figure = f"{_times(c.statistic)}, {ci.level:.0%} CI {_times(ci.low)} to {_times(ci.high)}"
    if ci.low > 1.0 and c.statistic >= BEYOND:
        return "canary", f"hit the canary beyond control ({figure}): the release is suspect"
    if ci.high < 1.0 and c.statistic <= 1.0 / BEYOND:
        return "control", f"hit control beyond the canary ({figure}): not the release"
    if ci.low >= 1.0 / BEYOND and ci.high <= BEYOND:
        return "fleet", f"hit canary and control alike ({figure}): not the release"
    return "fleet", f"hit canary and control, not shown to differ ({figure}): not the release"


def _kind_text(kind: str) -> str:
    return kind.replace("_", " ")


def _shift_episode(data: IncidentData, findings: tuple[Finding, ...]) -> Episode:
    """A variant worse than the other all along, or since a point: scoped to it."""
    shifted = [f for f in findings if is_shift(f)]
    variant = shifted[0].variant
    other = shifted[0].numbers.get("against", "control")
    start = min(f.start for f in findings)
    end = max(f.end for f in findings)
    whole = start <= data.window.start
    when = "over the whole window" if whole else f"since {start:%H:%M} UTC"
    parts = []
    for f in sorted(shifted, key=lambda f: f.numbers.get("pvalue", 1.0)):
        n = f.numbers
        if f.kind == "ttfb_degradation":
            parts.append(f"first-byte p95 +{n['difference']:.0f} ms")
        elif f.kind == "duration_regression":
            parts.append(f"connection durations median ×{n['ratio']:.2g}")
        else:
            parts.append(f"{SIGNALS[n['signal']].label} {_times(n['ratio'])} "
                         f"(95% CI {_times(n['ci_low'])} to {_times(n['ci_high'])})")  # fmt: skip
    verdict = "the release is suspect" if variant == "canary" else "not the release"
    sentence = (f"{variant.capitalize()} differs from {other} {when}: {'; '.join(parts)}: "
                f"{verdict}.")  # fmt: skip
    severity = max((f.severity for f in findings), key=SEVERITY_ORDER.__getitem__)
    top = min(shifted, key=lambda f: f.numbers.get("pvalue", 1.0))
    summary = {k: top.numbers.get(k) for k in ("signal", "ratio", "difference", "ci_low",
               "ci_high", "pvalue", "against", "since") if k in top.numbers}  # fmt: skip
    # the keys a timed episode's test has, so a reader of findings.json finds them all
    summary |= {"level": LEVEL, "sufficient": True,
                "method": top.numbers.get("method", "log-rank test")}  # fmt: skip
    ordered = tuple(sorted(findings, key=lambda f: (f.start, f.variant, f.kind)))
    scope: Scope = "canary" if variant == "canary" else "control" if variant == "control" \
        else "fleet"  # fmt: skip
    excess = {variant: top.numbers["excess"]} if "excess" in top.numbers else {}
    return Episode(start, end, scope, severity, sentence, ordered,
                   Attribution("level shift", None, excess, summary))  # fmt: skip


def episode_of(data: IncidentData, findings: list[Finding]) -> Episode:
    if any(is_shift(f) for f in findings):
        return _shift_episode(data, tuple(findings))
    start = min(f.start for f in findings)
    end = max(f.end for f in findings)
    ordered = tuple(sorted(findings, key=lambda f: (f.start, f.variant, f.kind)))
    attribution = attribute(data, list(ordered), start, end)
    scope, because = decide(attribution, list(ordered), data.variants)
    severity = max((f.severity for f in ordered), key=SEVERITY_ORDER.__getitem__)
    what = ", ".join(_kind_text(k) for k in dict.fromkeys(f.kind for f in ordered))
    sentence = f"{what.capitalize()}, {start:%H:%M} to {end:%H:%M} UTC: {because}."
    if scope == "fleet" and {"canary", "control"} <= {f.variant for f in ordered}:
        only = {
            v: [k for k in dict.fromkeys(f.kind for f in ordered if f.variant == v)
                if all(g.kind != k for g in ordered if g.variant != v)]
            for v in ("canary", "control")
        }  # fmt: skip
        extra = [
            f"{', '.join(_kind_text(k) for k in ks)} on {v} only" for v, ks in only.items() if ks
        ]
        if extra:
            sentence = sentence[:-1] + f"; {'; '.join(extra)}."
    return Episode(start, end, scope, severity, sentence, ordered, attribution)


def episodes(data: IncidentData, findings: list[Finding]) -> list[Episode]:
    """The findings grouped into episodes, each with its scope, ranked (`rank`)."""
    seconds = data.window.duration.total_seconds() if data.window else None
    return rank([episode_of(data, g) for g in group(findings, seconds)])


def rank(found: list[Episode]) -> list[Episode]:
    """Most severe first; at equal severity canary-only, then fleet-wide, then control-only
    (the release question); then in time order."""
    return sorted(found, key=lambda e: (-SEVERITY_ORDER[e.severity], SCOPE_RANK[e.scope], e.start))
