"""The fleet simulator's `simulated` engine: the reference stack on a virtual clock.

A discrete-event simulation (one heap of timed events, no sockets, no sleeping) of
users opening the chat, each with a real `policy.ClientPolicy` (backoff, jitter,
close-code hygiene, dedup, stale-socket rejection, RUM beacons), talking to one
server per variant whose telemetry is the real `server.ServerMetrics` and whose replies
go through the real `replies.ReplyStore`. Prometheus is imitated by reading each server's
`ServerMetrics.samples()` every scrape interval, with the `variant` as a target label;
beacons are what the clients emitted. The timeline's faults (restart, drain, outage,
token rotation, latency, reconnect storm) act on the servers, the network and the
clients exactly where the scenario says, and the ground truth goes to `labels.json`.
What the `sockets` engine shares with this one (arrivals, policy builder, ground truth,
scrape recorder) is in `fleet_core`.

Simplifications, on purpose: handshakes take no time; the token is checked by its
issue time and expiry (no HMAC — `tokens.py` is the real validator); a reply is one
`assistant_message` frame; the server notices a dead network after its keepalive
(20–40 s). Everything random draws from `random.Random(seed)` (the arrivals from their
own stream) in event order, so a seed gives the same dataset byte for byte.
"""

from __future__ import annotations

import heapq
import math
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from wsanalysis.reference.dataset_writer import write_dataset
from wsanalysis.reference.fleet_core import (
    Arrivals,
    FleetResult,
    PlannedSession,
    ScrapeRecorder,
    Truth,
    client_policy,
)
from wsanalysis.reference.labels import dataset_labels
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
from wsanalysis.reference.replies import ReplyReader, ReplyStore
from wsanalysis.reference.scenario import (
    Event,
    Scenario,
    ServerSettings,
    Variant,
)
from wsanalysis.reference.server import ADVICE_AFTER, DEFAULT_ADVICE_AFTER, ServerMetrics

__all__ = ["FleetResult", "FleetSimulation", "simulate", "write_dataset"]

#: The server's keepalive notices a dead peer this long after the network dies.
KEEPALIVE = (20.0, 40.0)
#: A connection attempt on a dead network fails (1006) after this long.
CONNECT_TIMEOUT = 2.0


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
    #: What the server sent this session, per thread (the reply store's reader).
    reader: ReplyReader = field(default_factory=ReplyReader)


class FleetSimulation:
    """Run a scenario on a virtual clock (`run()`); time 0 is the start of the warm-up."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.arrivals = Arrivals(scenario)
        self.origin = scenario.start.timestamp() - scenario.warmup  # epoch at time 0
        self.window_start = scenario.warmup
        self.end = scenario.warmup + scenario.duration
        self.window_start_ms = int(round(scenario.start.timestamp() * 1000))
        self.exclude = frozenset(scenario.rum_exclude)
        self.servers = {v.name: _Server(v, ServerMetrics(), v.server) for v in scenario.variants}
        self.truth = {v.name: Truth() for v in scenario.variants}
        self.beacons: list[dict[str, Any]] = []
        self.emitted = 0
        self.visits: list[PlannedSession] = []
        self.live: dict[str, _Session] = {}
        self.recorder = ScrapeRecorder()
        #: Replies per session and thread, unbounded: a reply waits for its session.
        self.replies = ReplyStore(max_history=None)
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._conn_ids = 0
        self._sessions = 0
        self.now = 0.0
        #: Events the loop handled (the engine's own work; `FleetResult.events` counts beacons).
        self.loop_events = 0

    # -- the loop ----------------------------------------------------------------------

    def push(self, at: float, handler: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, handler, args))

    def run(self, progress: Callable[[float], None] | None = None) -> FleetResult:
        """Simulate warm-up and window; `progress(virtual_seconds_done)` now and then."""
        wall = time.perf_counter()
        for at in self.arrivals.warm():  # start warm: a population already there
            self.push(at, self._arrive, None)
        first = self.arrivals.first_candidate()
        if first is not None:
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
            self.loop_events += 1
            if progress is not None and self.now >= next_report:
                progress(self.now)
                next_report = self.now + 600.0
        self.now = self.end
        if progress is not None:
            progress(self.end)
        return FleetResult(
            self.scenario, self.recorder.frame(), self.beacons, self.labels(), self.emitted,
            time.perf_counter() - wall, self.visits,
        )  # fmt: skip

    # -- users ---------------------------------------------------------------------------

    def _arrival(self) -> None:
        """A candidate arrival of the (thinned) diurnal Poisson process."""
        self.push(self.arrivals.next_candidate(self.now), self._arrival)
        if self.arrivals.accepted(self.now):
            self._arrive(None)

    def _arrive(
        self, user: str | None, server: _Server | None = None, leaves_at: float | None = None
    ) -> _Session | None:
        server = server or self.servers[self.arrivals.variant()]
        if user is None and server.outage is not None and self.rng.random() < server.outage[1]:
            return None  # the user's network is down: the page never loads
        self._sessions += 1
        sid = f"{server.variant.name[:2]}-{self._sessions:06d}"
        policy = client_policy(
            server.variant.client,
            session_id=sid,
            variant=server.variant.name,
            user=user or f"user-{self._sessions}",
            rng=self.rng,
            epoch=self.origin,
        )
        if leaves_at is None:
            leaves_at = self.now + self.arrivals.session_length()
            self.visits.append(PlannedSession(self.now, server.variant.name, leaves_at))
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
        if self.scenario.users.messages_per_hour > 0:
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
        self.replies.forget(session.id)

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
        self.replies.forget(session.id)
        self.truth[session.server.variant.name].manual_refreshes += 1
        self._arrive(session.user, session.server, leaves_at=session.leaves_at)

    # -- the policy's actions ------------------------------------------------------------

    def _apply(self, session: _Session, actions: list[Any]) -> None:
        truth = self.truth[session.server.variant.name]
        for action in actions:
            if isinstance(action, Emit):
                beacon = action.beacon
                self.emitted += 1
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
            retry = ADVICE_AFTER.get(advice, DEFAULT_ADVICE_AFTER)
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
        if not session.alive:
            return
        self.replies.add(
            session.id, thread, lambda seq: AssistantMessage(thread, seq, trace, f"{trace}.a1")
        )
        while session.conn is not None and not session.net_down:
            reply = self.replies.take(session.reader, session.id, thread)
            if reply is None:
                return
            self._deliver(session, reply.frame)

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
        for reply in self.replies.unsent(session.reader, session.id):
            if session.conn is None:
                return
            self.replies.sent(session.reader, reply)
            self._deliver(session, reply.frame)

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
        for name, server in self.servers.items():
            self.recorder.record(ts, name, server.metrics.samples())

    # -- ground truth --------------------------------------------------------------------

    def labels(self) -> dict[str, Any]:
        truth = {name: t.to_json() for name, t in self.truth.items()}
        return dataset_labels(self.scenario, truth, engine="simulated")


def _replace(settings: ServerSettings, **changes: Any) -> ServerSettings:
    return replace(settings, **changes)


def simulate(scenario: Scenario, progress: Callable[[float], None] | None = None) -> FleetResult:
    """Run a scenario with the `simulated` engine."""
    return FleetSimulation(scenario).run(progress)
