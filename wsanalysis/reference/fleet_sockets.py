"""The fleet simulator's `sockets` engine: real servers and clients on loopback, scaled time.

One `server.ChatServer` per variant and one `client.ReferenceClient` per user session
(its own `policy.ClientPolicy`) talk WebSocket on 127.0.0.1, everybody reading one
scaled `clock.Timebase` (`scale` virtual seconds per real second, ≥ 60 by default).
Prometheus is imitated by fetching each server's real `/metrics` over HTTP at every
virtual scrape time and storing the samples with that virtual timestamp and the
`variant` as a target label; the RUM is what the clients' policies emitted. The output
is the same `FleetResult` as the `simulated` engine, written by `fleet.write_dataset`.

The traffic is the `simulated` engine's, draw for draw: `fleet_core.session_plan` draws
its arrival process (same seed, same random stream) up front, so both engines see the same
users arrive on the same variant at the same virtual time and leave at the same time; what
differs is everything the network, the servers and the clients' jitter decide.

Time lag, measured not hidden: a real millisecond of event-loop latency costs `scale`
virtual milliseconds. Every `sleep` the servers take (the reply's time to first byte)
is metered (`ttfb_lag`: how late it woke, in virtual seconds), as is every scrape
(`scrape_lag`); the result reports both, and the raw server-side TTFB values so a test
can compare them with the simulated engine's after accounting for the lag.

Supported: users (arrivals, session length, messages, token lifetime, refresh after a
give-up), client settings, server faults (`internal_error_p`, TTFB median/sigma/extra,
`duplicate_p`, `token_skew`, `drop_rate`), and the timeline kinds `restart`, `drain`,
`latency`, `server_faults`. A scenario that needs anything else (connection
`lifetime`, network outages, token rotation, reconnect storms: they need a network or
an auth service the loopback stack does not have) is refused with a `UsageError`
before anything starts; the `simulated` engine runs those.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wsanalysis.errors import UsageError
from wsanalysis.reference.client import ReferenceClient
from wsanalysis.reference.clock import Timebase
from wsanalysis.reference.fleet_core import (
    FleetResult,
    PlannedSession,
    ScrapeRecorder,
    Truth,
    client_policy,
    session_plan,
)
from wsanalysis.reference.labels import dataset_labels
from wsanalysis.reference.scenario import Event, Scenario, Variant
from wsanalysis.reference.server import ChatServer, Faults, ServerMetrics
from wsanalysis.reference.tokens import issue_token

__all__ = ["SocketsFleet", "SocketsResult", "check_supported", "session_plan", "simulate_sockets"]

#: Timeline kinds the loopback stack can act out.
SUPPORTED_EVENTS = ("restart", "drain", "latency", "server_faults")
#: Server settings the loopback stack can act out (ServerSettings field names).
FAULT_FIELDS = (
    "internal_error_p", "ttfb_median", "ttfb_sigma", "ttfb_extra", "duplicate_p", "token_skew",
)  # fmt: skip
DEFAULT_SCALE = 60.0
#: Ground truth the sockets engine measures (labels.json `truth`, in this order).
MEASURED_TRUTH = (
    "sessions", "connections_opened", "closes", "reconnects_scheduled", "give_ups",
    "manual_refreshes", "messages_sent", "messages_unsent", "replies",
)  # fmt: skip


def check_supported(scenario: Scenario) -> None:
    """Refuse, before anything starts, a scenario the loopback stack cannot act out."""
    fix = "run it with --engine simulated, or remove that part from the scenario"
    for index, event in enumerate(scenario.timeline):
        if event.kind not in SUPPORTED_EVENTS:
            raise UsageError(
                f"the sockets engine cannot act out timeline[{index}] ({event.kind}): it needs "
                "a network or an auth service that loopback does not have",
                fix,
            )
        if event.kind == "server_faults":
            unsupported = [f for f in event.params["set_fields"] if f not in FAULT_FIELDS]
            if unsupported:
                raise UsageError(
                    f"the sockets engine cannot set {', '.join(unsupported)} at run time "
                    f"(timeline[{index}])",
                    fix,
                )
    for v in scenario.variants:
        if v.server.lifetime_median is not None:
            raise UsageError(
                f"the sockets engine does not model variants.{v.name}.server.lifetime", fix
            )


class _MeteredClock(Timebase):
    """The fleet's clock, seen by one server: records how late every sleep wakes."""

    def __init__(self, clock: Timebase) -> None:
        self.clock = clock
        self.scale = clock.scale
        self.epoch = clock.epoch
        self.lags: list[float] = []

    def now(self) -> float:
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        due = self.now() + max(0.0, seconds)
        await asyncio.sleep(max(0.0, seconds) / self.scale)
        self.lags.append(self.now() - due)


@dataclass
class _ScenarioFaults(Faults):
    """The server's faults plus the scenario's additive TTFB (`ttfb.extra`, latency)."""

    ttfb_extra: float = 0.0

    def draw_ttfb(self, rng: random.Random) -> float:
        return super().draw_ttfb(rng) + max(0.0, self.ttfb_extra)


class _RecordingMetrics(ServerMetrics):
    """ServerMetrics that also keeps each TTFB it observes, with when (virtual s)."""

    def __init__(self, clock: Timebase) -> None:
        super().__init__()
        self._clock = clock
        self.ttfb_values: list[tuple[float, float]] = []

    def ttfb(self, seconds: float) -> None:
        self.ttfb_values.append((self._clock.now(), seconds))
        super().ttfb(seconds)


@dataclass
class _Variant:
    variant: Variant
    server: ChatServer
    clock: _MeteredClock
    metrics: _RecordingMetrics
    faults: _ScenarioFaults
    drop_rate: float
    truth: Truth = field(default_factory=Truth)


@dataclass
class SocketsResult(FleetResult):
    """A `FleetResult` plus what only real sockets have: lag and server-side TTFB."""

    scale: float = DEFAULT_SCALE
    #: Per variant, (virtual time, seconds) of every TTFB the server observed in the window.
    server_ttfb: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    #: How late the servers' reply sleeps woke (virtual seconds), all variants.
    ttfb_lag: list[float] = field(default_factory=list)
    #: How late each scrape started after its virtual scrape time (virtual seconds).
    scrape_lag: list[float] = field(default_factory=list)
    #: Per restart/drain and variant: sockets closed, and how late (virtual s) the last
    #: close was after the event's time (a burst of closes costs real CPU time).
    event_spread: list[dict[str, Any]] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def lag_summary(self) -> dict[str, float]:
        def q(values: list[float], p: float) -> float:
            if not values:
                return float("nan")
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

        return {
            "ttfb_lag_p50": q(self.ttfb_lag, 0.5),
            "ttfb_lag_p95": q(self.ttfb_lag, 0.95),
            "scrape_lag_p50": q(self.scrape_lag, 0.5),
            "scrape_lag_max": max(self.scrape_lag, default=float("nan")),
        }

    def summary(self) -> str:
        lag = self.lag_summary()
        return (
            super().summary()
            + f"\n  clock ×{self.scale:g}; loop lag in virtual ms: reply sleeps p50 "
            f"{lag['ttfb_lag_p50'] * 1e3:.0f} / p95 {lag['ttfb_lag_p95'] * 1e3:.0f}, scrapes "
            f"p50 {lag['scrape_lag_p50'] * 1e3:.0f} / max {lag['scrape_lag_max'] * 1e3:.0f}; "
            f"CPU {self.cpu_seconds:.1f} s"
        )


class SocketsFleet:
    """Run a scenario on real sockets (`await run()`); virtual time 0 is the warm-up's start."""

    def __init__(self, scenario: Scenario, scale: float = DEFAULT_SCALE) -> None:
        check_supported(scenario)
        if scale <= 0:
            raise UsageError(f"clock scale {scale} is not positive", "give e.g. 60")
        self.scenario = scenario
        self.scale = scale
        self.rng = random.Random(scenario.seed)
        self.secret = secrets.token_hex(16)
        self.origin = scenario.start.timestamp() - scenario.warmup
        self.window_start = scenario.warmup
        self.end = scenario.warmup + scenario.duration
        self.window_start_ms = int(round(scenario.start.timestamp() * 1000))
        self.end_ms = int(round((self.origin + self.end) * 1000))
        self.exclude = frozenset(scenario.rum_exclude)
        self.beacons: list[dict[str, Any]] = []
        self.emitted = 0
        self.visits: list[PlannedSession] = []
        self.recorder = ScrapeRecorder()
        self.scrape_lag: list[float] = []
        self.event_spread: list[dict[str, Any]] = []
        self.variants: dict[str, _Variant] = {}
        self.clock = Timebase(scale)
        self._stop = asyncio.Event()
        self._scrapes_done = asyncio.Event()
        self._users = 0
        self._sessions = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the run ---------------------------------------------------------------------

    async def run(self, progress: Callable[[float], None] | None = None) -> SocketsResult:
        wall, cpu = time.perf_counter(), time.process_time()
        plan = session_plan(self.scenario)
        self.clock = Timebase(self.scale)
        self.clock.epoch = self.origin
        try:
            for v in self.scenario.variants:
                await self._start_server(v)
            self._spawn(self._scrapes())
            for event in self.scenario.timeline:
                self._spawn(self._event(event))
            for planned in plan:
                self._spawn(self._visit(planned))
            while (left := self.end - self.clock.now()) > 0:
                await asyncio.sleep(min(self.clock.real(left), 1.0))
                if progress is not None:
                    progress(min(self.clock.now(), self.end))
            await self._scrapes_done.wait()
            self._freeze_truth()
        finally:
            self._stop.set()
            pending = [t for t in self._tasks if not t.done()]
            _, late = await asyncio.wait(pending, timeout=10.0) if pending else (None, set())
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            for v in self.variants.values():
                await v.server.stop()
        return self._result(time.perf_counter() - wall, time.process_time() - cpu)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_server(self, variant: Variant) -> None:
        clock = _MeteredClock(self.clock)
        s = variant.server
        faults = _ScenarioFaults(
            internal_error_p=s.internal_error_p,
            ttfb_median=s.ttfb_median,
            ttfb_sigma=s.ttfb_sigma,
            duplicate_p=s.duplicate_p,
            token_skew=s.token_skew,
            ttfb_extra=s.ttfb_extra,
        )
        metrics = _RecordingMetrics(clock)
        server = ChatServer(
            self.secret,
            timebase=clock,
            faults=faults,
            rng=random.Random(f"{self.scenario.seed}-{variant.name}"),
            metrics=metrics,
            ping_interval=None,  # loopback never dies; pings would only cost CPU
            log_event=lambda record: None,
        )
        await server.start()
        self.variants[variant.name] = _Variant(variant, server, clock, metrics, faults, s.drop_rate)
        if s.drop_rate > 0:
            self._spawn(self._drops(self.variants[variant.name]))

    async def _until(self, at: float) -> bool:
        """Sleep until virtual time `at`; False if the run stopped first."""
        delay = self.clock.real(at - self.clock.now())
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        return not self._stop.is_set()

    # -- users -------------------------------------------------------------------------

    async def _visit(self, planned: PlannedSession) -> None:
        """A user's visit: a client until they leave; a page reload after a give-up."""
        if not await self._until(planned.arrive):
            return
        v = self.variants[planned.variant]
        users = self.scenario.users
        self.visits.append(planned)
        self._users += 1
        user = f"user-{self._users}"
        while not self._stop.is_set():
            gave_up = await self._session(v, user, planned.leaves_at)
            if not gave_up or self.rng.random() >= users.refresh_p:
                return
            delay = users.refresh_delay * self.rng.uniform(0.5, 1.5)
            if not await self._until(self.clock.now() + delay):
                return
            if self.clock.now() >= planned.leaves_at:
                return
            v.truth.manual_refreshes += 1

    async def _session(self, v: _Variant, user: str, leaves_at: float) -> bool:
        """One page load's client; True if its policy gave up before the user left."""
        users, settings = self.scenario.users, v.variant.client
        self._sessions += 1
        sid = f"{v.variant.name[:2]}-{self._sessions:06d}"
        issued = self.clock.epoch_now()
        first_token = issue_token(self.secret, user, issued, users.token_ttl)

        async def token() -> str:
            if settings.token_refresh:
                return issue_token(self.secret, user, self.clock.epoch_now(), users.token_ttl)
            return first_token

        policy = client_policy(
            settings, session_id=sid, variant=v.variant.name, user=user, rng=self.rng
        )
        sampled = zlib.crc32(sid.encode()) % 10_000 < self.scenario.rum_sample * 10_000
        client = ReferenceClient(
            v.server.url,
            token,
            policy=policy,
            timebase=self.clock,
            sink=_Sink(self, v, sampled),
            ping_interval=None,
        )
        v.truth.sessions += 1
        await client.start()
        chat = asyncio.get_running_loop().create_task(self._chat(v, client, leaves_at))
        gave_up = asyncio.get_running_loop().create_task(client.wait_given_up())
        stop = asyncio.get_running_loop().create_task(self._stop.wait())
        try:
            await asyncio.wait(
                {gave_up, stop},
                timeout=max(0.0, self.clock.real(leaves_at - self.clock.now())),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in (chat, gave_up, stop):
                task.cancel()
            await asyncio.gather(chat, gave_up, stop, return_exceptions=True)
            await client.close()
        if client.error is not None:
            v.truth.give_ups += 1
            return True
        return False

    async def _chat(self, v: _Variant, client: ReferenceClient, leaves_at: float) -> None:
        users = self.scenario.users
        if users.messages_per_hour <= 0:
            return
        n = 0
        while True:
            await self.clock.sleep(self.rng.expovariate(users.messages_per_hour / 3600.0))
            if self.clock.now() >= leaves_at or client.error is not None:
                return
            if client.status != "open":
                v.truth.messages_unsent += 1
                continue
            n += 1
            thread = f"t-{self.rng.randrange(users.threads) + 1}"
            await client.send(thread, f"message {n}", trace=f"{client.policy.session_id}.m{n}")
            v.truth.messages_sent += 1

    # -- the timeline and server faults -----------------------------------------------

    async def _event(self, event: Event) -> None:
        if not await self._until(self.window_start + event.start):
            return
        targets = [self.variants[name] for name in event.variants]
        for v in targets:
            if event.kind == "restart":
                self._spawn(
                    self._timed(event, v, v.server.restart(event.params.get("downtime", 0.0)))
                )
            elif event.kind == "drain":
                self._spawn(self._timed(event, v, v.server.drain()))
            elif event.kind == "latency":
                v.faults.ttfb_extra += event.params.get("extra", 0.5)
            elif event.kind == "server_faults":
                chosen = event.params["set"]
                self._set_faults(v, {n: getattr(chosen, n) for n in event.params["set_fields"]})
        if event.kind not in ("drain", "latency", "server_faults"):
            return
        if not await self._until(self.window_start + event.end):
            return
        for v in targets:
            if event.kind == "drain":
                v.server.undrain()
            elif event.kind == "latency":
                v.faults.ttfb_extra -= event.params.get("extra", 0.5)
            elif event.kind == "server_faults" and event.end < self.scenario.duration:
                own = v.variant.server
                self._set_faults(v, {n: getattr(own, n) for n in event.params["set_fields"]})

    async def _timed(self, event: Event, v: _Variant, closing: Any) -> None:
        """Run a restart or drain; record how long (virtual s) closing every socket took."""
        at = self.window_start + event.start
        closed = await closing
        self.event_spread.append(
            {
                "kind": event.kind,
                "variant": v.variant.name,
                "sockets": closed,
                "late_s": self.clock.now() - at,
            }
        )

    def _set_faults(self, v: _Variant, changes: dict[str, Any]) -> None:
        if "drop_rate" in changes:
            v.drop_rate = changes.pop("drop_rate")
        v.faults.update(**changes)

    async def _drops(self, v: _Variant) -> None:
        """Abrupt drops (1006) at `drop_rate` per connection-hour: each open socket dies
        after an exponential time, i.e. the server loses one at random at the total rate."""
        while not self._stop.is_set():
            rate = v.drop_rate / 3600.0 * v.server.connection_count
            wait = self.rng.expovariate(rate) if rate > 0 else 1.0
            if not await self._until(self.clock.now() + min(wait, 60.0)):
                return
            if rate <= 0 or wait > 60.0:
                continue  # the population changed meanwhile: draw again (memoryless)
            v.server.drop(count=1)

    # -- Prometheus ----------------------------------------------------------------------

    async def _scrapes(self) -> None:
        self._scrapes_done.clear()
        try:
            interval = self.scenario.scrape_interval
            for k in range(int(self.scenario.duration // interval) + 1):
                at = self.window_start + k * interval
                if not await self._until(at):
                    return
                self.scrape_lag.append(self.clock.now() - at)
                ts = int(round((self.origin + at) * 1000))
                texts = await asyncio.gather(
                    *(_get_metrics(v.server.port) for v in self.variants.values())
                )
                for name, text in zip(self.variants, texts, strict=True):
                    self.recorder.record_text(ts, name, text)
        finally:
            self._scrapes_done.set()

    # -- the result ----------------------------------------------------------------------

    def _freeze_truth(self) -> None:
        """Server counts at the window's end (the shutdown after it is not the scenario's)."""
        for v in self.variants.values():
            v.truth.closes.update(v.metrics.closes_by_code())
            v.truth.connections_opened = v.metrics.opened_count
            v.truth.replies = len(v.metrics.ttfb_values)

    def _result(self, wall: float, cpu: float) -> SocketsResult:
        truth = {name: v.truth.to_json(MEASURED_TRUTH) for name, v in self.variants.items()}
        labels = dataset_labels(self.scenario, truth, engine="sockets")
        labels["clock_scale"] = self.scale
        result = SocketsResult(
            self.scenario,
            self.recorder.frame(),
            sorted(self.beacons, key=lambda b: b["ts"]),
            labels,
            events=self.emitted,
            wall_seconds=wall,
            visits=sorted(self.visits, key=lambda p: p.arrive),
            scale=self.scale,
            server_ttfb={
                name: [
                    (t, x) for t, x in v.metrics.ttfb_values if self.window_start <= t <= self.end
                ]
                for name, v in self.variants.items()
            },
            ttfb_lag=[lag for v in self.variants.values() for lag in v.clock.lags],
            scrape_lag=self.scrape_lag,
            event_spread=self.event_spread,
            cpu_seconds=cpu,
        )
        return result


class _Sink:
    """Beacons as the simulated engine keeps them: sampled sessions, window only."""

    def __init__(self, fleet: SocketsFleet, v: _Variant, sampled: bool) -> None:
        self.fleet, self.v, self.sampled = fleet, v, sampled

    def emit(self, beacon: dict[str, Any]) -> None:
        fleet = self.fleet
        if beacon["ts"] <= fleet.end_ms:
            fleet.emitted += 1
            if beacon["type"] == "ws.reconnect_scheduled":
                self.v.truth.reconnects_scheduled += 1
        if (
            self.sampled
            and fleet.window_start_ms <= beacon["ts"] <= fleet.end_ms
            and beacon["type"] not in fleet.exclude
        ):
            fleet.beacons.append(beacon)

    async def flush(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def _get_metrics(port: int) -> str:
    """GET /metrics over a plain socket (what a Prometheus scrape does)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Accept: text/plain\r\n\r\n"
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
    finally:
        writer.close()
    if status != b"200":
        raise RuntimeError(f"/metrics on port {port} answered {status.decode()}")
    return body.decode()


def simulate_sockets(
    scenario: Scenario,
    progress: Callable[[float], None] | None = None,
    *,
    scale: float = DEFAULT_SCALE,
) -> SocketsResult:
    """Run a scenario with the `sockets` engine (blocks; starts its own event loop)."""
    return asyncio.run(SocketsFleet(scenario, scale).run(progress))
