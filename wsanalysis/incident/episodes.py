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

from wsanalysis.incident.close_codes import code_counts
from wsanalysis.incident.findings import SEVERITY_ORDER, Finding, Severity
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.signals import rum_counts, server_counts, with_baseline
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL
from wsanalysis.stats.rates import RateComparison, compare_rates

Scope = Literal["fleet", "canary", "control"]
#: With equal severity, the release question ranks a canary-only episode first.
SCOPE_RANK: dict[str, int] = {"canary": 0, "fleet": 1, "control": 2}
GAP = timedelta(minutes=1)  # findings this close in time belong to one episode
WINDOW_WIDE = 0.5  # a finding spanning this share of the window is not an incident in time
BEYOND = 2.0  # "hit beyond the other": significant and at least ×2 (or at most ×0.5)
LEVEL = 0.95

#: The cause first: the finding whose kind comes first names the episode's event signal.
CAUSES = ("server_restart", "network_outage", "auth_spike", "close_code_spike",
          "reconnect_storm", "thundering_herd", "give_ups")  # fmt: skip
RESTART_CODES = (1012, 1001)
AUTH_CODES = (4401, 4403, 403)


@dataclass(frozen=True)
class Attribution:
    """The scope test: excess events per exposure, canary against control."""

    signal: str  # what was counted, e.g. "1006 closes (server)"
    comparison: RateComparison | None
    excess: dict[str, float]  # excess events per variant over the episode

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        out: dict[str, Any] = {"signal": self.signal, "excess": dict(self.excess)}
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


def group(findings: list[Finding], window_seconds: float | None = None) -> list[list[Finding]]:
    """Findings overlapping in time (within `GAP`), across variants, as groups in time
    order; window-wide findings grouped by kind on their own."""
    wide: dict[str, list[Finding]] = {}
    timed: list[Finding] = []
    for f in findings:
        span = (f.end - f.start).total_seconds()
        if window_seconds and span >= WINDOW_WIDE * window_seconds:
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
    groups += list(wide.values())
    return sorted(groups, key=lambda g: min(f.start for f in g))


def _cause(findings: list[Finding]) -> Finding | None:
    ranked = [f for f in findings if f.kind in CAUSES]
    return min(ranked, key=lambda f: CAUSES.index(f.kind)) if ranked else None


def _codes_counts(data: IncidentData, codes: tuple[int, ...]) -> tuple[pl.DataFrame | None, str]:
    """Closes of any of `codes` per minute and variant, from one source for every code."""
    parts = [code_counts(data, code) for code in codes]
    for source in ("server", "rum"):
        frames = [c for c, s in parts if c is not None and s == source]
        if frames:
            summed = pl.concat(frames).group_by("bucket", "variant").agg(pl.col("n").sum())
            return summed.sort("variant", "bucket"), source
    return None, ""


def event_counts(data: IncidentData, cause: Finding) -> tuple[pl.DataFrame | None, str, str]:
    """The events that make `cause`'s kind, per minute and variant: (counts, label, source)."""
    kind = cause.kind
    if kind in ("server_restart", "thundering_herd"):
        codes: tuple[int, ...] | None = RESTART_CODES
    elif kind == "network_outage":
        codes = (1006,)
    elif kind == "auth_spike":
        codes = AUTH_CODES
    elif kind == "close_code_spike" and cause.numbers.get("code") is not None:
        codes = (int(cause.numbers["code"]),)
    else:
        codes = None
    if codes is not None:
        counts, source = _codes_counts(data, codes)
        label = "/".join(str(c) for c in codes)
        return counts, f"{label} closes ({source})", source
    beacon = {"reconnect_storm": "ws.reconnect_scheduled", "give_ups": "ws.give_up"}.get(kind)
    if beacon is None:
        return None, "", ""
    return rum_counts(data, beacon), f"{beacon} beacons (rum)", "rum"


def exposure(data: IncidentData, source: str) -> dict[str, float]:
    """Connections opened per variant over the window, counted by `source` (the same
    source as the events, so RUM sampling cancels in the ratio)."""
    counts = (
        server_counts(data, CONNECTIONS_TOTAL)
        if source == "server"
        else rum_counts(data, "ws.open")
    )
    if counts is None:
        return {}
    totals = counts.group_by("variant").agg(pl.col("n").sum())
    return {v: float(n) for v, n in totals.iter_rows() if n > 0}


def attribute(
    data: IncidentData, findings: list[Finding], start: datetime, end: datetime
) -> Attribution | None:
    """Excess events per exposure in [start, end), canary against control (None when the
    episode has no countable cause, or a variant has no exposure)."""
    cause = _cause(findings)
    if cause is None:
        return None
    counts, signal, source = event_counts(data, cause)
    if counts is None:
        return None
    exposed = exposure(data, source)
    if not {"canary", "control"} <= exposed.keys():
        return None
    marked = with_baseline(counts).filter(pl.col("bucket").is_between(start, end, closed="left"))
    marked = marked.with_columns((pl.col("n") - pl.col("baseline")).clip(lower_bound=0).alias("x"))
    minutes_hit = marked["bucket"].unique().sort()
    if minutes_hit.is_empty():
        return None
    grid = pl.DataFrame({"bucket": minutes_hit})
    per = {  # a variant without the series (no 4401 close on control) had no such event
        v: grid.join(marked.filter(pl.col("variant") == v), on="bucket", how="left")
        .sort("bucket")["x"]
        .fill_null(0.0)
        .to_numpy()
        for v in ("canary", "control")
    }
    excess = {v: float(x.sum()) for v, x in per.items()}
    minutes = max(1, round(data.window.duration.total_seconds() / 60)) if data.window else 1
    if sum(excess.values()) <= 0:
        return Attribution(signal, None, excess)
    buckets = len(per["canary"])
    comparison = compare_rates(
        per["canary"], np.full(buckets, exposed["canary"] / minutes),
        per["control"], np.full(buckets, exposed["control"] / minutes),
        level=LEVEL, method="robust",
    )  # fmt: skip
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


def episode_of(data: IncidentData, findings: list[Finding]) -> Episode:
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
