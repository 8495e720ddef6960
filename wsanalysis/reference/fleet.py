"""The fleet simulator's `simulated` engine: the reference stack on a virtual clock.

A discrete-event simulation (one heap of timed events, no sockets, no sleeping) of
users opening the chat, each with a real `policy.ClientPolicy` (backoff, jitter,
close-code hygiene, dedup, stale-socket rejection, RUM beacons), talking to one
server per variant whose telemetry is the real `server.ServerMetrics` registry.
Prometheus is imitated by snapshotting each registry every scrape interval with the
`variant` as a target label; beacons are what the clients emitted. The timeline's
faults (restart, drain, outage, token rotation, latency, reconnect storm) act on the
servers, the network and the clients exactly where the scenario says, and the ground
truth goes to `labels.json`.

Simplifications, on purpose: handshakes take no time; the token is checked by its
issue time and expiry (no HMAC — `tokens.py` is the real validator); a reply is one
`assistant_message` frame; the server notices a dead network after its keepalive
(20–40 s). Everything random draws from one `random.Random(seed)` in event order, so a
seed gives the same dataset byte for byte.
"""

from __future__ import annotations

import gzip
import heapq
import json
import math
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.reference.policy import (
    ClientPolicy,
    Connect,
    Deliver,
    Drop,
    Emit,
    GiveUp,
    SendResume,
)
from wsanalysis.reference.policy import CloseSocket as CloseSocketAction
from wsanalysis.reference.protocol import AssistantMessage, ErrorFrame, ReconnectAdvice
from wsanalysis.reference.scenario import (
    INCIDENT_OF,
    Event,
    Scenario,
    ServerSettings,
    Variant,
    parse_duration,
)
from wsanalysis.reference.server import ServerMetrics
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.rum import write_rum
from wsanalysis.sources.schema import RUM_SCHEMA, TIMESTAMP

#: retry_after the server advises before closing, per reason (as server.ChatServer).
ADVICE_AFTER = {"restart": 1.0, "drain": 5.0}
#: The server's keepalive notices a dead peer this long after the network dies.
KEEPALIVE = (20.0, 40.0)
#: A connection attempt on a dead network fails (1006) after this long.
CONNECT_TIMEOUT = 2.0
LABELS = ("code", "reason", "le", "event", "why")


@dataclass
class _Server:
    """One variant's server: its metrics registry, its sockets, its fault state."""

    variant: Variant
    metrics: ServerMetrics
    settings: ServerSettings
    conns: dict[int, _Session] = field(default_factory=dict)
    refuse_until: float = -math.inf
    draining: bool = False
    rotation: tuple[float, float, float] | None = None  # (at, until, reject_p)
    storm: tuple[float, float, float] | None = None  # (until, share, mean lifetime)
    outage: tuple[float, float] | None = None  # (until, share)


@dataclass(eq=False)
class _Session:
    """One user's page: a policy, a token, the socket it holds, replies in flight."""

    id: str
    user: str
    server: _Server
    policy: ClientPolicy
    leaves_at: float
    token_issued: float
    alive: bool = True
    conn: int | None = None
    socket_id: str | None = None
    sampled: bool = True
    net_down: bool = False
    browser_offline: bool = False
    flapping: bool = False
    messages: int = 0
    seq: Counter[str] = field(default_factory=Counter)
    pending: list[AssistantMessage] = field(default_factory=list)


@dataclass
class _Truth:
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

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["closes"] = {str(k): v for k, v in sorted(self.closes.items())}
        return data


@dataclass
class FleetResult:
    """What a run produced: scraped samples, beacons, ground truth and run figures."""

    scenario: Scenario
    samples: pl.DataFrame
    beacons: list[dict[str, Any]]
    labels: dict[str, Any]
    events: int
    wall_seconds: float

    @property
    def virtual_seconds(self) -> float:
        return self.scenario.warmup + self.scenario.duration

    def summary(self) -> str:
        lines = [
            f"{self.scenario.name}: {self.virtual_seconds / 3600:.1f} virtual h "
            f"({self.scenario.duration / 3600:.1f} h window) in {self.wall_seconds:.1f} s wall "
            f"({self.virtual_seconds / max(self.wall_seconds, 1e-9):,.0f}× real time), "
            f"{self.events:,} events ({self.events / max(self.wall_seconds, 1e-9):,.0f}/s)",
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


class FleetSimulation:
    """Run a scenario on a virtual clock (`run()`); time 0 is the start of the warm-up."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        #: Arrivals, variant and session length draw from their own stream, so two
        #: scenarios with the same seed and users see the same traffic.
        self.users_rng = random.Random(scenario.seed ^ 0x5EED)
        self.origin = scenario.start.timestamp() - scenario.warmup  # epoch at time 0
        self.window_start = scenario.warmup
        self.end = scenario.warmup + scenario.duration
        self.window_start_ms = int(round(scenario.start.timestamp() * 1000))
        self.exclude = frozenset(scenario.rum_exclude)
        self.servers = {v.name: _Server(v, ServerMetrics(), v.server) for v in scenario.variants}
        self.truth = {v.name: _Truth() for v in scenario.variants}
        self.beacons: list[dict[str, Any]] = []
        self.live: dict[str, _Session] = {}
        self.rows: dict[str, list[Any]] = {c: [] for c in ("ts", "metric", "variant", "value")}
        self.rows.update({c: [] for c in LABELS})
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._conn_ids = 0
        self._sessions = 0
        self._cumulative_shares: list[tuple[float, _Server]] = []
        total = 0.0
        for v in scenario.variants:
            total += v.share
            self._cumulative_shares.append((total, self.servers[v.name]))
        self.now = 0.0
        self.events = 0

    # -- the loop ----------------------------------------------------------------------

    def push(self, at: float, handler: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, handler, args))

    def run(self, progress: Callable[[float], None] | None = None) -> FleetResult:
        """Simulate warm-up and window; `progress(virtual_seconds_done)` now and then."""
        wall = time.perf_counter()
        users = self.scenario.users
        rate = users.sessions_per_hour / 3600.0
        initial = int(round(users.concurrent * self._diurnal(0.0)))
        for _ in range(initial):  # start warm: a population already there, staggered
            self.push(self.users_rng.uniform(0.0, 300.0), self._arrive, None)
        if rate > 0:
            first = self.users_rng.expovariate(rate * (1 + users.diurnal_amplitude))
            self.push(first, self._arrival)
        scrape = self.scenario.scrape_interval
        for k in range(int(self.scenario.duration // scrape) + 1):
            self.push(self.window_start + k * scrape, self._scrape)
        for event in self.scenario.timeline:
            self.push(self.window_start + event.start, self._begin, event)
            if event.end > event.start or event.kind in ("drain", "network_outage"):
                self.push(self.window_start + event.end, self._finish, event)
        queue, pop = self._queue, heapq.heappop
        next_report = 0.0
        while queue and queue[0][0] <= self.end:
            self.now, _, handler, args = pop(queue)
            handler(*args)
            self.events += 1
            if progress is not None and self.now >= next_report:
                progress(self.now)
                next_report = self.now + 600.0
        self.now = self.end
        if progress is not None:
            progress(self.end)
        samples = self._samples()
        return FleetResult(
            self.scenario, samples, self.beacons, self.labels(), self.events,
            time.perf_counter() - wall,
        )  # fmt: skip

    # -- users ---------------------------------------------------------------------------

    def _diurnal(self, t: float) -> float:
        users = self.scenario.users
        hour = ((self.origin + t) / 3600.0) % 24.0
        return 1.0 + users.diurnal_amplitude * math.cos(2 * math.pi * (hour - users.peak_hour) / 24)

    def _arrival(self) -> None:
        """A candidate arrival of the (thinned) diurnal Poisson process."""
        users = self.scenario.users
        peak = users.sessions_per_hour / 3600.0 * (1 + users.diurnal_amplitude)
        self.push(self.now + self.users_rng.expovariate(peak), self._arrival)
        if self.users_rng.random() * (1 + users.diurnal_amplitude) <= self._diurnal(self.now):
            self._arrive(None)

    def _pick_server(self) -> _Server:
        u = self.users_rng.random()
        for bound, server in self._cumulative_shares:
            if u < bound:
                return server
        return self._cumulative_shares[-1][1]

    def _arrive(
        self, user: str | None, server: _Server | None = None, leaves_at: float | None = None
    ) -> _Session | None:
        server = server or self._pick_server()
        if user is None and server.outage is not None and self.rng.random() < server.outage[1]:
            return None  # the user's network is down: the page never loads
        users = self.scenario.users
        self._sessions += 1
        sid = f"{server.variant.name[:2]}-{self._sessions:06d}"
        client = server.variant.client
        policy = ClientPolicy(
            session_id=sid,
            variant=server.variant.name,
            user=user or f"user-{self._sessions}",
            jitter=client.jitter,
            rng=self.rng,
            base=client.base,
            cap=client.cap,
            max_attempts=client.max_attempts,
            stable_after=client.stable_after,
            dedup_size=200 if client.dedup else 0,
            summary_every=client.summary_every,
            epoch=self.origin,
        )
        if leaves_at is None:
            leaves_at = self.now + users.session_median * math.exp(
                self.users_rng.gauss(0.0, users.session_sigma)
            )
        session = _Session(
            sid, user or f"user-{self._sessions}", server, policy, leaves_at, self.now
        )
        session.sampled = zlib.crc32(sid.encode()) % 10_000 < self.scenario.rum_sample * 10_000
        self.truth[server.variant.name].sessions += 1
        self.live[sid] = session
        self.push(session.leaves_at, self._leave, session)
        self._apply(session, policy.start(self.now))
        if policy.next_summary is not None:
            self.push(policy.next_summary, self._summary, session)
        if users.messages_per_hour > 0:
            self.push(self.now + self._think(), self._message, session)
        return session

    def _think(self) -> float:
        return self.rng.expovariate(self.scenario.users.messages_per_hour / 3600.0)

    def _leave(self, session: _Session) -> None:
        if not session.alive:
            return
        self._apply(session, session.policy.shutdown(self.now))
        session.alive = False
        self.live.pop(session.id, None)

    def _summary(self, session: _Session) -> None:
        if not session.alive:
            return
        self._apply(session, session.policy.tick(self.now))
        if session.policy.next_summary is not None:
            self.push(session.policy.next_summary, self._summary, session)

    def _refresh(self, session: _Session) -> None:
        """The user reloads the page after the client gave up: a new session."""
        if self.now >= session.leaves_at:
            return
        if session.net_down:
            self.push(self.now + self.scenario.users.refresh_delay, self._refresh, session)
            return
        session.alive = False
        self.live.pop(session.id, None)
        self.truth[session.server.variant.name].manual_refreshes += 1
        self._arrive(session.user, session.server, leaves_at=session.leaves_at)

    # -- the policy's actions ------------------------------------------------------------

    def _apply(self, session: _Session, actions: list[Any]) -> None:
        truth = self.truth[session.server.variant.name]
        for action in actions:
            if isinstance(action, Emit):
                beacon = action.beacon
                if (
                    session.sampled
                    and beacon["ts"] >= self.window_start_ms
                    and beacon["type"] not in self.exclude
                ):
                    self.beacons.append(beacon)
                if beacon["type"] == "ws.reconnect_scheduled":
                    truth.reconnects_scheduled += 1
            elif isinstance(action, Connect):
                self.push(action.at, self._attempt, session, action.socket_id)
            elif isinstance(action, CloseSocketAction):
                self._client_close(session, action.socket_id, action.code)
            elif isinstance(action, SendResume):
                self._replay(session)
            elif isinstance(action, Deliver):
                pass
            elif isinstance(action, Drop):
                if action.reason == "duplicate":
                    truth.dedup_drops += 1
                else:
                    truth.stale_drops += 1
            elif isinstance(action, GiveUp):
                truth.give_ups += 1
                if self.rng.random() < self.scenario.users.refresh_p:
                    delay = self.scenario.users.refresh_delay * self.rng.uniform(0.5, 1.5)
                    self.push(self.now + delay, self._refresh, session)

    def _attempt(self, session: _Session, socket_id: str) -> None:
        """A scheduled connection attempt reaches the network (or does not)."""
        pending = session.policy.pending
        if not session.alive or pending is None or pending.socket_id != socket_id:
            return
        server = session.server
        if session.net_down:
            self.push(self.now + CONNECT_TIMEOUT, self._attempt_failed, session, socket_id)
            return
        if self.now < server.refuse_until:  # restarting: HTTP 503, the browser sees 1006
            self.push(self.now + 0.05, self._attempt_failed, session, socket_id)
            return
        self._conn_ids += 1
        conn = self._conn_ids
        server.metrics.opened(self.now, conn)
        server.conns[conn] = session
        session.conn, session.socket_id = conn, socket_id
        self.truth[server.variant.name].connections_opened += 1
        self._apply(session, session.policy.opened(self.now, socket_id))
        if session.conn != conn:
            return
        if self._token_refused(session):
            self._server_close(session, conn, 4401, "unauthenticated")
        elif server.draining:
            self._server_close(session, conn, 1013, "drain", advice="drain")
        else:
            self._schedule_drop(session, conn)

    def _attempt_failed(self, session: _Session, socket_id: str) -> None:
        if session.alive and session.policy.is_current(socket_id) and session.conn is None:
            self._apply(session, session.policy.closed(self.now, socket_id, 1006, "network"))

    def _token_refused(self, session: _Session) -> bool:
        server = session.server
        client = server.variant.client
        issued = self.now if client.token_refresh else session.token_issued
        if self.now + server.settings.token_skew >= issued + self.scenario.users.token_ttl:
            return True
        rotation = server.rotation
        if rotation is not None:  # signed with the old secret: anything issued before `until`
            _, until, reject_p = rotation
            if issued < until:
                return self.rng.random() < reject_p
        return False

    def _schedule_drop(self, session: _Session, conn: int) -> None:
        """When this connection will die by itself (drops, lifetime, a storm), if ever."""
        settings = session.server.settings
        candidates = []
        if settings.drop_rate > 0:
            candidates.append(self.rng.expovariate(settings.drop_rate / 3600.0))
        if settings.lifetime_median is not None:
            candidates.append(
                settings.lifetime_median * math.exp(self.rng.gauss(0.0, settings.lifetime_sigma))
            )
        storm = session.server.storm
        if storm is not None and session.flapping:
            candidates.append(self.rng.expovariate(1.0 / storm[2]))
        if candidates:
            self.push(self.now + min(candidates), self._drop, session, conn)

    def _drop(self, session: _Session, conn: int) -> None:
        if session.conn == conn and not session.net_down:
            self._server_close(session, conn, 1006, "abrupt_drop")

    def _server_close(
        self, session: _Session, conn: int, code: int, reason: str, advice: str | None = None
    ) -> None:
        """The server ends a connection; the client sees the close (after any advice)."""
        if session.conn != conn:
            return
        server = session.server
        socket_id = session.socket_id
        if advice is not None:
            retry = ADVICE_AFTER.get(advice, 1.0)
            server.metrics.advice(advice)
            server.metrics.frame_sent("reconnect_advice")
            self._apply(
                session,
                session.policy.message(
                    self.now, socket_id, ReconnectAdvice(advice, int(retry * 1000))
                ),
            )
        self._end_conn(session, conn, code, reason)
        self._apply(session, session.policy.closed(self.now, socket_id, code, reason))

    def _end_conn(self, session: _Session, conn: int, code: int, reason: str) -> None:
        server = session.server
        server.metrics.closed(self.now, conn, code, reason)
        server.conns.pop(conn, None)
        self.truth[server.variant.name].closes[code] += 1
        if session.conn == conn:
            session.conn, session.socket_id = None, None

    def _client_close(self, session: _Session, socket_id: str, code: int) -> None:
        """The policy closed its socket (offline, shutdown, stale)."""
        if session.conn is None or session.socket_id != socket_id:
            return
        conn = session.conn
        session.conn, session.socket_id = None, None
        if session.net_down:  # the close frame never arrives: the keepalive notices
            self.push(self.now + self.rng.uniform(*KEEPALIVE), self._server_notices, session, conn)
        else:
            self._end_conn(session, conn, code, "client")

    def _server_notices(self, session: _Session, conn: int) -> None:
        if conn in session.server.conns:
            self._end_conn(session, conn, 1006, "abnormal")

    # -- messages ------------------------------------------------------------------------

    def _message(self, session: _Session) -> None:
        if not session.alive:
            return
        self.push(self.now + self._think(), self._message, session)
        server = session.server
        truth = self.truth[server.variant.name]
        if session.conn is None or session.net_down or session.policy.status != "open":
            truth.messages_unsent += 1
            return
        session.messages += 1
        truth.messages_sent += 1
        thread = f"t-{self.rng.randrange(self.scenario.users.threads) + 1}"
        trace = f"{session.id}.m{session.messages}"
        socket_id = session.socket_id
        self._apply(session, session.policy.sent(self.now, thread, trace))
        if self.rng.random() < server.settings.internal_error_p:
            server.metrics.frame_sent("error")
            frame = ErrorFrame("internal", "internal error", thread)
            self._apply(session, session.policy.message(self.now, socket_id, frame))
            self._server_close(session, session.conn, 1011, "internal_error")
            return
        server.metrics.frame_sent("typing")
        s = server.settings
        ttfb = s.ttfb_median * math.exp(self.rng.gauss(0.0, s.ttfb_sigma)) + s.ttfb_extra
        self.push(self.now + ttfb, self._reply, session, thread, trace, self.now)

    def _reply(self, session: _Session, thread: str, trace: str, received: float) -> None:
        """The answer is ready: stored, observed, pushed if the socket is there."""
        server = session.server
        server.metrics.ttfb(self.now - received)
        self.truth[server.variant.name].replies += 1
        session.seq[thread] += 1
        frame = AssistantMessage(thread, session.seq[thread], trace, f"{trace}.a1")
        if not session.alive:
            return
        if session.conn is None or session.net_down:
            session.pending.append(frame)
            return
        self._deliver(session, frame)

    def _deliver(self, session: _Session, frame: AssistantMessage) -> None:
        server = session.server
        copies = 1
        if server.settings.duplicate_p and self.rng.random() < server.settings.duplicate_p:
            copies = 2
            self.truth[server.variant.name].duplicates_sent += 1
        for copy in range(copies):
            server.metrics.frame_sent("assistant_message")
            actions = session.policy.message(self.now, session.socket_id, frame)
            if copy and any(isinstance(a, Deliver) for a in actions):
                self.truth[server.variant.name].duplicates_delivered += 1
            self._apply(session, actions)

    def _replay(self, session: _Session) -> None:
        """After a resume the server sends what the client missed, once, in order."""
        pending, session.pending = session.pending, []
        for frame in pending:
            if session.conn is None:
                session.pending.append(frame)
            else:
                self._deliver(session, frame)

    # -- the timeline --------------------------------------------------------------------

    def _targets(self, event: Event) -> list[_Server]:
        return [self.servers[name] for name in event.variants]

    def _begin(self, event: Event) -> None:
        for server in self._targets(event):
            sessions = list(server.conns.values())
            if event.kind == "restart":
                server.refuse_until = self.now + event.params.get("downtime", 0.0)
                for session in sessions:
                    self._server_close(session, session.conn, 1012, "restart", advice="restart")
            elif event.kind == "drain":
                server.draining = True
                for session in sessions:
                    self._server_close(session, session.conn, 1013, "drain", advice="drain")
            elif event.kind == "network_outage":
                self._outage(server, event)
            elif event.kind == "token_rotation":
                reject_p = event.params.get("reject_p", 1.0)
                server.rotation = (self.now, self.window_start + event.end, reject_p)
                if event.params.get("revalidate", False):
                    for session in sessions:
                        if self.rng.random() < reject_p:
                            self._server_close(session, session.conn, 4401, "unauthenticated")
            elif event.kind == "latency":
                extra = event.params.get("extra", 0.5)
                server.settings = _replace(
                    server.settings, ttfb_extra=server.settings.ttfb_extra + extra
                )
            elif event.kind == "reconnect_storm":
                share = event.params.get("share", 1.0)
                server.storm = (
                    self.window_start + event.end,
                    share,
                    event.params.get("lifetime", 20.0),
                )
                for session in self._sessions_of(server):
                    session.flapping = self.rng.random() < share
                    if session.flapping and session.conn is not None:
                        self._schedule_drop(session, session.conn)
            elif event.kind == "server_faults":
                changes = {n: getattr(event.params["set"], n) for n in event.params["set_fields"]}
                server.settings = _replace(server.settings, **changes)

    def _finish(self, event: Event) -> None:
        for server in self._targets(event):
            if event.kind == "drain":
                server.draining = False
            elif event.kind == "network_outage":
                server.outage = None
                for session in self._sessions_of(server):
                    if session.net_down:
                        session.net_down = False
                        if session.browser_offline:
                            session.browser_offline = False
                            self._apply(session, session.policy.online(self.now))
            elif event.kind == "token_rotation":
                pass  # the window bound is in `rotation`; old tokens stay refused
            elif event.kind == "latency":
                extra = event.params.get("extra", 0.5)
                server.settings = _replace(
                    server.settings, ttfb_extra=server.settings.ttfb_extra - extra
                )
            elif event.kind == "reconnect_storm":
                server.storm = None
                for session in self._sessions_of(server):
                    session.flapping = False
            elif event.kind == "server_faults":  # back to the variant's own values
                restore = {f: getattr(server.variant.server, f) for f in event.params["set_fields"]}
                server.settings = _replace(server.settings, **restore)

    def _sessions_of(self, server: _Server) -> list[_Session]:
        """Live sessions of a server, connected or not (kept in arrival order)."""
        return [s for s in self.live.values() if s.server is server]

    def _outage(self, server: _Server, event: Event) -> None:
        share = event.params.get("share", 1.0)
        offline = event.params.get("browser_offline", False)
        server.outage = (self.window_start + event.end, share)
        for session in self._sessions_of(server):
            if self.rng.random() >= share:
                continue
            session.net_down = True
            if offline:
                session.browser_offline = True
                self._apply(session, session.policy.offline(self.now))
            elif session.conn is not None:  # both ends find out by keepalive
                delay = self.rng.uniform(*KEEPALIVE)
                self.push(self.now + delay, self._dead_network_close, session, session.conn)

    def _dead_network_close(self, session: _Session, conn: int) -> None:
        if session.conn == conn:
            socket_id = session.socket_id
            self._end_conn(session, conn, 1006, "abnormal")
            self._apply(session, session.policy.closed(self.now, socket_id, 1006, "abnormal"))

    # -- Prometheus ----------------------------------------------------------------------

    def _scrape(self) -> None:
        ts = int(round((self.origin + self.now) * 1000))
        rows = self.rows
        for name, server in self.servers.items():
            for metric, labels, value in _snapshot(server.metrics):
                rows["ts"].append(ts)
                rows["metric"].append(metric)
                rows["variant"].append(name)
                rows["value"].append(value)
                for label in LABELS:
                    rows[label].append(labels.get(label))

    def _samples(self) -> pl.DataFrame:
        frame = pl.DataFrame(
            self.rows,
            schema={"ts": pl.Int64, "metric": pl.Utf8, "variant": pl.Utf8, "value": pl.Float64}
            | {label: pl.Utf8 for label in LABELS},
        )
        frame = frame.with_columns(pl.col("ts").cast(TIMESTAMP).alias("timestamp")).drop("ts")
        empty = [c for c in LABELS if frame[c].null_count() == frame.height]
        return frame.drop(empty)

    # -- ground truth --------------------------------------------------------------------

    def labels(self) -> dict[str, Any]:
        truth = {name: t.to_json() for name, t in self.truth.items()}
        return dataset_labels(self.scenario, truth, engine="simulated")


def dataset_labels(scenario: Scenario, truth: dict[str, Any], engine: str) -> dict[str, Any]:
    """labels.json: faults per variant, incidents, `expect`, and what really happened."""
    start = scenario.start

    def at(offset: float) -> str:
        return (start + timedelta(seconds=offset)).isoformat()

    variants: dict[str, Any] = {}
    for v in scenario.variants:
        faults = [
            dict(f)
            | {
                "start": at(parse_duration(f.get("start", 0), f"{v.name}.faults.start")),
                "end": at(parse_duration(f.get("end", scenario.duration), f"{v.name}.faults.end")),
            }
            for f in v.faults
        ]
        for event in scenario.timeline:
            if v.name in event.variants:
                faults.append(_event_json(event, at))
        variants[v.name] = {
            "traffic_share": v.share,
            "client": asdict(v.client),
            "server": asdict(v.server),
            "faults": faults,
        }
    incidents = []
    names = [v.name for v in scenario.variants]  # issue 18: the incidents' scope
    for event in scenario.timeline:
        end = event.end
        if event.kind == "restart":
            end = event.start + max(60.0, event.params.get("downtime", 0.0))
        for name in event.variants:
            incidents.append(
                {"kind": INCIDENT_OF[event.kind], "variant": name,
                 "start": at(event.start), "end": at(end),
                 "scope": incident_scope(event.variants, names)}
            )  # fmt: skip
    for incident in scenario.expect.get("incidents", []):
        incidents.append(
            dict(incident)
            | {
                "start": at(parse_duration(incident["start"], "expect.incidents.start")),
                "end": at(parse_duration(incident["end"], "expect.incidents.end")),
            }
            | {"scope": incident.get("scope") or incident_scope([incident["variant"]], names)}
        )
    expect = {k: v for k, v in scenario.expect.items() if k != "incidents"}
    return {
        "dataset": scenario.name,
        "description": scenario.description,
        "generator": "wsanalysis.reference.fleet",
        "engine": engine,
        "seed": scenario.seed,
        "window": {"start": at(0), "end": at(scenario.duration)},
        "scrape_interval_s": scenario.scrape_interval,
        # RUM kept per session (scale per-day counts by 1/sample) and types left out
        "rum": {
            "session_sample": scenario.rum_sample,
            "excluded_types": list(scenario.rum_exclude),
        },
        "variants": variants,
        "incidents": sorted(incidents, key=lambda i: (i["start"], i["variant"], i["kind"])),
        "expect": expect,
        "truth": truth,
    }


# -- issue 18: which variants an injected incident hit -----------------------------------
def incident_scope(hit: list[str] | tuple[str, ...], variants: list[str]) -> str:
    """`fleet` when the incident hit every variant of the run (or the run has one), else
    the one variant it hit: the scope an incident episode is scored against."""
    if set(variants) <= set(hit) or len(set(hit)) != 1:
        return "fleet"
    return next(iter(hit))


def _snapshot(metrics: ServerMetrics) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the registry, as a scrape would see it (no `_created`).

    Reads the collectors' values directly (about 20× cheaper than
    `registry.collect()`, which the simulator would otherwise call thousands of times);
    falls back to `collect()` should prometheus_client's internals change.
    """
    try:
        return _fast_snapshot(metrics)
    except AttributeError:  # pragma: no cover - depends on prometheus_client internals
        return [
            (sample.name, sample.labels, float(sample.value))
            for family in metrics.registry.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")
        ]


def _fast_snapshot(metrics: ServerMetrics) -> list[tuple[str, dict[str, str], float]]:
    out: list[tuple[str, dict[str, str], float]] = [
        ("ws_connections_active", {}, float(metrics.active._value.get())),
        ("ws_connections_total", {}, float(metrics.opened_total._value.get())),
    ]
    for counter, family in (
        (metrics.closes, "ws_closes_total"),
        (metrics.frames, "ws_frames_sent_total"),
        (metrics.advice_total, "ws_reconnect_advice_total"),
    ):
        names = counter._labelnames
        for values, child in sorted(counter._metrics.items()):
            out.append((family, dict(zip(names, values, strict=True)), float(child._value.get())))
    for histogram, family in (
        (metrics.duration, "ws_connection_duration_seconds"),
        (metrics.ttfb_seconds, "ws_assistant_ttfb_seconds"),
    ):
        total = 0.0
        for bound, bucket in zip(histogram._upper_bounds, histogram._buckets, strict=True):
            total += bucket.get()
            out.append((f"{family}_bucket", {"le": _le(bound)}, total))
        out.append((f"{family}_count", {}, total))
        out.append((f"{family}_sum", {}, float(histogram._sum.get())))
    return out


def _le(bound: float) -> str:
    """prometheus_client's rendering of a bucket bound (`1.0`, `+Inf`)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _beacon_frame(beacons: list[dict[str, Any]]) -> pl.DataFrame:
    """The beacons as a RUM frame, fast: unknown fields (ws.summary's) go to `extra`."""
    rows = []
    for beacon in beacons:
        if beacon["type"] == "ws.summary":
            row = {k: v for k, v in beacon.items() if k in RUM_SCHEMA}
            extra = {k: v for k, v in beacon.items() if k not in RUM_SCHEMA}
            row["extra"] = json.dumps(extra, separators=(",", ":")) if extra else None
            rows.append(row)
        else:
            rows.append(beacon)
    schema = {c: (pl.Int64() if c == "ts" else t) for c, t in RUM_SCHEMA.items()}
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return frame.with_columns(pl.col("ts").cast(TIMESTAMP))


def _replace(settings: ServerSettings, **changes: Any) -> ServerSettings:
    return replace(settings, **changes)


def _event_json(event: Event, at: Callable[[float], str]) -> dict[str, Any]:
    params = {k: v for k, v in event.params.items() if k not in ("set", "set_fields")}
    if "set" in event.params:
        params["set"] = {n: getattr(event.params["set"], n) for n in event.params["set_fields"]}
    return {"kind": event.kind, "start": at(event.start), "end": at(event.end)} | params


def simulate(scenario: Scenario, progress: Callable[[float], None] | None = None) -> FleetResult:
    """Run a scenario with the `simulated` engine."""
    return FleetSimulation(scenario).run(progress)


def write_dataset(result: FleetResult, folder: str | Path) -> Path:
    """Write the dataset folder: metrics.om (or .om.gz), rum.ndjson.gz, labels.json,
    scenario.yaml. Metric and RUM files already there are replaced."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metrics = folder / ("metrics.om.gz" if result.scenario.metrics_gzip else "metrics.om")
    for stale in ("metrics.om", "metrics.om.gz", "rum.ndjson.gz", "rum.ndjson", "rum.parquet"):
        if (folder / stale).exists():
            (folder / stale).unlink()  # a folder holds one dataset, never two mixed
    if result.scenario.metrics_gzip:  # gzip with no timestamp: same seed, same bytes
        plain = folder / "metrics.om"
        write_openmetrics(result.samples, plain)
        with metrics.open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as out:
            out.write(plain.read_bytes())
        plain.unlink()
    else:
        write_openmetrics(result.samples, metrics)
    write_rum(_beacon_frame(result.beacons), folder / "rum.ndjson.gz")
    (folder / "labels.json").write_text(json.dumps(result.labels, indent=2) + "\n")
    (folder / "scenario.yaml").write_text(result.scenario.to_yaml())
    return folder
