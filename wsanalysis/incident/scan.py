"""Elevations at every time scale: a scan of windows from one minute to two hours
against the series' own baseline, with overdispersed counts and a stated false-alarm
rate.

Why: a per-minute threshold finds only the minutes that cross it, so an hour at ×30
reads as three one-minute blips and a sustained moderate rise as nothing, while one
flapping client's burst of closes reads as an incident. A scan statistic tests windows
of every length and keeps the one the data support best (Kulldorff's scan; Naus).

The model, per series (one signal of one variant, counts per minute, per unit of an
exposure such as open connections, so the daily load curve is no elevation):

* **Baseline from the flanks.** A window's expected count is the rate of the max(REACH,
  w) minutes before and after it times its own exposure: the window itself never raises
  its baseline, and a daily curve cancels on both sides. The rate is known only as well
  as the flanks' count tells: a gamma factor whose shape is their count of bursts (a
  Jeffreys half added: a silent series is not certainly silent).
* **Overdispersion, measured.** Around that rate the count is negative binomial with
  variance φ × mean. φ is measured on the series: the burst size (the index of clumping
  E[K²]/E[K] of single minutes, each minute counted as no larger a burst than the busy
  minutes' 95th percentile), and at each window length w the mean squared residual of
  disjoint windows against their own flanks, over the Poisson variance: errors
  clustered on one connection, bursty arrivals and load swings all raise it at the
  lengths where they act. A tested window uses the largest φ of the lengths up to its
  own, never below the burst size, and every estimate leaves out the window and the
  windows whose flanks reach it: an incident never widens its own test. Elevations
  found at the strict level are left out of every other's estimate too (one incident
  beyond doubt does not hide a second).
* **Mostly empty series** (most minutes without an event: rare closes, each a client's
  burst of retries) are scanned twice: their counts, and their minutes with any event
  (bursts count once), each at half the level; the spans are the union.
* **Multiplicity, from the target.** Windows of length w start every max(1, w/4)
  minutes; every tested window is counted (Bonferroni, conservative for overlapping
  windows). The level per window is the series' share of `FALSE_ALARMS_PER_DAY` over
  the windows it tests per day, so the false-alarm rate is stated, not tuned:
  `PER_SERIES` false elevations per series per day, and `STRICT` times fewer for
  elevations that may be rated medium or high. tests/incident/test_scan.py measures it
  on null series of several shapes.

The best window (smallest p-value) is taken first and its edges moved minute by minute
to the span with the largest standardized excess against its baseline; windows
overlapping it are dropped; the next best follows. Elevations of one series that touch,
or whose gap is shorter than both and whose union is elevated too, are merged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from scipy import special, stats

MINUTE = timedelta(minutes=1)
#: Window lengths tested, in minutes (each only where the data hold 6 of them).
SCALES = (1, 2, 3, 5, 8, 12, 20, 30, 45, 60, 90, 120)
MAX_SCALE = 120
REACH = 90  # a window's expected count is its flanks' rate, max(REACH, w) each side
BLOCK = 30  # the series' usual rate: its rate in blocks this long, the busiest tenth out
BURST_QUANTILE = 0.95
JEFFREYS = 0.5  # events added to a baseline span, so a silent series is not certain zero
MIN_WINDOWS = 8  # disjoint windows needed to measure φ at a length (else the shorter's)
SPARSE = 0.5  # share of minutes with any event up to which those minutes are scanned too
MASKING_ROUNDS = 4

#: The target: false elevations per day over all series an analysis scans.
FALSE_ALARMS_PER_DAY = 0.5
#: Series an analysis scans per variant (close codes, restart closes, reconnects, opens,
#: give-ups, slow replies, each from the server and/or RUM), for two variants.
SERIES_SCANNED = 2 * 12
PER_SERIES = FALSE_ALARMS_PER_DAY / SERIES_SCANNED
#: Elevations that may be rated medium or high must pass a level this many times smaller.
STRICT = 100.0


@dataclass(frozen=True)
class Window:
    """One elevated span of a series, in minute indices [start, end)."""

    start: int
    end: int
    observed: float
    expected: float
    pvalue: float
    level: float  # the per-window level it was tested at
    peak: float  # the largest minute count inside
    peak_expected: float
    burst: float = 1.0  # φ at one minute around it: about the events a burst holds

    @property
    def minutes(self) -> int:
        return self.end - self.start

    @property
    def strong(self) -> bool:
        """Significant at the strict level: may be rated medium or high."""
        return self.pvalue <= self.level / STRICT


def scales_for(length: int) -> list[int]:
    """The lengths scanned: up to a sixth of the series and two hours (a longer elevation
    is found as touching windows, merged). A length whose dispersion the data cannot
    measure (too few windows left) is tested with the longest one's that they can."""
    return [w for w in SCALES if w == 1 or (6 * w <= length and w <= MAX_SCALE)]


def stride(w: int) -> int:
    return max(1, w // 4)


def tests_per_day(length: int) -> float:
    """Windows tested per day of data (for the Bonferroni level)."""
    tested = sum(max(0, length - w) // stride(w) + 1 for w in scales_for(length))
    return tested * 1440.0 / max(length, 1)


def level(length: int, per_series: float = PER_SERIES) -> float:
    """The per-window level: the series' false alarms per day over its tests per day."""
    return per_series / tests_per_day(length)


def baseline(y: np.ndarray, x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected count per minute: the rate (events per unit of exposure `x`) of the
    unmasked minutes within ±REACH, widened to ±4·REACH, then to the whole series, where
    fewer than REACH remain, times the minute's exposure; and the minutes behind it."""
    keep = ~mask
    c_y = np.concatenate([[0.0], np.cumsum(np.where(keep, y, 0.0))])
    c_x = np.concatenate([[0.0], np.cumsum(np.where(keep, x, 0.0))])
    c_n = np.concatenate([[0.0], np.cumsum(keep)])
    idx = np.arange(len(y))
    rate = np.full(len(y), (c_y[-1] + JEFFREYS) / max(c_x[-1], 1e-12))
    behind = np.full(len(y), max(c_n[-1], 1.0))
    for reach in (4 * REACH, REACH):
        lo, hi = np.clip(idx - reach, 0, len(y)), np.clip(idx + reach + 1, 0, len(y))
        n = c_n[hi] - c_n[lo]
        ok = n >= REACH
        rate = np.where(ok, (c_y[hi] - c_y[lo] + JEFFREYS) / np.maximum(c_x[hi] - c_x[lo], 1e-12),
                        rate)  # fmt: skip
        behind = np.where(ok, n, behind)
    return rate * x, behind


def _windows(length: int, w: int, step: int) -> np.ndarray:
    return np.arange(0, length - w + 1, step)


class Dispersion:
    """φ_w per window length w, measured on the series and left out for the window tested.

    At each length, the disjoint windows give squared residuals against their own
    expected counts (from their flanks, as a tested window's) over their variance under
    Poisson; their mean is φ_w, the moment estimate: clusters, load swings and the
    flanks' own error all raise it. The window under test, and the disjoint windows it
    overlaps, are left out of that mean, so an incident never widens its own test, while
    another elevation elsewhere only makes it more cautious (the windows whose flanks
    reach the tested one are left out as well: the incident would be in their expected
    counts). A length with fewer than MIN_WINDOWS windows left has no estimate of its
    own; a window of length L uses the largest φ_w over w <= L (at least 1). `mask`: minutes of elevations found at the strict level, left out (with the
    windows whose flanks reach them) for every test.
    """

    def __init__(self, series: _Series, scales: list[int], mask: np.ndarray | None = None) -> None:
        length = len(series.y)
        c_m = np.concatenate([[0], np.cumsum(mask if mask is not None else np.zeros(length))])
        usual = series.usual_rate()
        # bursts: 1 + Σ (s(s - 1) - e²) / Σ s over single minutes (e at the usual rate),
        # the index of clumping of a Poisson count of bursts (E[K²]/E[K]), read from the
        # counts themselves; a minute counts as no larger a burst than the BURST_QUANTILE
        # of the busy minutes, so an incident's thousands of closes elsewhere do not pass
        # for a burst size
        e1 = usual * np.diff(series.c_x)  # the usual rate: no incident's flank in it
        keep = np.ones(length) if mask is None else (~mask).astype(float)
        y = series.y
        busy = y[(y > 0) & (keep > 0)]
        cap = np.quantile(busy, BURST_QUANTILE) if len(busy) else 1.0
        clumped = np.minimum(y * (y - 1), y * max(cap - 1, 0.0))  # one burst a minute at most
        self.clumps = (np.concatenate([[0.0], np.cumsum(keep * (clumped - e1**2))]),
                       np.concatenate([[0.0], np.cumsum(keep * y)]))  # fmt: skip
        self.scales = scales
        self.sums: list[tuple[np.ndarray, np.ndarray]] = []  # prefix sums per scale
        for w in scales:
            starts = _windows(length, w, w)
            s, e, v = series.counts(starts, starts + w)
            # a flank with hardly an event gives a tiny, noisy expected count: divide by
            # no less than the series' usual rate would give (where events are rare)
            v = np.maximum(v, usual * (series.c_x[starts + w] - series.c_x[starts]))
            reach = max(REACH, w)  # a masked span in a window's flanks spoils it too
            lo, hi = np.maximum(starts - reach, 0), np.minimum(starts + w + reach, length)
            clean = (c_m[hi] - c_m[lo]) == 0
            z2 = np.where(clean, (s - e) ** 2 / v, 0.0)
            self.sums.append((np.concatenate([[0.0], np.cumsum(z2)]),
                              np.concatenate([[0], np.cumsum(clean)])))  # fmt: skip

    def burst(self, start: int, end: int) -> float:
        """Events in a burst, the span [start, end) and its flanks left out."""
        return float(self.bursts(np.array([start]), np.array([end]))[0])

    def bursts(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """The index of clumping E[K²]/E[K] (events a burst holds, weighted), each window
        and its flanks left out; at least 1."""
        a, b = self.clumps
        lo = np.clip(start - REACH, 0, len(a) - 1)
        hi = np.clip(end + REACH, 0, len(a) - 1)
        top, events = a[-1] - (a[hi] - a[lo]), b[-1] - (b[hi] - b[lo])
        return np.maximum(1.0, 1.0 + top / np.maximum(events, 1.0))

    def at(self, start: np.ndarray, end: np.ndarray, reach_to: int | None = None) -> np.ndarray:
        """φ for each window [start, end), the windows near it left out (near
        [start, reach_to) when given: a span longer than the windows measured)."""
        phi = np.ones(len(start))
        length = end - start
        for w, (z2, n) in zip(self.scales, self.sums, strict=True):
            applies = length >= w
            if not applies.any():
                break
            reach = max(REACH, w)  # windows whose flanks reach the tested one go too
            stop = end if reach_to is None else np.maximum(end, reach_to)
            first = np.clip((start - reach) // w, 0, len(n) - 1)
            last = np.clip((stop + reach - 1) // w + 1, 0, len(n) - 1)
            left = n[-1] - (n[last] - n[first])
            total = z2[-1] - (z2[last] - z2[first])
            ok = applies & (left >= MIN_WINDOWS)
            phi = np.where(ok, np.maximum(phi, total / np.maximum(left, 1)), phi)
        return phi


#: Quadrature over the rate's uncertainty: Gauss–Laguerre in t, the rate factor at upper
#: tail probability e^-t (so the far tail a small p-value needs is covered).
_T, _W = special.roots_laguerre(24)
_LOG_W = np.log(_W)


def log_tail(
    observed: np.ndarray,
    expected: np.ndarray,
    cluster: np.ndarray,
    uncertainty: np.ndarray,
    screen: float = 1.0,
) -> np.ndarray:
    """log P(X >= observed): X is negative binomial with variance `cluster` × its mean (a
    Poisson count of bursts: a few clients' retries, load swings), at a rate known up to
    a gamma factor of relative variance `uncertainty` (the flanks' own counting error): a
    negative binomial mixed over a gamma, exact for Poisson counts against a Poisson
    baseline. Windows whose plain Poisson tail is above `screen` keep it (theirs is
    larger)."""
    observed = np.asarray(observed, dtype=float)
    mean = np.maximum(np.asarray(expected, dtype=float), 1e-12)
    k = np.ceil(observed - 1e-9) - 1
    out = stats.poisson.logsf(k, mean)
    phi = np.maximum(np.asarray(cluster, dtype=float), 1.0)
    c = np.maximum(np.asarray(uncertainty, dtype=float), 0.0)
    need = ((phi > 1 + 1e-9) | (c > 1e-12)) & (out <= math.log(screen)) & (k >= 0)
    if need.any():
        shape = 1 / np.maximum(c[need], 1e-12)[:, None]
        factor = np.where(shape > 1e9, 1.0, stats.gamma.isf(np.exp(-_T)[None, :], shape) / shape)
        rate = mean[need][:, None] * factor
        f = np.broadcast_to(phi[need][:, None], rate.shape)
        kk = np.broadcast_to(k[need][:, None], rate.shape)
        bursts = f > 1 + 1e-9
        logs = np.empty(rate.shape)
        logs[~bursts] = stats.poisson.logsf(kk[~bursts], rate[~bursts])
        logs[bursts] = stats.nbinom.logsf(kk[bursts], rate[bursts] / (f[bursts] - 1),
                                          1 / f[bursts])  # fmt: skip
        out[need] = special.logsumexp(logs + _LOG_W[None, :], axis=1)
    return out


class _Series:
    """One series and its exposure, and the test of any window against its flanks."""

    def __init__(self, y: np.ndarray, x: np.ndarray):
        self.y = y
        self.c_y = np.concatenate([[0.0], np.cumsum(y)])
        self.c_x = np.concatenate([[0.0], np.cumsum(x)])
        self.phi: Dispersion | None = None

    def usual_rate(self) -> float:
        """Events per unit of exposure over BLOCK-minute blocks, the busiest tenth of the
        blocks left out (an incident does not set what is usual)."""
        edges = np.arange(0, len(self.y) + 1, BLOCK)
        events, exposed = np.diff(self.c_y[edges]), np.diff(self.c_x[edges])
        keep = exposed > 0
        if not keep.any():
            return 0.0
        rates = np.sort(events[keep] / exposed[keep])
        return float(rates[: max(1, int(np.ceil(0.9 * len(rates))))].mean())

    def flanks(self, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, ...]:
        """Events and exposure in the max(REACH, w) minutes before and after each window,
        the window's exposure, and the minutes in the flanks."""
        length = len(self.y)
        reach = np.maximum(REACH, end - start)
        lo, hi = np.maximum(start - reach, 0), np.minimum(end + reach, length)
        flank_y = (self.c_y[start] - self.c_y[lo]) + (self.c_y[hi] - self.c_y[end])
        flank_x = (self.c_x[start] - self.c_x[lo]) + (self.c_x[hi] - self.c_x[end])
        inside = self.c_x[end] - self.c_x[start]
        return flank_y, np.maximum(flank_x, 1e-12), inside, np.maximum((start - lo) + (hi - end), 1)

    def counts(self, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, ...]:
        """Observed, expected (the flanks' rate, a Jeffreys half event added, times the
        window's exposure) and its Poisson variance with the flanks' own error."""
        s = self.c_y[end] - self.c_y[start]
        flank_y, flank_x, inside, behind = self.flanks(start, end)
        e = (flank_y + JEFFREYS) / flank_x * inside
        return s, e, e * (1 + inside / flank_x)

    def test(
        self, start: np.ndarray, end: np.ndarray, screen: float = 1.0
    ) -> tuple[np.ndarray, ...]:
        """Observed, expected and the log p-value of each window (`log_tail`): a negative
        binomial with the window length's φ (bursts, and swings longer than a minute, as
        measured; at least the burst size), at the rate the flanks tell, known as well as
        their count of bursts says (a gamma of that shape, a Jeffreys half added)."""
        s = self.c_y[end] - self.c_y[start]
        flank_y, flank_x, inside, _ = self.flanks(start, end)
        e = (flank_y + JEFFREYS) / flank_x * inside
        bursts = self.phi.bursts(start, end)
        counting = 1 / (flank_y / bursts + JEFFREYS)
        phi = np.maximum(self.phi.at(start, end), bursts)
        return s, e, log_tail(s, e, phi, counting, screen)

    def z(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """The standardized excess: what a span's edges are chosen by (a p-value that
        underflows cannot tell a span from one diluted with quiet minutes)."""
        s, e, v = self.counts(start, end)
        return (s - e) / np.sqrt(self.phi.at(start, end) * v)


def _refine(series: _Series, start: int, end: int, length: int) -> tuple[int, int]:
    """Move the edges to the span with the largest standardized excess nearby (a minute
    grid around the window, at most ±half its length), against the first window's own
    baseline rate and φ (a span's flanks move with its length: measured against its own,
    every span would be compared with a different baseline)."""
    w = end - start
    flank_y, flank_x, _, _ = series.flanks(np.array([start]), np.array([end]))
    rate = float((flank_y[0] + JEFFREYS) / flank_x[0])
    phi = float(series.phi.at(np.array([start]), np.array([end]))[0])
    reach = max(1, w // 2)
    step = max(1, reach // 20)
    starts = np.arange(max(0, start - reach), min(length - 1, start + reach) + 1, step)
    ends = np.arange(max(1, end - reach), min(length, end + reach) + 1, step)
    a, b = np.meshgrid(starts, ends, indexing="ij")
    a, b = a.ravel(), b.ravel()
    keep = b > a
    a, b = a[keep], b[keep]
    expected = rate * (series.c_x[b] - series.c_x[a])
    z = (series.c_y[b] - series.c_y[a] - expected) / np.sqrt(phi * expected)
    best = int(np.argmax(z))
    return int(a[best]), int(b[best])


def scan(
    y: np.ndarray,
    exposure: np.ndarray | None = None,
    *,
    min_excess: float = 3.0,
    per_series: float = PER_SERIES,
) -> list[Window]:
    """Elevated spans of a per-minute count series (see the module docstring). With
    `exposure` (e.g. open connections per minute), the baseline is a rate per unit of it,
    so the daily load curve and load swings are not read as elevations."""
    y = np.asarray(y, dtype=float)
    length = len(y)
    if length == 0 or y.sum() <= 0:
        return []
    x = np.ones(length) if exposure is None else np.asarray(exposure, dtype=float)
    x = np.where(np.isfinite(x) & (x > 0), x, 0.0)
    if x.sum() <= 0:
        x = np.ones(length)
    x = np.maximum(x, 1e-3 * x[x > 0].mean())  # a minute without exposure still counts
    scales = scales_for(length)
    sparse = np.mean(y > 0) <= SPARSE
    alpha = level(length, per_series / 2 if sparse else per_series)
    series = _Series(y, x)
    found = _found(series, scales, alpha, min_excess)
    if not sparse:
        return found
    occupied = _Series((y > 0).astype(float), x)  # minutes with any event: clusters count once
    return _union(found, _found(occupied, scales, alpha, min_excess), series, alpha)


def _found(series: _Series, scales: list[int], alpha: float, min_excess: float) -> list[Window]:
    """Select, then again with the strict elevations left out of the dispersion (an
    incident beyond doubt does not hide a second one by widening its test), until the
    strict ones stay the same. (Leaving out every elevation found would let a few large
    bursts of an ordinary day talk the dispersion down, one round after the other.)"""
    mask = np.zeros(len(series.y), bool)
    found: list[Window] = []
    for _ in range(MASKING_ROUNDS):
        series.phi = Dispersion(series, scales, mask)
        found = _select(series, scales, alpha, min_excess)
        strong = np.zeros(len(series.y), bool)
        for w in found:
            strong[w.start : w.end] |= w.strong
        if np.array_equal(strong, mask):
            break
        mask = strong
    return found


def _window(series: _Series, a: int, b: int, alpha: float, p: float | None = None) -> Window:
    """The span [a, b) as found: its counts, p-value (given, or its own test's)."""
    s, e, own = series.test(np.array([a]), np.array([b]))
    own = np.exp(own)
    top = a + int(np.argmax(series.y[a:b]))
    return Window(a, b, float(s[0]), float(e[0]), float(own[0]) if p is None else p, alpha,
                  float(series.y[top]), float(e[0]) / (b - a), series.phi.burst(a, b))  # fmt: skip


def _union(found: list[Window], more: list[Window], series: _Series, alpha: float) -> list[Window]:
    """Elevations of the counts and of the occupied minutes as one list, told in counts:
    spans that overlap become one, with the smaller p-value of the two tests."""
    spans: list[list] = []
    for w in sorted(found + more, key=lambda w: (w.start, w.end)):
        if spans and w.start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], w.end)
            spans[-1][2] = min(spans[-1][2], w.pvalue)
        else:
            spans.append([w.start, w.end, w.pvalue])
    return [_window(series, a, b, alpha, p) for a, b, p in spans]


def _select(series: _Series, scales: list[int], alpha: float, min_excess: float) -> list[Window]:
    length = len(series.y)
    starts, ends = [], []
    for w in scales:
        s = _windows(length, w, stride(w))
        starts.append(s)
        ends.append(s + w)
    start, end = np.concatenate(starts), np.concatenate(ends)
    s, e, logp = series.test(start, end, screen=alpha)
    hit = (logp <= math.log(alpha)) & (s - e >= min_excess)
    start, end, logp = start[hit], end[hit], logp[hit]
    order = np.lexsort((-series.z(start, end), logp))  # smallest p first, then largest z
    taken = np.zeros(length, bool)
    picked: list[tuple[int, int]] = []
    for i in order:
        if taken[start[i] : end[i]].any():
            continue
        a, b = _refine(series, int(start[i]), int(end[i]), length)
        if taken[a:b].any():
            a, b = int(start[i]), int(end[i])
        taken[a:b] = True
        picked.append((a, b))
    merged: list[list[int]] = []
    for a, b in sorted(picked):
        if merged and _joins(series, merged[-1], a, b, alpha):
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out = []
    for a, b in merged:
        found = _window(series, a, b, alpha)
        if found.observed - found.expected >= min_excess:
            out.append(found)
    return out


def _joins(series: _Series, last: list[int], a: int, b: int, alpha: float) -> bool:
    """Two elevations of a series are one when they touch, or when the gap between them is
    shorter than the shorter of them and the span over both is elevated as well."""
    gap = a - last[1]
    if gap <= max(2, (last[1] - last[0]) // 10):
        return True
    if gap > min(last[1] - last[0], b - a):
        return False
    _, _, logp = series.test(np.array([last[0]]), np.array([max(last[1], b)]))
    return bool(logp[0] <= math.log(alpha))


def burst(y: np.ndarray, exposure: np.ndarray | None = None) -> float:
    """About the events a burst holds: φ at one minute over the whole series (>= 1)."""
    y = np.asarray(y, dtype=float)
    if len(y) < 2 * MIN_WINDOWS or y.sum() <= 0:
        return 1.0
    x = np.ones(len(y)) if exposure is None else np.maximum(np.asarray(exposure, float), 1e-9)
    z2, n = Dispersion(_Series(y, x), [1]).sums[0]
    return max(1.0, float(z2[-1] / max(n[-1], 1)))


# -- on the frames the detectors count ----------------------------------------------
@dataclass(frozen=True)
class Elevation:
    """An elevated span of one variant's series: counts observed and expected, its
    p-value, whether it passed the strict level, the exposure over it, and the events
    a burst holds there (φ at one minute)."""

    variant: str
    start: datetime
    end: datetime
    observed: float
    expected: float
    peak: float
    peak_baseline: float
    minutes: int
    pvalue: float = math.nan
    strong: bool = False
    exposure: float = math.nan  # mean open connections per minute over the span
    burst: float = 1.0

    @property
    def ratio(self) -> float:
        return self.observed / max(self.expected, 1.0)

    @property
    def excess(self) -> float:
        return max(self.observed - self.expected, 0.0)


def _aligned(counts: pl.DataFrame, exposure: pl.DataFrame | None, variant: str):
    part = counts.filter(pl.col("variant") == variant).sort("bucket")
    if exposure is None:
        return part, None
    x = exposure.filter(pl.col("variant") == variant).select("bucket", pl.col("n").alias("x"))
    joined = part.join(x, on="bucket", how="left").sort("bucket")
    return part, joined["x"].fill_null(0.0).to_numpy()


def elevations(
    counts: pl.DataFrame | None,
    exposure: pl.DataFrame | None = None,
    *,
    min_excess: float = 3.0,
    per_series: float = PER_SERIES,
) -> list[Elevation]:
    """Scan each variant's per-minute counts (bucket, variant, n) per unit of its
    exposure (bucket, variant, n: open connections), in time order."""
    if counts is None or counts.is_empty():
        return []
    found: list[Elevation] = []
    for variant in sorted(counts["variant"].unique().to_list()):
        part, x = _aligned(counts, exposure, variant)
        buckets = part["bucket"].to_list()
        for w in scan(part["n"].to_numpy(), x, min_excess=min_excess, per_series=per_series):
            mean_x = float(np.mean(x[w.start : w.end])) if x is not None else math.nan
            found.append(
                Elevation(
                    variant, buckets[w.start], buckets[w.end - 1] + MINUTE, w.observed,
                    w.expected, w.peak, w.peak_expected, w.minutes, w.pvalue, w.strong,
                    mean_x, w.burst,
                )
            )  # fmt: skip
    return sorted(found, key=lambda e: (e.start, e.variant))


def expected_counts(
    counts: pl.DataFrame,
    exposure: pl.DataFrame | None,
    spans: dict[str, list[tuple[datetime, datetime]]],
) -> pl.DataFrame:
    """`counts` with `baseline`: each variant's expected count per minute (its rate per
    unit of exposure around the minute), the spans given for it left out of the
    baseline: what an episode's excess is measured against."""
    parts = []
    for variant in counts["variant"].unique(maintain_order=True).to_list():
        part, x = _aligned(counts, exposure, variant)
        times = part["bucket"]
        mask = np.zeros(part.height, bool)
        for a, b in spans.get(variant, []):
            mask |= ((times >= a) & (times < b)).to_numpy()
        x = np.ones(part.height) if x is None else np.maximum(x, 1e-9)
        b, _ = baseline(part["n"].to_numpy().astype(float), x, mask)
        parts.append(part.with_columns(pl.Series("baseline", b)))
    return pl.concat(parts) if parts else counts.with_columns(pl.lit(0.0).alias("baseline"))
