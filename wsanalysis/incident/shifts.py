"""Level shifts: one variant worse than the other for the whole window, or since a point.

A regression a release brings is there all along (or from the moment it took traffic):
against its own past it is no elevation at all. Against the other variant, in the same
minutes, it is. For every signal the same scan runs: candidate starts τ on a grid (the
window's start, then every twelfth of it, while a quarter of the window remains), the
variants compared over [τ, end), the τ with the strongest evidence kept:

* counts (errors, abnormal closes, auth closes, reconnects): the judge's rate ratio per
  open connection (`stats.rates.compare_rates`, quasi-Poisson with batch means over the
  minutes, so clustered errors and load swings widen it), material at ×`MATERIAL` or
  beyond;
* time to first byte: the p95 and median differences with session-clustered standard
  errors (`stats.quantiles`, Woodruff), material when the p95 difference's 95% interval
  is `MIN_TTFB_MS` or more;
* connection durations: the log-rank test on each session's first connection opened
  since τ (open ones censored; those an incident in time cut, or opened in the half hour
  after it, left out for both variants), material when the median is `SHORTER` of the
  other's or less.

The incidents in time already found (storms, spikes, outages, with two minutes each
side) are left out of every comparison, and a shift must hold over each half of what
remains of [τ, end) (materially, in the same direction, p < 0.1): a burst after τ is an
elevation in time, not a level. The false-alarm rate is
stated: `FALSE_ALARMS` shifts per analysis over every signal, candidate and direction
(Bonferroni), `STRICT` times fewer for one rated medium or high. Of the candidates that
pass, the start reported is the one that best splits the window: strongest evidence
after it, weakest before it (`_choose`), so a regression all along reads "over the
whole window" and one since a point starts there. Severity is the share
of the worse variant's users the difference hit (`impact`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from scipy import stats

from wsanalysis.incident import impact
from wsanalysis.incident.findings import Finding, NotRun, is_shift
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.scan import burst
from wsanalysis.incident.signals import (
    SIGNALS,
    Signal,
    exposure,
    live_connections,
    signal_counts,
)
from wsanalysis.incident.survival import connections
from wsanalysis.incident.ttfb import replies
from wsanalysis.stats.quantiles import quantile_difference
from wsanalysis.stats.rates import compare_rates
from wsanalysis.stats.survival import kaplan_meier, logrank

COUNT_SIGNALS = ("errors", "1006", "auth", "reconnects")
TESTS = (*COUNT_SIGNALS, "ttfb", "duration")
FALSE_ALARMS = 0.05  # false shifts per analysis, over every signal, candidate, direction
STRICT = 10.0
CANDIDATES = 12  # τ every twelfth of the window
KEEP = 0.25  # ... while at least this share of the window remains after τ
MATERIAL = 1.5
MIN_TTFB_MS = 50.0
SHORTER = 0.8
PERSIST_P = 0.1
MIN_EVENTS = 20
VARIANTS = ("canary", "control")


@dataclass(frozen=True)
class Shift:
    """One signal's best candidate: since when, which variant is worse, by how much."""

    signal: str
    since: datetime
    worse: str
    statistic: float  # the ratio (counts, durations' medians) or the difference (ms)
    low: float
    high: float
    pvalue: float
    numbers: dict


Spans = list[tuple[datetime, datetime]]
AROUND = timedelta(minutes=2)  # left out on each side of an incident in time
#: Connections opened this long after an incident are its reconnect wave: left out too.
AFTERMATH = timedelta(minutes=30)


def quiet_spans(timed: list[Finding]) -> Spans:
    """The spans of the incidents in time (a few minutes each side, overlapping ones
    joined), left out of every comparison: a shift is what remains once they are taken
    out (a storm is not a level)."""
    spans: Spans = []
    for a, b in sorted((f.start - AROUND, f.end + AROUND) for f in timed if not is_shift(f)):
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans


def _outside(times: pl.Expr | pl.Series, spans: Spans):
    keep = times.is_not_null()
    for a, b in spans:
        keep = keep & ~times.is_between(a, b, closed="left")
    return keep


def candidates(data: IncidentData) -> list[datetime]:
    """The window's start, then every twelfth of it (to the minute)."""
    start, duration = data.window.start, data.window.duration
    step = timedelta(minutes=max(1, round(duration / timedelta(minutes=1) / CANDIDATES)))
    return [start + k * step for k in range(CANDIDATES) if k * step <= (1 - KEEP) * duration]


def level(data: IncidentData) -> float:
    return FALSE_ALARMS / (len(TESTS) * len(candidates(data)))


# -- counts ---------------------------------------------------------------------------
def _per_minute(data: IncidentData, signal: Signal):
    counts, source = signal_counts(data, signal)
    if counts is None:
        return None
    x = exposure(data, source)
    if x is None:
        return None
    table = counts.join(x.rename({"n": "x"}), on=["bucket", "variant"], how="left").with_columns(
        pl.col("x").fill_null(0.0)
    )
    per = {}
    for v in VARIANTS:
        part = table.filter(pl.col("variant") == v).sort("bucket")
        if part.is_empty() or part["x"].sum() <= 0:
            return None
        per[v] = (part["bucket"], part["n"].to_numpy(), part["x"].to_numpy())
    return per, source


def _between(times: pl.Series, since, until, spans: Spans) -> np.ndarray:
    keep = (times >= since) & _outside(times, spans)
    return (keep & (times < until) if until is not None else keep).to_numpy()


def _rates(per, since: datetime, until: datetime | None = None, spans: Spans = ()):
    a, b = per["canary"], per["control"]
    keep_a, keep_b = _between(a[0], since, until, spans), _between(b[0], since, until, spans)
    if keep_a.sum() < 3 or keep_a.sum() != keep_b.sum():
        return None
    if a[2][keep_a].sum() <= 0 or b[2][keep_b].sum() <= 0:
        return None
    return compare_rates(a[1][keep_a], a[2][keep_a], b[1][keep_b], b[2][keep_b],
                         method="robust", min_events=MIN_EVENTS)  # fmt: skip


@dataclass(frozen=True)
class SessionRatio:
    """Events per session-minute, canary over control, with the variance clustered by
    session (a flaky user's many drops are one unit, as the judge's quantiles cluster)."""

    statistic: float
    pvalue: float
    low: float
    high: float
    events_canary: float
    events_control: float
    sessions: int

    @property
    def sufficient(self) -> bool:
        return self.events_canary + self.events_control >= MIN_EVENTS


def _sessions(data: IncidentData, signal: Signal) -> tuple[dict, dict]:
    """Per variant: each session's first and last beacon (epoch ms, session code), and the
    signal's beacons (epoch ms, session code). The sessions are read once per data, the
    signal's beacons once per signal."""

    def events() -> dict[str, dict[str, np.ndarray]]:
        matching = data.beacons.select(signal.rum_where()).to_series()  # row for row
        found = _coded(data).filter(matching)
        return {v: _arrays(found, v) for v in VARIANTS}

    spans = data.shared("session spans", lambda: {
        v: _spans(_arrays(_coded(data), v)) for v in VARIANTS})  # fmt: skip
    return spans, data.shared(("session events", signal), events)


def _coded(data: IncidentData) -> pl.DataFrame:
    """Every beacon's variant, time (epoch ms) and session code (once per data)."""
    return data.shared("session codes", lambda: data.beacons.select(
        "variant", pl.col("ts").dt.epoch("ms").alias("ms"),
        pl.col("session_id").cast(pl.Categorical).to_physical().alias("code"),
    ))  # fmt: skip


def _arrays(frame: pl.DataFrame, variant: str) -> dict[str, np.ndarray]:
    mine = frame.filter(pl.col("variant") == variant)
    return {c: mine[c].to_numpy() for c in mine.columns if c != "variant"}


def _spans(beacons: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each session's first and last beacon (epoch ms), in order of session code: indexed
    by the codes in numpy (a group-by of a million beacons by session takes ten times
    as long)."""
    ms, code = beacons["ms"], beacons["code"]
    size = int(code.max()) + 1 if len(code) else 0
    first, last = np.full(size, np.iinfo(ms.dtype).max), np.full(size, np.iinfo(ms.dtype).min)
    np.minimum.at(first, code, ms)
    np.maximum.at(last, code, ms)
    seen = np.flatnonzero(np.bincount(code, minlength=size))
    return {"code": seen.astype(code.dtype), "first": first[seen], "last": last[seen]}


def session_ratio(
    data: IncidentData,
    signal: Signal,
    since: datetime,
    until: datetime | None = None,
    spans: Spans = (),
) -> SessionRatio | None:
    """The signal's rate per session-minute in RUM over [since, until) less `spans`,
    canary/control: log ratio with a session-clustered (sandwich) standard error. A
    session's minutes are those between its first and last beacon."""
    lo = since.timestamp() * 1000
    hi = (until or data.window.end).timestamp() * 1000
    cut = [(a.timestamp() * 1000, b.timestamp() * 1000) for a, b in spans]
    sessions, events = _sessions(data, signal)
    logs, variances, counts, n_sessions = {}, {}, {}, 0
    for v in VARIANTS:
        first, last = sessions[v]["first"], sessions[v]["last"]
        start, stop = np.maximum(first, lo), np.minimum(last, hi)
        live = np.maximum(stop - start, 0.0)
        for a, b in cut:
            live -= np.maximum(np.minimum(stop, b) - np.maximum(start, a), 0.0)
        live = np.maximum(live, 0.0)
        seen = (stop >= start) & (first < hi) & (last >= lo)
        ms, code = events[v]["ms"], events[v]["code"]
        inside = (ms >= lo) & (ms < hi)
        for a, b in cut:
            inside &= ~((ms >= a) & (ms < b))
        codes = sessions[v]["code"]
        per = np.bincount(code[inside], minlength=int(codes.max()) + 1 if len(codes) else 1)
        y = per[codes][seen].astype(float)
        x = live[seen] / 60_000 + 1
        if len(y) < 2:
            return None
        total = y.sum() + 0.5
        rate = total / x.sum()
        logs[v] = math.log(rate)
        n = len(y)
        variances[v] = float(np.sum((y - rate * x) ** 2)) / total**2 * n / (n - 1) + 1 / total
        counts[v] = float(y.sum())
        n_sessions += n
    diff = logs["canary"] - logs["control"]
    se = math.sqrt(variances["canary"] + variances["control"])
    half = 1.959964 * se
    return SessionRatio(math.exp(diff), float(2 * stats.norm.sf(abs(diff / se))),
                        math.exp(diff - half), math.exp(diff + half), counts["canary"],
                        counts["control"], n_sessions)  # fmt: skip


def _count_shift(data: IncidentData, name: str, alpha: float, spans: Spans) -> Shift | None:
    """The best candidate of a count signal: the server's rate ratio per open connection
    when it counts the signal (confirmed, when RUM carries it too, by the session-clustered
    ratio: a few flaky users are not a release), else the RUM session-clustered ratio."""
    signal = SIGNALS[name]
    found = _per_minute(data, signal) if signal.metric is None else None
    per, source = found if found is not None and found[1] == "server" else (None, "rum")
    in_rum = data.has_rum and not signal.frames
    if per is None and not in_rum:
        return None

    def test(a: datetime, b: datetime | None = None):
        if per is not None:
            return _rates(per, a, b, spans)
        return session_ratio(data, signal, a, b, spans)

    def confirmed(a: datetime, b: datetime | None, up: bool) -> bool:
        if per is None or not in_rum:
            return True
        check = session_ratio(data, signal, a, b, spans)
        return check is None or not check.sufficient or (
            check.pvalue <= PERSIST_P and (check.statistic > 1) == up)  # fmt: skip

    passing = []
    for since in candidates(data):
        r = test(since)
        if r is None or not r.sufficient or not math.isfinite(r.statistic) or r.statistic <= 0:
            continue
        if not (r.statistic >= MATERIAL or r.statistic <= 1 / MATERIAL) or r.pvalue > alpha:
            continue
        up = r.statistic > 1
        half = since + (data.window.end - since) / 2
        if not all(_holds(test(a, b), up) for a, b in ((since, half), (half, None))):
            continue
        if confirmed(since, None, up):
            passing.append((since, r.pvalue, up, r))

    def before(since: datetime, up: bool) -> float:
        if since <= data.window.start:
            return 1.0
        r = test(data.window.start, since)
        ok = r is not None and math.isfinite(r.statistic) and r.statistic > 0
        return _one_sided(r.pvalue if ok else None, r.statistic > 1 if ok else None, up)

    best = _choose(passing, before)
    if best is None:
        return None
    since, r = best[0], best[3]
    if per is not None:
        ci = r.confidence_interval()
        low, high, method, phi = ci.low, ci.high, r.method, r.dispersion
    else:
        low, high, method, phi = r.low, r.high, "events per session-minute, session-clustered", None
    worse = "canary" if r.statistic > 1 else "control"
    ratio, low, high = (r.statistic, low, high) if worse == "canary" else (
        1 / r.statistic, 1 / high, 1 / low)  # fmt: skip
    mine, other = (r.events_canary, r.events_control) if worse == "canary" else (
        r.events_control, r.events_canary)  # fmt: skip
    expected = mine / ratio if ratio > 0 else math.nan
    numbers = {"events": mine, "expected": expected, "excess": max(mine - expected, 0.0),
               "events_other": other, "dispersion": phi, "method": method, "source": source,
               "burst": 1.0}  # fmt: skip
    if per is not None:
        times, y, x = per[worse]
        after = _between(times, since, None, spans)
        numbers["burst"] = burst(y[after], x[after])
    return Shift(name, since, worse, ratio, low, high, r.pvalue, numbers)


# -- time to first byte ---------------------------------------------------------------
@dataclass(frozen=True)
class _Replies:
    """The RUM replies in time order as arrays (what every candidate slices)."""

    ms: np.ndarray
    ttfb: np.ndarray
    session: np.ndarray
    canary: np.ndarray

    @classmethod
    def of(cls, frame: pl.DataFrame) -> _Replies:
        frame = frame.select("ts", "ttfb_ms", "session", "variant").sort("ts")
        return cls(frame["ts"].dt.epoch("ms").to_numpy(), frame["ttfb_ms"].to_numpy(),
                   frame["session"].to_numpy(), (frame["variant"] == "canary").to_numpy())  # fmt: skip

    def between(self, since: datetime, until: datetime | None) -> slice:
        lo = np.searchsorted(self.ms, since.timestamp() * 1000, "left")
        hi = len(self.ms) if until is None else np.searchsorted(
            self.ms, until.timestamp() * 1000, "left")  # fmt: skip
        return slice(int(lo), int(hi))


def _ttfb(replies: _Replies, since: datetime, until: datetime | None = None, q: float = 0.95):
    part = replies.between(since, until)  # the incidents in time already left out
    values, sessions, canary = replies.ttfb[part], replies.session[part], replies.canary[part]
    if canary.sum() < 30 or (~canary).sum() < 30:
        return None
    return quantile_difference(
        values[canary], sessions[canary], values[~canary], sessions[~canary], q=q,
        method="woodruff",
    )  # fmt: skip


def _ttfb_evidence(replies, since, until=None) -> tuple[object, float, bool] | None:
    """(p95 comparison, p-value, slower = canary): the smaller of the p95's and the
    median's p-values, doubled (a shift of every reply shows best in the median, one of
    the slow tail only in the p95)."""
    part = replies.between(since, until)
    values, canary = replies.ttfb[part], replies.canary[part]
    if canary.sum() < 30 or (~canary).sum() < 30:
        return None
    point = np.quantile(values[canary], 0.95) - np.quantile(values[~canary], 0.95)
    if abs(point) < MIN_TTFB_MS / 2:  # cannot be material (nor hold over a half): no test
        return None
    p95, p50 = _ttfb(replies, since, until), _ttfb(replies, since, until, q=0.5)
    if p95 is None or p50 is None or not p95.sufficient:
        return None
    up = p95.statistic > 0
    pvalues = [r.pvalue for r in (p95, p50) if (r.statistic > 0) == up]
    return p95, min(1.0, 2 * min(pvalues)), up


def _material_ttfb(p95) -> bool:
    """The p95 difference is `MIN_TTFB_MS` or more at its 95% lower bound (picking the best
    of several starts would otherwise make a point estimate clear it by chance)."""
    ci = p95.confidence_interval()
    return ci.low >= MIN_TTFB_MS or ci.high <= -MIN_TTFB_MS


def _ttfb_shift(data: IncidentData, alpha: float, spans: Spans) -> Shift | None:
    if not data.has_rum:
        return None
    frame = _Replies.of(replies(data).filter(_outside(pl.col("ts"), spans)))
    passing = []
    for since in candidates(data):
        found = _ttfb_evidence(frame, since)
        if found is None or found[1] > alpha or not _material_ttfb(found[0]):
            continue
        half = since + (data.window.end - since) / 2
        halves = [_ttfb_evidence(frame, a, b) for a, b in ((since, half), (half, None))]
        if all(h is not None and h[1] <= PERSIST_P and h[2] == found[2]
               and abs(h[0].statistic) >= MIN_TTFB_MS / 2 for h in halves):  # fmt: skip
            passing.append((since, found[1], found[2], found[0]))

    def before(since: datetime, up: bool) -> float:
        found = _ttfb_evidence(frame, data.window.start, since) if since > data.window.start \
            else None  # fmt: skip
        return _one_sided(found[1] if found else None, found[2] if found else None, up)

    best = _choose(passing, before)
    if best is None:
        return None
    since, pvalue, r = best[0], best[1], best[3]
    ci = r.confidence_interval()
    worse = "canary" if r.statistic > 0 else "control"
    sign = 1 if worse == "canary" else -1
    low, high = sorted((sign * ci.low, sign * ci.high))
    mine, other = (r.canary, r.control) if worse == "canary" else (r.control, r.canary)
    part = frame.between(since, None)
    rows = frame.canary[part] == (worse == "canary")
    slow = np.quantile(frame.ttfb[part][~rows], 0.95)
    share = float(np.mean(frame.ttfb[part][rows] > slow)) - 0.05
    return Shift("ttfb", since, worse, sign * r.statistic, low, high, pvalue, {
        "p95_ms": mine, "reference_p95_ms": other, "difference_ms": sign * r.statistic,
        "ci_low_ms": low, "ci_high_ms": high, "excess_share": share, "method": r.method,
    })  # fmt: skip


# -- connection durations -------------------------------------------------------------
@dataclass(frozen=True)
class _Connections:
    """The RUM connections in order of opening, as arrays."""

    opened: np.ndarray  # epoch ms
    duration: np.ndarray
    observed: np.ndarray
    previous: np.ndarray  # the row of the session's previous connection (-1: none)
    canary: np.ndarray

    @classmethod
    def of(cls, frame: pl.DataFrame) -> _Connections:
        frame = frame.select("opened", "duration", "observed", "session_id", "variant").sort(
            "opened"
        )
        session = frame["session_id"].cast(pl.Categorical).to_physical().to_numpy()
        return cls(frame["opened"].dt.epoch("ms").to_numpy(), frame["duration"].to_numpy(),
                   frame["observed"].to_numpy(), _previous(session),
                   (frame["variant"] == "canary").to_numpy())  # fmt: skip


def _previous(group: np.ndarray) -> np.ndarray:
    """For each row, the row before it of the same group (-1: none): a stable sort by
    group keeps each group's rows in order, neighbours in it are consecutive rows."""
    order = np.argsort(group, kind="stable")
    same = group[order[1:]] == group[order[:-1]]
    previous = np.full(len(group), -1, dtype=np.int64)
    previous[order[1:][same]] = order[:-1][same]
    return previous


def _since(
    c: _Connections, since: datetime, start: datetime, until: datetime | None = None
) -> dict | None:
    """Each session's first connection opened since `since` (before `until`), per variant
    (from the window's start: those opened before it and closed in it too): (durations,
    observed). One per session: a flaky user's many short connections are one user, and
    the log-rank test needs independent units."""
    lo = 0 if since <= start else int(np.searchsorted(c.opened, since.timestamp() * 1000))
    hi = len(c.opened) if until is None else int(
        np.searchsorted(c.opened, until.timestamp() * 1000))  # fmt: skip
    rows = lo + np.flatnonzero(c.previous[lo:hi] < lo)  # no earlier one since `since`
    out = {}
    for v, flag in (("canary", True), ("control", False)):
        mine = rows[c.canary[rows] == flag]
        if c.observed[mine].sum() < MIN_EVENTS:
            return None
        out[v] = (c.duration[mine], c.observed[mine])
    return out


def _medians(parts):
    curves = {v: kaplan_meier(d, o) for v, (d, o) in parts.items()}
    return curves, {v: c.duration_quantile(0.5).estimate for v, c in curves.items()}


def _logrank(parts):
    (da, oa), (db, ob) = parts["canary"], parts["control"]
    return logrank(da, db, oa, ob)


def _connections(data: IncidentData) -> pl.DataFrame | None:
    return data.shared("connections", lambda: connections(data))


def _duration_shift(data: IncidentData, alpha: float, spans: Spans) -> Shift | None:
    frame = _connections(data)
    if frame is None:
        return None
    for a, b in spans:  # connections an incident cut, or opened in its aftermath, go: both
        ends = pl.col("opened") + pl.duration(milliseconds=(pl.col("duration") * 1000).cast(
            pl.Int64))  # fmt: skip
        cut = (pl.col("opened") < b) & (ends > a)
        frame = frame.filter(~(cut | pl.col("opened").is_between(b, b + AFTERMATH)))
    window = data.window
    frame = _Connections.of(frame)
    passing = []
    for since in candidates(data):
        parts = _since(frame, since, window.start)
        if parts is None:
            continue
        test = _logrank(parts)
        _, med = _medians(parts)
        ratio = _ratio(med["canary"], med["control"])
        if not (ratio <= SHORTER or ratio >= 1 / SHORTER) or not test.pvalue <= alpha:
            continue
        later = _since(frame, since + (window.end - since) / 2, window.start)
        if later is None:
            continue
        _, med_later = _medians(later)
        ratio_later = _ratio(med_later["canary"], med_later["control"])
        if _logrank(later).pvalue > PERSIST_P or (ratio_later < 1) != (ratio < 1):
            continue  # connections opened in the first half are still open in the second
        passing.append((since, test.pvalue, ratio < 1, test, parts))

    def before(since: datetime, shorter: bool) -> float:
        if since <= window.start:
            return 1.0
        parts = _since(frame, window.start, window.start, until=since)
        if parts is None:
            return 1.0
        _, med = _medians(parts)
        return _one_sided(_logrank(parts).pvalue, _ratio(med["canary"], med["control"]) < 1,
                          shorter)  # fmt: skip

    best = _choose(passing, before)
    if best is None:
        return None
    since, test, parts = best[0], best[3], best[4]
    curves, med = _medians(parts)
    ratio = _ratio(med["canary"], med["control"])
    worse = "canary" if ratio < 1 else "control"
    other = "control" if worse == "canary" else "canary"
    shorter = math.nan
    if math.isfinite(med[other]):
        shorter = float(1 - curves[worse].survival_at(med[other])) - 0.5
    return Shift("duration", since, worse, min(ratio, 1 / ratio), math.nan, math.nan,
                 test.pvalue, {
        "p50_canary_s": med["canary"], "p50_control_s": med["control"],
        "p95_canary_s": curves["canary"].duration_quantile(0.95).estimate,
        "p95_control_s": curves["control"].duration_quantile(0.95).estimate,
        "logrank_statistic": test.statistic, "logrank_pvalue": test.pvalue,
        "excess_share": shorter,
    })  # fmt: skip


def _one_sided(pvalue: float | None, statistic_up: bool | None, up: bool) -> float:
    """The one-sided p-value, in the shift's direction, of a two-sided test (1 for none)."""
    if pvalue is None or statistic_up is None or not math.isfinite(pvalue):
        return 1.0
    return pvalue / 2 if statistic_up == up else 1 - pvalue / 2


def _choose(passing: list[tuple], before) -> tuple | None:
    """The candidate start that best splits the window: strongest evidence of the shift
    after it, weakest of the same shift before it (log p after − log p before, the
    latter one-sided; none before the window's start). A regression all along then
    reads "over the whole window", one since a point starts there."""
    if not passing:
        return None

    def score(candidate: tuple) -> float:
        since, pvalue, up = candidate[0], candidate[1], candidate[2]
        return math.log(max(pvalue, 1e-300)) - math.log(max(before(since, up), 1e-300))

    return min(passing, key=score)


def _holds(result, up: bool) -> bool:
    """A half of [τ, end) shows the same material rise or fall (p < PERSIST_P)."""
    if result is None or not math.isfinite(result.statistic) or result.pvalue > PERSIST_P:
        return False
    return result.statistic >= MATERIAL if up else result.statistic <= 1 / MATERIAL


def _ratio(a: float, b: float) -> float:
    if not math.isfinite(b) or b <= 0:
        return 0.0 if math.isfinite(a) else 1.0
    return a / b if math.isfinite(a) else math.inf


# -- findings -------------------------------------------------------------------------
def _count_share(data: IncidentData, shift: Shift) -> float | None:
    """Share of the worse variant's sessions hit beyond the other's share (RUM, when the
    beacons carry all of the signal), else its excess events in bursts over its live
    connections (server)."""
    signal = SIGNALS[shift.signal]
    end = data.window.end
    server = shift.numbers["source"] == "server"
    if data.has_rum and not (server and signal.frames):
        sessions, events = _sessions(data, signal)
        lo, hi = shift.since.timestamp() * 1000, end.timestamp() * 1000
        shares = {}
        for v in VARIANTS:
            first, last = sessions[v]["first"], sessions[v]["last"]
            live = int(np.sum((first < hi) & (last >= lo)))
            ms = events[v]["ms"]
            hit = len(np.unique(events[v]["code"][(ms >= lo) & (ms < hi)]))
            shares[v] = hit / live if live else math.nan
        other = "control" if shift.worse == "canary" else "canary"
        if math.isfinite(shares[shift.worse]) and math.isfinite(shares[other]):
            return shares[shift.worse] - shares[other]
    live = live_connections(data, shift.worse, shift.since, end) if server else None
    if not live:
        return None
    return impact.from_server(shift.numbers["excess"], shift.numbers["burst"], live).share


def _finding(data: IncidentData, shift: Shift, alpha: float) -> Finding:
    whole = shift.since <= data.window.start
    when = "over the whole window" if whole else f"since {shift.since:%H:%M} UTC"
    other = "control" if shift.worse == "canary" else "canary"
    strong = shift.pvalue <= alpha / STRICT
    if shift.signal == "ttfb":
        kind, share = "ttfb_degradation", shift.numbers["excess_share"]
        n = shift.numbers
        text = (
            f"{shift.worse.capitalize()} assistant first-byte p95 is {n['p95_ms']:.0f} ms "
            f"against {n['reference_p95_ms']:.0f} ms on {other} {when} "
            f"(+{shift.statistic:.0f} ms, 95% CI {shift.low:.0f} to {shift.high:.0f})."
        )
    elif shift.signal == "duration":
        kind, share = "duration_regression", shift.numbers["excess_share"]
        p50 = shift.numbers[f"p50_{shift.worse}_s"], shift.numbers[f"p50_{other}_s"]
        text = (
            f"{shift.worse.capitalize()} connections end sooner {when}: median "
            f"{p50[0] / 60:.1f} min against {p50[1] / 60:.1f} min on {other} "
            f"(log-rank p = {shift.pvalue:.1e})."
        )
    else:
        kind, share = "level_shift", _count_share(data, shift)
        n = shift.numbers
        text = (
            f"{shift.worse.capitalize()} {SIGNALS[shift.signal].label} at ×{shift.statistic:.2g}"
            f" {other}'s rate per connection {when} (95% CI ×{shift.low:.2g} to "
            f"×{shift.high:.2g}; {n['events']:.0f} where about {n['expected']:.0f} were "
            f"expected)."
        )
    return Finding(
        kind=kind, start=max(shift.since, data.window.start), end=data.window.end,
        variant=shift.worse, severity=impact.severity(share, strong), sentence=text,
        numbers={"signal": shift.signal, "since": shift.since.isoformat(),
                 "against": other, "ratio" if kind != "ttfb_degradation" else "difference":
                 shift.statistic, "ci_low": shift.low, "ci_high": shift.high,
                 "pvalue": shift.pvalue, "strict": strong, "excess_share": share,
                 **shift.numbers},
        detector={"ttfb_degradation": "ttfb", "duration_regression": "survival"}.get(kind, "shifts"),
    )  # fmt: skip


def prepare(data: IncidentData) -> None:
    """Read what the level shifts need whatever the incidents in time are (the sessions'
    spans, the connections), beside the detectors whose findings they wait for."""
    if data.window is not None and data.has_rum:
        _sessions(data, SIGNALS[COUNT_SIGNALS[0]])
        _connections(data)


def detect(
    data: IncidentData, timed: list[Finding] | None = None
) -> tuple[list[Finding], list[NotRun]]:
    """Level shifts of every signal. `timed`: the incidents in time found, whose spans are
    left out of the comparisons, for both variants alike (the connections they cut, and
    those opened in their aftermath, from the durations)."""
    if data.window is None or not set(VARIANTS) <= set(data.variants):
        return [], [NotRun("shifts", "needs a canary and a control variant to compare")]
    alpha = level(data)
    spans = quiet_spans(timed or [])
    found = [_count_shift(data, name, alpha, spans) for name in COUNT_SIGNALS]
    found += [_ttfb_shift(data, alpha, spans), _duration_shift(data, alpha, spans)]
    not_run = []
    if not data.has_rum:
        not_run += [
            NotRun("ttfb.shift", "needs RUM ws.ttfb beacons"),
            NotRun("survival", "needs RUM ws.open/ws.close beacons with duration_ms"),
        ]
    return [_finding(data, s, alpha) for s in found if s is not None], not_run
