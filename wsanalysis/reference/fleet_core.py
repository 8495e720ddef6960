"""What both fleet engines share: the traffic, the client policy, the ground truth, the scrapes.

The `simulated` engine (`fleet.py`, a discrete-event loop) and the `sockets` engine
(`fleet_sockets.py`, real servers and clients on loopback) differ in everything the
network, the servers and the clients' timing decide, and in nothing else:

- `Arrivals` is the users' arrival process (a warm population, then a thinned diurnal
  Poisson process; each arrival draws its variant and session length) on its own random
  stream. The simulated engine draws from it as its loop reaches each arrival;
  `session_plan` draws the same numbers up front for the sockets engine.
- `client_policy` turns a variant's `ClientSettings` into its `ClientPolicy`.
- `Truth` is the ground truth per variant that goes to `labels.json`.
- `ScrapeRecorder` keeps the scraped samples (with `variant` as a target label) and
  turns them into the samples frame.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl
from prometheus_client.parser import text_string_to_metric_families

from wsanalysis.reference.policy import ClientPolicy
from wsanalysis.reference.scenario import ClientSettings, Scenario
from wsanalysis.sources.schema import TIMESTAMP

#: Label columns a scrape of the reference server can carry.
LABELS = ("code", "reason", "le", "event", "why")
#: Size of the client's dedup memory when the variant dedups (0 when it does not).
DEDUP_SIZE = 200
#: The warm population arrives spread over this many seconds from time 0.
WARM_SPREAD = 300.0


@dataclass(frozen=True)
class PlannedSession:
    """One user's visit: when they arrive (virtual s from time 0), where, until when."""

    arrive: float
    variant: str
    leaves_at: float


class Arrivals:
    """The users' arrival process, drawn from its own stream (`seed ^ 0x5EED`), so two
    scenarios with the same seed and users see the same traffic, whatever else differs.

    The caller drives it in event order: `warm()` once, `first_candidate()` once, then
    at each candidate `next_candidate(now)` and `accepted(now)`; for every arrival
    `variant()` then `session_length()`.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.users = scenario.users
        self.rng = random.Random(scenario.seed ^ 0x5EED)
        self.origin = scenario.start.timestamp() - scenario.warmup  # epoch at time 0
        amplitude = self.users.diurnal_amplitude
        self.peak = self.users.sessions_per_hour / 3600.0 * (1 + amplitude)
        self._bounds: list[tuple[float, str]] = []
        total = 0.0
        for v in scenario.variants:
            total += v.share
            self._bounds.append((total, v.name))

    def diurnal(self, t: float) -> float:
        """The arrival rate at virtual time `t`, relative to the day's mean."""
        users = self.users
        hour = ((self.origin + t) / 3600.0) % 24.0
        return 1.0 + users.diurnal_amplitude * math.cos(2 * math.pi * (hour - users.peak_hour) / 24)

    def warm(self) -> list[float]:
        """Arrival times of the population already there at time 0, staggered."""
        n = int(round(self.users.concurrent * self.diurnal(0.0)))
        return [self.rng.uniform(0.0, WARM_SPREAD) for _ in range(n)]

    def first_candidate(self) -> float | None:
        """The first candidate arrival of the thinned process (None without arrivals)."""
        return self.rng.expovariate(self.peak) if self.peak > 0 else None

    def next_candidate(self, now: float) -> float:
        return now + self.rng.expovariate(self.peak)

    def accepted(self, now: float) -> bool:
        """Thinning: a candidate at `now` is an arrival with probability diurnal/peak."""
        return self.rng.random() * (1 + self.users.diurnal_amplitude) <= self.diurnal(now)

    def variant(self) -> str:
        u = self.rng.random()
        return next((name for bound, name in self._bounds if u < bound), self._bounds[-1][1])

    def session_length(self) -> float:
        users = self.users
        return users.session_median * math.exp(self.rng.gauss(0.0, users.session_sigma))


def session_plan(scenario: Scenario) -> list[PlannedSession]:
    """Every first page load of the run, in arrival order: the `Arrivals` the simulated
    engine draws as its loop goes, drawn up front (the sockets engine replays them)."""
    arrivals = Arrivals(scenario)
    end = scenario.warmup + scenario.duration
    queue: list[tuple[float, int, bool]] = [(t, i, False) for i, t in enumerate(arrivals.warm())]
    first = arrivals.first_candidate()
    if first is not None:
        queue.append((first, len(queue), True))
    heapq.heapify(queue)
    seq = len(queue)
    plan: list[PlannedSession] = []
    while queue and queue[0][0] <= end:
        now, _, candidate = heapq.heappop(queue)
        if candidate:
            seq += 1
            heapq.heappush(queue, (arrivals.next_candidate(now), seq, True))
            if not arrivals.accepted(now):
                continue
        variant = arrivals.variant()
        plan.append(PlannedSession(now, variant, now + arrivals.session_length()))
    return plan


def client_policy(
    settings: ClientSettings,
    *,
    session_id: str,
    variant: str,
    user: str,
    rng: random.Random,
    epoch: float = 0.0,
) -> ClientPolicy:
    """A variant's client policy for one session (both engines build it here)."""
    return ClientPolicy(
        session_id=session_id,
        variant=variant,
        user=user,
        jitter=settings.jitter,
        rng=rng,
        base=settings.base,
        cap=settings.cap,
        max_attempts=settings.max_attempts,
        stable_after=settings.stable_after,
        dedup_size=DEDUP_SIZE if settings.dedup else 0,
        summary_every=settings.summary_every,
        epoch=epoch,
    )


@dataclass
class Truth:
    """Ground-truth counters per variant (what really happened, for labels.json)."""

    sessions: int = 0
    connections_opened: int = 0
    closes: Counter[int] = field(default_factory=Counter)
    reconnects_scheduled: int = 0
    give_ups: int = 0
    manual_refreshes: int = 0
    messages_sent: int = 0
    messages_unsent: int = 0
    replies: int = 0
    duplicates_sent: int = 0
    duplicates_delivered: int = 0
    dedup_drops: int = 0
    stale_drops: int = 0

    def to_json(self, only: Iterable[str] | None = None) -> dict[str, Any]:
        """The counters as labels.json holds them; `only` keeps those an engine measures."""
        data = asdict(self)
        data["closes"] = {str(k): v for k, v in sorted(self.closes.items())}
        return data if only is None else {name: data[name] for name in only}


class ScrapeRecorder:
    """Scraped samples, each stored with its scrape time and its variant (a target label,
    as Prometheus relabelling adds it); `frame()` is the samples frame."""

    def __init__(self) -> None:
        self.rows: dict[str, list[Any]] = {c: [] for c in ("ts", "metric", "variant", "value")}
        self.rows.update({c: [] for c in LABELS})

    def record(
        self, ts_ms: int, variant: str, samples: Iterable[tuple[str, Mapping[str, str], float]]
    ) -> None:
        """Store one target's samples (name, labels, value) scraped at `ts_ms`."""
        rows = self.rows
        for metric, labels, value in samples:
            rows["ts"].append(ts_ms)
            rows["metric"].append(metric)
            rows["variant"].append(variant)
            rows["value"].append(value)
            for label in LABELS:
                rows[label].append(labels.get(label))

    def record_text(self, ts_ms: int, variant: str, text: str) -> None:
        """Store a `/metrics` answer (Prometheus text format); `_created` is dropped."""
        self.record(
            ts_ms,
            variant,
            (
                (sample.name, sample.labels, float(sample.value))
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if not sample.name.endswith("_created")
            ),
        )

    def frame(self) -> pl.DataFrame:
        frame = pl.DataFrame(
            self.rows,
            schema={"ts": pl.Int64, "metric": pl.Utf8, "variant": pl.Utf8, "value": pl.Float64}
            | {label: pl.Utf8 for label in LABELS},
        )
        frame = frame.with_columns(pl.col("ts").cast(TIMESTAMP).alias("timestamp")).drop("ts")
        return frame.drop([c for c in LABELS if frame[c].null_count() == frame.height])


@dataclass
class FleetResult:
    """What a run produced: scraped samples, beacons, ground truth and run figures."""

    scenario: Scenario
    samples: pl.DataFrame
    beacons: list[dict[str, Any]]
    labels: dict[str, Any]
    #: Beacons the clients emitted up to the window's end (all sessions, sampled or not).
    events: int
    wall_seconds: float
    #: Every first page load, in arrival order (refreshes after a give-up not included).
    visits: list[PlannedSession] = field(default_factory=list)

    @property
    def virtual_seconds(self) -> float:
        return self.scenario.warmup + self.scenario.duration

    def summary(self) -> str:
        lines = [
            f"{self.scenario.name}: {self.virtual_seconds / 3600:.1f} virtual h "
            f"({self.scenario.duration / 3600:.1f} h window) in {self.wall_seconds:.1f} s wall "
            f"({self.virtual_seconds / max(self.wall_seconds, 1e-9):,.0f}× real time), "
            f"{self.events:,} beacons emitted",
            f"  {self.samples.height:,} metric samples, {len(self.beacons):,} RUM beacons",
        ]
        for name, truth in self.labels["truth"].items():
            closes = ", ".join(f"{c}×{n}" for c, n in truth["closes"].items())
            lines.append(
                f"  {name}: {truth['sessions']:,} sessions, {truth['connections_opened']:,} "
                f"connections, {truth['reconnects_scheduled']:,} reconnects, "
                f"{truth['give_ups']:,} give-ups; closes {closes or 'none'}"
            )
        return "\n".join(lines)
