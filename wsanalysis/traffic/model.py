"""The second traffic model: users, sessions, connections and what goes wrong with them.

Written apart from the fleet simulator and from the detectors, to test the detectors on
traffic they were not tuned on. Where the fleet drives one client policy per session on
a discrete-event clock, this model draws each session's story directly:

* **Arrivals** come in batches (a notification brings several users at once: geometric
  batch sizes) at a rate that follows a two-harmonic daily curve (a morning and an
  evening peak) times a log-normal Ornstein–Uhlenbeck load factor (minutes-long swings):
  a Cox process, so counts per minute are overdispersed and autocorrelated.
* **Sessions** last a Lomax (Pareto II) time: heavy-tailed, most short, a few for hours.
* **Connections** end when the session ends (1000), on an abnormal drop (1006, at a rate
  scaled by a gamma "flaky network" frailty per session: drops cluster on a few
  users), on an internal error (error frames come in bursts, a gamma frailty per
  session again, and a burst closes the socket with 1011 now and then), or on an auth
  failure (4401: the token could not be refreshed; the client retries a few times,
  each retry refused, then gets a token or gives up). The client reconnects after a
  full-jitter exponential backoff.
* **Messages** per connection are Poisson at a per-session rate; time to first byte is
  log-normal around a per-session level that rises with the servers' load (the arrival
  load smoothed over a session's median length), plus a Pareto slow tail.
* **Injected events** (`Inject`): a rate multiplier on a signal for a variant and a time
  span (an auth spike, an error spike, a level shift since a point), a server restart
  of one pod, a network outage, a reconnect storm (sockets flapping), a TTFB shift, a
  connection lifetime cap. Every event an injection caused is marked, so the labels can
  say how many sessions it hit.

`simulate(traffic)` returns a `Run`: every connection and event as arrays, the beacons
of the RUM-sampled sessions, and the ground truth per injection. `metrics.scrape` turns a
run into the samples frame, `dataset.write` into a dataset folder.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

#: Signals an `Inject` of kind "rate" can multiply.
RATE_SIGNALS = ("1006", "errors", "auth")
INJECT_KINDS = ("rate", "restart", "outage", "storm", "ttfb", "lifetime")
MAX_ATTEMPTS = 10  # failed reconnect attempts before the client gives up
BACKOFF_BASE_S, BACKOFF_CAP_S, STABLE_S = 1.0, 30.0, 10.0
DRAIN_S = 35.0  # a restarting pod closes its sockets, then exits this much later
DOWNTIME_S = 10.0  # and the new process accepts connections this much after that
REFRESH_S = 120.0  # mean wait before a user who gave up reloads the page


@dataclass(frozen=True)
class Inject:
    """One injected event. `variants` it hits, from `start` to `end` (hours from the
    window's start; `end` None = the window's end).

    kind "rate": `signal`'s rate × `factor`; "restart": pod `pod` of each variant
    restarts at `start`; "outage": the network is gone (`share` of the sessions lose it);
    "storm": sockets flap (1006) every `every_s` seconds on average; "ttfb": every reply
    `shift_ms` slower; "lifetime": connections last about `lifetime_s` at most.
    `label` is the incident kind the scenario's author says this is (labels.json);
    `signals`, for a level shift, every signal it moves (a 1006 rise moves reconnects).
    """

    kind: str
    variants: tuple[str, ...]
    start: float
    end: float | None = None
    signal: str = ""
    factor: float = 1.0
    pod: int = 0
    share: float = 1.0
    every_s: float = 60.0
    shift_ms: float = 0.0
    lifetime_s: float = 600.0
    label: str = ""  # the incident kind labels.json names ("" = harmless, not labelled)
    signals: tuple[str, ...] = ()  # for a level shift: the signals it moves

    def __post_init__(self) -> None:
        if self.kind not in INJECT_KINDS:
            raise ValueError(f"unknown injection {self.kind!r}; one of {INJECT_KINDS}")
        if self.kind == "rate" and self.signal not in RATE_SIGNALS:
            raise ValueError(f"a rate injection needs a signal in {RATE_SIGNALS}")


@dataclass(frozen=True)
class Traffic:
    """The model's knobs: load, sessions, failure rates, latency, and what is injected."""

    hours: float = 12.0
    start: datetime = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
    warmup_hours: float = 4.0
    seed: int = 1
    arrivals_per_minute: float = 60.0  # both variants, at the day's mean load
    canary_share: float = 0.1
    variants: tuple[str, ...] = ("canary", "control")
    daily: tuple[float, float] = (0.35, 0.12)  # amplitudes of the 24 h and 12 h harmonics
    peak_hour: float = 15.0
    load_sigma: float = 0.25  # sd of the log load factor (Ornstein–Uhlenbeck)
    load_minutes: float = 12.0  # its correlation time
    batch_mean: float = 2.0  # users per arrival batch (geometric, >= 1)
    session_median_min: float = 15.0
    session_shape: float = 1.5  # Lomax shape: the smaller, the heavier the tail
    session_cap_h: float = 10.0
    drops_per_hour: float = 0.08  # 1006 per connection-hour, mean over sessions
    flaky_shape: float = 0.3  # gamma shape of the per-session drop frailty
    error_bursts_per_hour: float = 0.05  # error-frame bursts per connection-hour
    error_shape: float = 0.25  # gamma shape of the per-session error frailty
    burst_mean: float = 2.5  # error frames per burst (geometric)
    burst_close_p: float = 0.3  # a burst closes the socket with 1011
    auth_failures_per_hour: float = 0.01
    auth_retries_mean: float = 2.0  # refused retries after an auth failure (geometric)
    auth_give_up_p: float = 0.15
    messages_per_hour: float = 8.0
    ttfb_median_ms: float = 450.0
    ttfb_sigma: float = 0.3
    ttfb_session_sigma: float = 0.2
    ttfb_load_slope: float = 0.15  # relative TTFB rise per unit of load above the mean
    slow_share: float = 0.02  # replies in the slow tail
    slow_scale_ms: float = 800.0  # Pareto tail: extra ms, shape 2
    pods: tuple[tuple[str, int], ...] = (("canary", 1), ("control", 3))
    scrape_s: float = 30.0
    rum_sample: float = 0.1
    injects: tuple[Inject, ...] = ()

    @property
    def window_start(self) -> float:
        """Epoch seconds of the window's start."""
        return self.start.timestamp()

    @property
    def origin(self) -> float:
        return self.window_start - self.warmup_hours * 3600

    @property
    def horizon(self) -> float:
        return self.window_start + self.hours * 3600

    def at(self, hours: float | None) -> float:
        return self.horizon if hours is None else self.window_start + hours * 3600

    def pod_count(self, variant: str) -> int:
        return dict(self.pods).get(variant, 1)

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "injects"}
        out["start"] = self.start.isoformat()
        out["pods"] = dict(self.pods)
        out["injects"] = [i.__dict__ for i in self.injects]
        return out


@dataclass
class Run:
    """What happened, as flat arrays (one row per connection, close, frame, reply) plus the
    RUM beacons of sampled sessions and the truth per injection."""

    traffic: Traffic
    sessions: dict[str, np.ndarray]  # id, variant, arrive, leave, sampled
    connections: dict[str, np.ndarray]  # session, variant, pod, open, close, code, injected
    error_frames: dict[str, np.ndarray]  # variant, pod, time, injected
    replies: dict[str, np.ndarray]  # session, variant, pod, time, ttfb_ms
    restarts: list[tuple[str, int, float]]  # variant, pod, time the new process starts
    beacons: list[dict[str, Any]]
    hit: dict[int, set[int]] = field(default_factory=dict)  # injection -> sessions it hit


class _Spans:
    """Piecewise-constant rate multipliers per (variant, signal) from the injections, and
    exact next-event times of a Poisson process under them."""

    def __init__(self, traffic: Traffic) -> None:
        self.by_key: dict[tuple[str, str], list[tuple[float, float, float, int]]] = {}
        for index, inject in enumerate(traffic.injects):
            signal = {"rate": inject.signal, "storm": "storm", "lifetime": "lifetime"}.get(
                inject.kind
            )
            if signal is None:
                continue
            for v in inject.variants:
                self.by_key.setdefault((v, signal), []).append(
                    (traffic.at(inject.start), traffic.at(inject.end), inject.factor, index)
                )

    def next_time(
        self, rng: random.Random, variant: str, signal: str, rate: float, t: float, until: float
    ) -> tuple[float, int | None]:
        """Next event after `t` (inf if none before `until`) at base rate `rate`, × each
        active span's factor, and the injection that caused it (None: the base rate)."""
        spans = self.by_key.get((variant, signal))
        if not spans:  # the base rate all along
            x = t + rng.expovariate(rate) if rate > 0 else math.inf
            return (x, None) if x < until else (math.inf, None)
        points = sorted({t, until, *(p for s in spans for p in s[:2] if t < p < until)})
        for a, b in zip(points, points[1:], strict=False):
            active = [s for s in spans if s[0] <= a < s[1]]
            multiplier = 1.0 + sum(s[2] - 1.0 for s in active)
            if rate * multiplier <= 0:
                continue
            x = a + rng.expovariate(rate * multiplier)
            if x < b:
                caused = active and rng.random() * multiplier > 1.0
                return x, (active[0][3] if caused else None)
        return math.inf, None


def _load(traffic: Traffic, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-minute times from the warm-up's start and the load (daily curve × OU factor)."""
    minutes = int(math.ceil((traffic.horizon - traffic.origin) / 60)) + 1
    times = traffic.origin + 60.0 * np.arange(minutes)
    hour = (times / 3600.0) % 24.0
    a1, a2 = traffic.daily
    phase = 2 * math.pi * (hour - traffic.peak_hour) / 24
    daily = 1 + a1 * np.cos(phase) + a2 * np.cos(2 * phase)
    phi = math.exp(-1.0 / traffic.load_minutes)
    noise = rng.normal(0, traffic.load_sigma * math.sqrt(1 - phi**2), minutes)
    x = np.empty(minutes)
    x[0] = rng.normal(0, traffic.load_sigma)
    for i in range(1, minutes):
        x[i] = phi * x[i - 1] + noise[i]
    return times, daily * np.exp(x - traffic.load_sigma**2 / 2)


def _arrivals(traffic: Traffic, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times (batches of users a few seconds apart) and the load per minute."""
    times, load = _load(traffic, rng)
    batches = rng.poisson(traffic.arrivals_per_minute * load / traffic.batch_mean)
    start = np.repeat(times, batches) + rng.uniform(0, 60, batches.sum())
    sizes = rng.geometric(1.0 / traffic.batch_mean, len(start))
    arrive = np.repeat(start, sizes) + rng.uniform(0, 5, sizes.sum())
    arrive = np.sort(arrive[arrive < traffic.horizon])
    return arrive, load


def _session_lengths(traffic: Traffic, rng: np.random.Generator, n: int) -> np.ndarray:
    shape = traffic.session_shape
    scale = traffic.session_median_min * 60 / (2 ** (1 / shape) - 1)
    lengths = scale * ((1 - rng.random(n)) ** (-1 / shape) - 1)
    return np.minimum(lengths, traffic.session_cap_h * 3600)


class _Simulator:
    """Plays each session's connections in turn (a plain loop: sessions are independent)."""

    def __init__(self, traffic: Traffic) -> None:
        self.t = traffic
        self.rng = random.Random(traffic.seed)
        self.np = np.random.default_rng(traffic.seed)
        self.spans = _Spans(traffic)
        self.restarts = [
            (v, i.pod % traffic.pod_count(v), traffic.at(i.start), index)
            for index, i in enumerate(traffic.injects) if i.kind == "restart"
            for v in i.variants
        ]  # fmt: skip
        self.outages = [
            (v, traffic.at(i.start), traffic.at(i.end), i.share, index)
            for index, i in enumerate(traffic.injects) if i.kind == "outage"
            for v in i.variants
        ]  # fmt: skip
        self.conn: dict[str, list] = {k: [] for k in
                                      ("session", "variant", "pod", "open", "close", "code",
                                       "injected")}  # fmt: skip
        self.frames: dict[str, list] = {k: [] for k in ("variant", "pod", "time", "injected")}
        self.beacons: list[dict[str, Any]] = []
        self.hit: dict[int, set[int]] = {}

    # -- one session --------------------------------------------------------------
    def session(self, s: int, variant: str, arrive: float, leave: float, sampled: bool) -> None:
        """One user's visit: connect, live until something closes the socket, back off,
        reconnect; give up after MAX_ATTEMPTS failed attempts, then refresh by hand."""
        rng, t = self.rng, self.t
        drop = t.drops_per_hour / 3600 * rng.gammavariate(t.flaky_shape, 1 / t.flaky_shape)
        errors = t.error_bursts_per_hour / 3600 * rng.gammavariate(t.error_shape,
                                                                  1 / t.error_shape)  # fmt: skip
        lost = {index: rng.random() < share for (v, _, _, share, index) in self.outages
                if v == variant}  # fmt: skip
        sid = f"{variant[:2]}-{s:06d}"
        now, attempt, socket = arrive, 0, 0
        refused, refusal = 0, None  # auth retries still to be refused, and their cause
        while now < leave:
            pod, blocked = self._connect(variant, now, lost)
            if pod is None:  # network gone, or no pod up: the attempt fails
                attempt += 1
                if blocked is not None:
                    self.hit.setdefault(blocked, set()).add(s)
                if attempt >= MAX_ATTEMPTS:
                    self._beacon(sampled, now, "ws.give_up", sid, variant, attempt=attempt)
                    now, attempt = now + rng.expovariate(1 / REFRESH_S), 0  # refresh by hand
                    continue
                wait = self._backoff(attempt)
                self._beacon(sampled, now, "ws.reconnect_scheduled", sid, variant,
                             attempt=attempt + 1, backoff_ms=wait * 1000)  # fmt: skip
                now += wait
                continue
            socket += 1
            sock = f"{sid}-{socket}"
            self._beacon(sampled, now, "ws.open", sid, variant, socket_id=sock, attempt=attempt)
            if refused > 0:  # a retry with a token that is still bad
                close, code, cause = now + 0.05, 4401, refusal
                refused -= 1
            else:
                close, code, cause = self._next_close(s, variant, pod, now, leave, drop, errors,
                                                      lost)  # fmt: skip
                if code == 4401:
                    refused = int(self.np.geometric(1 / (1 + t.auth_retries_mean))) - 1
                    refusal = cause
            self._record(s, variant, pod, now, close, code, cause)
            self._beacon(sampled, close, "ws.close", sid, variant, socket_id=sock, code=code,
                         duration_ms=(close - now) * 1000)  # fmt: skip
            if code == 1000:
                return
            if code == 4401 and refused == 0 and rng.random() < t.auth_give_up_p:
                self._beacon(sampled, close, "ws.give_up", sid, variant, attempt=attempt + 1)
                return
            attempt = 1 if close - now >= STABLE_S else attempt + 1
            wait = self._backoff(attempt)
            self._beacon(sampled, close, "ws.reconnect_scheduled", sid, variant,
                         attempt=attempt, backoff_ms=wait * 1000, code=code)  # fmt: skip
            now = close + wait

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform up to the exponential backoff (base 1 s, cap 30 s)."""
        return self.rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))

    def _connect(self, variant: str, now: float, lost: dict[int, bool]):
        """(pod, None) for a connection that opens; (None, injection) when an outage or a
        restart with no other pod up makes the attempt fail."""
        pods = self.t.pod_count(variant)
        if not self.outages and not self.restarts:
            return self.rng.randrange(pods), None
        for v, a, b, _, index in self.outages:
            if v == variant and a <= now < b and lost[index]:
                return None, index
        down = {p: index for v, p, at, index in self.restarts
                if v == variant and at <= now < at + DRAIN_S + DOWNTIME_S}  # fmt: skip
        up = [p for p in range(pods) if p not in down]
        if not up:
            return None, next(iter(down.values()))
        return up[self.rng.randrange(len(up))], None

    def _next_close(self, s, variant, pod, now, leave, drop, errors, lost):
        """When and how this connection ends: the earliest of every way it can."""
        rng, spans = self.rng, self.spans
        candidates: list[tuple[float, int, int | None]] = [(leave, 1000, None)]
        at, why = spans.next_time(rng, variant, "1006", drop, now, leave)
        candidates.append((at, 1006, why))
        at, why = spans.next_time(rng, variant, "auth", self.t.auth_failures_per_hour / 3600,
                                  now, leave)  # fmt: skip
        candidates.append((at, 4401, why))
        for signal, code in (("storm", 1006), ("lifetime", 1001)):
            for a, b, _, index in spans.by_key.get((variant, signal), []):
                inject = self.t.injects[index]
                mean = inject.every_s if signal == "storm" else inject.lifetime_s
                if b > now and a < leave:
                    x = max(a, now) + rng.expovariate(1 / mean)
                    if x < b:
                        candidates.append((x, code, index))
        for v, p, at, index in self.restarts:
            if v == variant and p == pod and at > now:
                candidates.append((at + rng.uniform(0, 2), 1012, index))
        for v, a, _, _, index in self.outages:
            if v == variant and a > now and lost[index]:
                candidates.append((a + rng.uniform(0, 20), 1006, index))
        end = min(candidates)[0]
        # error-frame bursts until the connection ends; a burst may close it with 1011
        t = now
        while True:
            t, why = spans.next_time(rng, variant, "errors", errors, t, end)
            if t == math.inf:
                break
            size = int(self.np.geometric(1 / self.t.burst_mean))
            for k in range(size):
                self.frames["variant"].append(variant)
                self.frames["pod"].append(pod)
                self.frames["time"].append(t + k * rng.uniform(0.2, 3))
                self.frames["injected"].append(-1 if why is None else why)
            if why is not None:
                self.hit.setdefault(why, set()).add(s)
            if rng.random() < self.t.burst_close_p:
                candidates.append((t + size * 1.5, 1011, why))
                break
        return min(candidates, key=lambda c: c[0])

    def _record(self, s, variant, pod, opened, closed, code, injected) -> None:
        c = self.conn
        c["session"].append(s)
        c["variant"].append(variant)
        c["pod"].append(pod)
        c["open"].append(opened)
        c["close"].append(closed)
        c["code"].append(code)
        c["injected"].append(-1 if injected is None else injected)
        if injected is not None:
            self.hit.setdefault(injected, set()).add(s)

    def _beacon(self, sampled: bool, ts: float, kind: str, sid: str, variant: str, **fields):
        if sampled and self.t.window_start <= ts < self.t.horizon:
            self.beacons.append({"v": 1, "ts": int(ts * 1000), "type": kind,
                                 "session_id": sid, "variant": variant, **fields})  # fmt: skip


def simulate(traffic: Traffic) -> Run:
    """Play the traffic: every session, connection, error frame and reply."""
    sim = _Simulator(traffic)
    arrive, load = _arrivals(traffic, sim.np)
    n = len(arrive)
    leave = np.minimum(arrive + _session_lengths(traffic, sim.np, n), traffic.horizon)
    shares = np.array([traffic.canary_share, 1 - traffic.canary_share])
    names = np.array(traffic.variants)
    variant = names[sim.np.choice(len(names), n, p=shares / shares.sum())]
    sampled = sim.np.random(n) < traffic.rum_sample
    for s in range(n):
        sim.session(s, str(variant[s]), float(arrive[s]), float(leave[s]), bool(sampled[s]))
    conn = {k: np.asarray(v) for k, v in sim.conn.items()}
    frames = {k: np.asarray(v) for k, v in sim.frames.items()}
    replies = _replies(traffic, sim.np, conn, load)
    for index, inject in enumerate(traffic.injects):
        if inject.kind == "ttfb":
            during = (replies["time"] >= traffic.at(inject.start)) & (
                replies["time"] < traffic.at(inject.end)
            ) & np.isin(replies["variant"], inject.variants)  # fmt: skip
            replies["ttfb_ms"][during] += inject.shift_ms
            sim.hit[index] = set(replies["session"][during].tolist())
    sids = np.array([f"{v[:2]}-{s:06d}" for s, v in enumerate(variant)])
    kept = sampled[replies["session"]] & (replies["time"] >= traffic.window_start)
    for i in np.flatnonzero(kept):
        s = replies["session"][i]
        sim.beacons.append({"v": 1, "ts": int(replies["time"][i] * 1000), "type": "ws.ttfb",
                            "session_id": sids[s], "variant": str(variant[s]),
                            "ttfb_ms": round(float(replies["ttfb_ms"][i]), 3)})  # fmt: skip
    return Run(
        traffic,
        {"id": sids, "variant": variant, "arrive": arrive, "leave": leave, "sampled": sampled},
        conn, frames, replies, [(v, p, at + DRAIN_S) for v, p, at, _ in sim.restarts], sorted(sim.beacons,
                                                                key=lambda b: b["ts"]),
        sim.hit,
    )  # fmt: skip


def _replies(traffic: Traffic, rng: np.random.Generator, conn: dict[str, np.ndarray],
             load: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """Assistant replies on each connection: Poisson per session rate, log-normal TTFB
    around a per-session level that rises with load, and a Pareto slow tail."""
    sessions = int(conn["session"].max()) + 1 if len(conn["session"]) else 0
    rate = traffic.messages_per_hour / 3600 * rng.gamma(2.0, 0.5, sessions)
    level = np.exp(rng.normal(0, traffic.ttfb_session_sigma, sessions))
    lived = np.maximum(conn["close"] - conn["open"], 0)
    counts = rng.poisson(rate[conn["session"]] * lived)
    row = np.repeat(np.arange(len(lived)), counts)
    time = conn["open"][row] + rng.random(len(row)) * lived[row]
    minute = np.clip(((time - traffic.origin) // 60).astype(int), 0, len(load) - 1)
    busy = _smoothed(load, traffic.session_median_min)  # the servers feel concurrency
    base = traffic.ttfb_median_ms * level[conn["session"][row]]
    base = base * (1 + traffic.ttfb_load_slope * (busy[minute] - 1))
    ttfb = base * np.exp(rng.normal(0, traffic.ttfb_sigma, len(row)))
    slow = rng.random(len(row)) < traffic.slow_share
    ttfb[slow] += traffic.slow_scale_ms * ((1 - rng.random(slow.sum())) ** (-1 / 2) - 1)
    return {
        "session": conn["session"][row], "variant": conn["variant"][row],
        "pod": conn["pod"][row], "time": time, "ttfb_ms": ttfb,
    }  # fmt: skip


def _smoothed(load: np.ndarray, minutes: float) -> np.ndarray:
    """An exponential moving average of the arrival load: how busy the servers are."""
    out, weight, level = np.empty(len(load)), 1 / max(minutes, 1.0), float(load[0])
    for i, value in enumerate(load):
        level += weight * (value - level)
        out[i] = level
    return out
