"""The production client's connection policy, sans-I/O: feed it events, do what it says.

`ClientPolicy` never sleeps, reads a clock or touches a socket. The driver (the asyncio
client in `client.py`, or the fleet simulator with a virtual clock) tells it what
happened — `start`, `opened`, `closed`, `message`, `sent`, `advice`, `online`,
`offline`, `tick`, `shutdown`, each with the current time `now` in seconds — and gets
back a list of actions:

- `Connect(at, socket_id, attempt, backoff)`: open socket `socket_id` at time `at`. A
  newer `Connect` or a `Cancel` supersedes it (one scheduled attempt at a time).
- `Cancel(reason)`: forget the scheduled attempt (timers off).
- `CloseSocket(socket_id, code, reason)`: close that socket; it no longer counts.
- `SendResume(socket_id, threads)`: send a resume frame with the last seq per thread.
- `Deliver(frame)`: hand the frame to the application.
- `Drop(reason, socket_id, key)`: an event was dropped (stale socket, duplicate).
- `GiveUp(error, code, attempts)`: stop; surface `error` to the application.
- `Emit(beacon)`: a RUM beacon dict of the contract (docs/architecture.md).

Decisions where the production brief is silent:

- Backoff is `base × 2^(attempt-1)` capped at `cap` (1, 2, 4, 8, 16, 16, ... s), then
  jittered; the cap applies to the base, so production jitter can reach 1.2 × cap.
- The attempt counter is reset only by a connection that stayed open `stable_after`
  seconds (default 10 s) or by an `online` event — not by every open: a server that
  accepts and closes at once (drain, overload) must still see the client back off.
- 1011 (internal error) is retried with backoff: `websockets` closes with 1011 when a
  keepalive ping times out, which is a network problem a retry fixes, and a server bug
  is bounded by the attempt limit. Never retried: 4401 (auth; the token was refreshed
  before the attempt, so retrying cannot help), 4403, 1008 (policy), 1003 (unsupported
  data), 1002 and 1007 (protocol errors are client bugs). Everything else is retried.
- A `reconnect_advice` frame raises the base delay of the next attempt to at least
  `retry_after`; jitter still applies, so advice does not line every client up.
- `offline` closes the current socket (recorded as 1006 "offline"), cancels timers and
  sets status `disconnected`; `online` resets backoff and connects at once (unless
  the policy gave up on a terminal code or was shut down).

States are explicit, as in h11: `State` and the table `TRANSITIONS` (per state, the
events it accepts and the states each may lead to). An event the table does not allow
(`start` twice, `sent` or `shutdown` after `shutdown`) raises `PolicyError`: it is a bug
in the driver, never silently ignored. Events from a socket (`opened`, `closed`,
`message`, `advice`) are accepted in every state; one from a socket that is not the
current one is dropped as stale (a `Drop` and a `ws.stale_drop` beacon).
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Concatenate, ParamSpec

from wsanalysis.reference.protocol import (
    AssistantMessage,
    Frame,
    ReconnectAdvice,
    dedup_key,
)

JITTER_STRATEGIES = ("production", "full", "equal", "decorrelated", "none")
#: Close codes that are never retried (see the module docstring).
TERMINAL_CODES = frozenset({1002, 1003, 1007, 1008, 4401, 4403})
#: What the application is told for each terminal code.
TERMINAL_ERRORS = {
    4401: "authentication failed (close 4401): the token was refused; sign in again",
    4403: "forbidden (close 4403): this user may not open the socket",
    1008: "policy violation (close 1008): the server refused a message or the origin",
    1003: "unsupported data (close 1003): the server does not accept this frame type",
    1002: "protocol error (close 1002): client and server disagree on the protocol",
    1007: "invalid data (close 1007): the server could not decode a frame",
}
#: Code recorded for a socket the policy abandons itself (offline, shutdown).
ABANDONED = 1006


class State(StrEnum):
    """Where a client is; `ws.summary` beacons carry the value."""

    IDLE = "idle"  # not started
    CONNECTING = "connecting"  # first attempt (or one after `online`) scheduled
    RECONNECTING = "reconnecting"  # a retry is scheduled after a close
    OPEN = "open"
    DISCONNECTED = "disconnected"  # offline: no socket, no timer
    FAILED = "failed"  # gave up (terminal code or attempts exhausted)
    CLOSED = "closed"  # shut down by the application


class PolicyError(RuntimeError):
    """The driver fed an event the policy's state does not allow (a bug in the driver)."""


_SOCKET_EVENTS = ("opened", "closed", "message", "advice")


def _row(state: State, **events: tuple[State, ...]) -> dict[str, frozenset[State]]:
    """One state's row: every socket event may be stale (the state stays), plus `events`."""
    row = {event: frozenset({state}) for event in _SOCKET_EVENTS}
    for event, targets in events.items():
        row[event] = row.get(event, frozenset()) | frozenset(targets)
    return row


_S = State
_RETRY = (_S.RECONNECTING, _S.FAILED)
#: Per state, the events it accepts and the states each may lead to. Missing: illegal.
TRANSITIONS: dict[State, dict[str, frozenset[State]]] = {
    _S.IDLE: _row(
        _S.IDLE, start=(_S.CONNECTING,), sent=(_S.IDLE,), online=(_S.IDLE,),
        offline=(_S.IDLE,), tick=(_S.IDLE,), shutdown=(_S.CLOSED,),
    ),
    _S.CONNECTING: _row(
        _S.CONNECTING, opened=(_S.OPEN,), closed=_RETRY, sent=(_S.CONNECTING,),
        online=(_S.CONNECTING,), offline=(_S.DISCONNECTED,), tick=(_S.CONNECTING,),
        shutdown=(_S.CLOSED,),
    ),
    _S.RECONNECTING: _row(
        _S.RECONNECTING, opened=(_S.OPEN,), closed=_RETRY, sent=(_S.RECONNECTING,),
        online=(_S.CONNECTING,), offline=(_S.DISCONNECTED,), tick=(_S.RECONNECTING,),
        shutdown=(_S.CLOSED,),
    ),
    _S.OPEN: _row(
        _S.OPEN, closed=_RETRY, sent=(_S.OPEN,), online=(_S.OPEN,),
        offline=(_S.DISCONNECTED,), tick=(_S.OPEN,), shutdown=(_S.CLOSED,),
    ),
    _S.DISCONNECTED: _row(
        _S.DISCONNECTED, sent=(_S.DISCONNECTED,), online=(_S.CONNECTING, _S.DISCONNECTED),
        offline=(_S.DISCONNECTED,), tick=(_S.DISCONNECTED,), shutdown=(_S.CLOSED,),
    ),
    _S.FAILED: _row(
        _S.FAILED, sent=(_S.FAILED,), online=(_S.CONNECTING, _S.FAILED),
        offline=(_S.DISCONNECTED,), tick=(_S.FAILED,), shutdown=(_S.CLOSED,),
    ),
    # the browser's online/offline still fire after a shutdown; nothing else may happen
    _S.CLOSED: _row(_S.CLOSED, online=(_S.CLOSED,), offline=(_S.CLOSED,), tick=(_S.CLOSED,)),
}  # fmt: skip

_P = ParamSpec("_P")


def _event(
    name: str,
) -> Callable[
    [Callable[Concatenate[ClientPolicy, float, _P], list[Action]]],
    Callable[Concatenate[ClientPolicy, float, _P], list[Action]],
]:
    """Check an event against `TRANSITIONS`: refused before it runs if the state does not
    accept it, and the state it leads to must be one the table names."""

    def wrap(
        method: Callable[Concatenate[ClientPolicy, float, _P], list[Action]],
    ) -> Callable[Concatenate[ClientPolicy, float, _P], list[Action]]:
        @functools.wraps(method)
        def run(
            self: ClientPolicy, now: float, *args: _P.args, **kwargs: _P.kwargs
        ) -> list[Action]:
            allowed = TRANSITIONS[self.state].get(name)
            if allowed is None:
                raise PolicyError(
                    f"{name} is not allowed when the client is {self.state.value} "
                    f"(session {self.session_id}); the driver must not send it"
                )
            actions = method(self, now, *args, **kwargs)
            if self.state not in allowed:
                raise PolicyError(
                    f"{name} led from {allowed} to {self.state.value}, which TRANSITIONS "
                    "does not allow: the table and the policy disagree"
                )
            return actions

        return run

    return wrap


@dataclass(frozen=True)
class Connect:
    at: float
    socket_id: str
    attempt: int
    backoff: float


@dataclass(frozen=True)
class Cancel:
    reason: str


@dataclass(frozen=True)
class CloseSocket:
    socket_id: str
    code: int
    reason: str


@dataclass(frozen=True)
class SendResume:
    socket_id: str
    threads: dict[str, int]


@dataclass(frozen=True)
class Deliver:
    frame: Frame


@dataclass(frozen=True)
class Drop:
    reason: str
    socket_id: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class GiveUp:
    error: str
    code: int | None
    attempts: int


@dataclass(frozen=True)
class Emit:
    beacon: dict[str, Any]


Action = Connect | Cancel | CloseSocket | SendResume | Deliver | Drop | GiveUp | Emit


class Backoff:
    """Exponential backoff with a jitter strategy and an injected `random.Random`.

    `production`: base × (0.8 + 0.4·U) (±20 %); `full`: U·base; `equal`:
    base/2 + U·base/2; `decorrelated` (AWS): min(cap, U(base₀, 3·previous));
    `none`: base.
    """

    def __init__(
        self,
        strategy: str = "production",
        *,
        rng: random.Random | None = None,
        base: float = 1.0,
        cap: float = 16.0,
    ) -> None:
        if strategy not in JITTER_STRATEGIES:
            raise ValueError(f"jitter must be one of {', '.join(JITTER_STRATEGIES)}")
        self.strategy = strategy
        self.rng = rng if rng is not None else random.Random(0)
        self.base = base
        self.cap = cap
        self._previous = base

    def base_delay(self, attempt: int) -> float:
        """The un-jittered delay before attempt `attempt` (1-based)."""
        return min(self.cap, self.base * 2.0 ** max(0, attempt - 1))

    def delay(self, attempt: int, floor: float = 0.0) -> float:
        """The jittered delay before attempt `attempt`, with a base of at least `floor`."""
        base = max(self.base_delay(attempt), floor)
        u = self.rng.random()
        if self.strategy == "production":
            return base * (0.8 + 0.4 * u)
        if self.strategy == "full":
            return base * u
        if self.strategy == "equal":
            return base / 2 + base / 2 * u
        if self.strategy == "decorrelated":
            upper = max(self.base, 3.0 * self._previous)
            self._previous = max(floor, min(self.cap, self.base + (upper - self.base) * u))
            return self._previous
        return base

    def reset(self) -> None:
        self._previous = self.base


class ClientMetrics:
    """The production client's metrics tracker; `summary(now)` is the `ws.summary` body.

    Keeps the last `window` connection durations for the average and p95, so a
    long-lived client's memory stays bounded.
    """

    def __init__(self, window: int = 1000) -> None:
        self.close_codes: Counter[int] = Counter()
        self.durations: deque[float] = deque(maxlen=window)
        self.backoff_total = 0.0
        self.backoff_count = 0
        self.opened_at: float | None = None
        self.connections = 0

    def opened(self, now: float) -> None:
        self.opened_at = now
        self.connections += 1

    def closed(self, now: float, code: int) -> float | None:
        """Record a close; return how long the socket was open (None if it never was)."""
        self.close_codes[code] += 1
        if self.opened_at is None:
            return None
        duration = max(0.0, now - self.opened_at)
        self.durations.append(duration)
        self.opened_at = None
        return duration

    def backoff(self, seconds: float) -> None:
        self.backoff_total += seconds
        self.backoff_count += 1

    @property
    def average_backoff(self) -> float | None:
        return self.backoff_total / self.backoff_count if self.backoff_count else None

    @property
    def average_duration(self) -> float | None:
        return sum(self.durations) / len(self.durations) if self.durations else None

    @property
    def p95_duration(self) -> float | None:
        """Nearest-rank 95th percentile of the recorded connection durations."""
        if not self.durations:
            return None
        ordered = sorted(self.durations)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    def current_duration(self, now: float) -> float | None:
        return None if self.opened_at is None else max(0.0, now - self.opened_at)

    def summary(self, now: float) -> dict[str, Any]:
        def ms(seconds: float | None) -> float | None:
            return None if seconds is None else round(seconds * 1000.0, 3)

        return {
            "close_codes": {str(code): n for code, n in sorted(self.close_codes.items())},
            "avg_backoff_ms": ms(self.average_backoff),
            "avg_duration_ms": ms(self.average_duration),
            "p95_duration_ms": ms(self.p95_duration),
            "current_duration_ms": ms(self.current_duration(now)),
            "connections": self.connections,
            "reconnects_scheduled": self.backoff_count,
        }


@dataclass
class _Counters:
    stale_drops: int = 0
    dedup_drops: int = 0
    delivered: int = 0
    gave_up: int = 0


@dataclass
class ClientPolicy:
    """One client's connection policy (see the module docstring for the contract)."""

    session_id: str
    variant: str = "control"
    user: str | None = None
    jitter: str = "production"
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    base: float = 1.0
    cap: float = 16.0
    max_attempts: int = 10
    stable_after: float = 10.0
    dedup_size: int = 200
    summary_every: float = 60.0
    #: Epoch seconds at policy time 0, so beacons carry wall-clock `ts`.
    epoch: float = 0.0

    def __post_init__(self) -> None:
        self.backoff = Backoff(self.jitter, rng=self.rng, base=self.base, cap=self.cap)
        self.metrics = ClientMetrics()
        self.counters = _Counters()
        self.state = State.IDLE
        self.current_socket: str | None = None
        self.pending: Connect | None = None
        self.attempts = 0
        self.last_seq: dict[str, int] = {}
        self.error: GiveUp | None = None
        self._socket_open = False
        self._last_duration: float | None = None
        self._sockets = 0
        self._advice_floor = 0.0
        self._advice_why: str | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._sent_at: OrderedDict[str, float] = OrderedDict()
        self._next_summary: float | None = None
        self._user_hash = hashlib.sha256(self.user.encode()).hexdigest()[:16] if self.user else None

    # -- events ------------------------------------------------------------------

    @property
    def status(self) -> State:
        """The state (a `str` enum: `policy.status == "open"` reads as it did)."""
        return self.state

    @_event("start")
    def start(self, now: float) -> list[Action]:
        """Connect for the first time (at once)."""
        self._next_summary = now + self.summary_every
        return self._schedule(now, delay=0.0, attempt=0)

    @_event("opened")
    def opened(self, now: float, socket_id: str) -> list[Action]:
        if self._stale(socket_id) or self._socket_open:
            return self._stale_drop(now, socket_id, "opened")
        self.state = State.OPEN
        self.pending = None
        self._socket_open = True
        self._advice_floor, self._advice_why = 0.0, None
        self.metrics.opened(now)
        actions: list[Action] = [
            Emit(self._beacon(now, "ws.open", socket_id=socket_id, attempt=self.attempts))
        ]
        if self.last_seq:
            actions.append(SendResume(socket_id, dict(self.last_seq)))
        return actions

    @_event("closed")
    def closed(self, now: float, socket_id: str, code: int, reason: str = "") -> list[Action]:
        """The socket closed (or the attempt failed: pass 1006, as a browser would)."""
        if self._stale(socket_id):
            return self._stale_drop(now, socket_id, "closed")
        actions = self._record_close(now, socket_id, code, reason)
        if code in TERMINAL_CODES:
            return actions + self._give_up(now, TERMINAL_ERRORS[code], code)
        if self._last_duration is not None and self._last_duration >= self.stable_after:
            self.attempts = 0
            self.backoff.reset()
        if self.attempts >= self.max_attempts:
            error = (
                f"could not reconnect after {self.attempts} attempts (last close {code}); "
                "check the network or the server"
            )
            return actions + self._give_up(now, error, code)
        attempt = self.attempts + 1
        delay = self.backoff.delay(attempt, floor=self._advice_floor)
        self.metrics.backoff(delay)
        return actions + self._schedule(now, delay=delay, attempt=attempt, code=code)

    @_event("message")
    def message(self, now: float, socket_id: str, frame: Frame) -> list[Action]:
        if self._stale(socket_id):
            return self._stale_drop(now, socket_id, "message")
        if isinstance(frame, ReconnectAdvice):
            return self.advice(now, socket_id, frame.retry_after_ms / 1000.0, frame.why)
        if not isinstance(frame, AssistantMessage):
            return [Deliver(frame)]
        key = dedup_key(frame)
        if key in self._seen:
            self._seen.move_to_end(key)
            self.counters.dedup_drops += 1
            beacon = self._beacon(
                now, "ws.dedup_drop", socket_id=socket_id, thread_id=frame.thread_id, trace=key
            )
            return [Drop("duplicate", socket_id, key), Emit(beacon)]
        self._seen[key] = None
        while len(self._seen) > self.dedup_size:
            self._seen.popitem(last=False)
        self.last_seq[frame.thread_id] = max(self.last_seq.get(frame.thread_id, 0), frame.seq)
        self.counters.delivered += 1
        actions: list[Action] = [
            Deliver(frame),
            Emit(
                self._beacon(
                    now,
                    "ws.message",
                    socket_id=socket_id,
                    thread_id=frame.thread_id,
                    trace=frame.in_reply_to,
                )
            ),
        ]
        sent_at = self._sent_at.pop(frame.in_reply_to, None)
        if sent_at is not None:
            actions.append(
                Emit(
                    self._beacon(
                        now,
                        "ws.ttfb",
                        socket_id=socket_id,
                        thread_id=frame.thread_id,
                        trace=frame.in_reply_to,
                        ttfb_ms=round((now - sent_at) * 1000.0, 3),
                    )
                )
            )
        return actions

    @_event("sent")
    def sent(self, now: float, thread_id: str, trace: str) -> list[Action]:
        """The application sent a user message: track the thread (for resume) and TTFB."""
        self.last_seq.setdefault(thread_id, 0)
        self._sent_at[trace] = now
        while len(self._sent_at) > self.dedup_size:
            self._sent_at.popitem(last=False)
        return []

    @_event("advice")
    def advice(
        self, now: float, socket_id: str, retry_after: float, why: str = "advice"
    ) -> list[Action]:
        """The server advised waiting `retry_after` seconds before the next attempt."""
        if self._stale(socket_id):
            return self._stale_drop(now, socket_id, "advice")
        self._advice_floor = max(0.0, retry_after)
        self._advice_why = why
        return []

    @_event("offline")
    def offline(self, now: float) -> list[Action]:
        if self.state in (State.CLOSED, State.DISCONNECTED):
            return []
        if self.state == State.IDLE:  # not started: nothing to disconnect
            return [Emit(self._beacon(now, "ws.offline", online=False))]
        actions = self._abandon(now, "offline")
        self.state = State.DISCONNECTED
        return actions + [Emit(self._beacon(now, "ws.offline", online=False))]

    @_event("online")
    def online(self, now: float) -> list[Action]:
        if self.state == State.CLOSED or (self.error and self.error.code in TERMINAL_CODES):
            return []
        actions: list[Action] = [Emit(self._beacon(now, "ws.online", online=True))]
        if self.state in (State.OPEN, State.IDLE):  # connected already, or not started yet
            return actions
        self.attempts = 0
        self.backoff.reset()
        self.error = None
        self._advice_floor, self._advice_why = 0.0, None
        actions += self._abandon(now, "online")
        return actions + self._schedule(now, delay=0.0, attempt=0)

    @_event("tick")
    def tick(self, now: float) -> list[Action]:
        """Time passed: emit a `ws.summary` when one is due."""
        if self._next_summary is None or now < self._next_summary or self.state == State.CLOSED:
            return []
        while self._next_summary <= now:
            self._next_summary += self.summary_every
        return [Emit(self.summary_beacon(now))]

    @_event("shutdown")
    def shutdown(self, now: float) -> list[Action]:
        """The application closes the client: cancel everything, one last summary."""
        actions = self._abandon(now, "shutdown", code=1000)
        self.state = State.CLOSED
        return actions + [Emit(self.summary_beacon(now))]

    # -- queries -----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time the driver must act: a scheduled attempt or a summary."""
        times = [t for t in (self._next_summary,) if t is not None and self.state != State.CLOSED]
        if self.pending is not None and not self._socket_open:
            times.append(self.pending.at)
        return min(times) if times else None

    @property
    def next_summary(self) -> float | None:
        """When the next `ws.summary` is due (None before start and after shutdown)."""
        return None if self.state == State.CLOSED else self._next_summary

    def is_current(self, socket_id: str) -> bool:
        return socket_id == self.current_socket

    def summary_beacon(self, now: float) -> dict[str, Any]:
        beacon = self._beacon(now, "ws.summary", socket_id=self.current_socket)
        beacon.update(self.metrics.summary(now))
        beacon["stale_drops"] = self.counters.stale_drops
        beacon["dedup_drops"] = self.counters.dedup_drops
        beacon["status"] = self.state.value
        return beacon

    # -- internals ---------------------------------------------------------------

    def _stale(self, socket_id: str) -> bool:
        return socket_id != self.current_socket or self.state == State.CLOSED

    def _stale_drop(self, now: float, socket_id: str, event: str) -> list[Action]:
        self.counters.stale_drops += 1
        beacon = self._beacon(now, "ws.stale_drop", socket_id=socket_id, reason=event)
        actions: list[Action] = [Drop("stale_socket", socket_id), Emit(beacon)]
        if event == "opened":
            actions.append(CloseSocket(socket_id, 1000, "stale"))
        return actions

    def _record_close(self, now: float, socket_id: str, code: int, reason: str) -> list[Action]:
        was_open = self._socket_open
        self._socket_open = False
        self.current_socket = None
        self.pending = None
        self._last_duration = self.metrics.closed(now, code)
        fields: dict[str, Any] = {"socket_id": socket_id, "code": code, "reason": reason}
        if was_open and self._last_duration is not None:
            fields["duration_ms"] = round(self._last_duration * 1000.0, 3)
        return [Emit(self._beacon(now, "ws.close", **fields))]

    def _abandon(self, now: float, reason: str, code: int = ABANDONED) -> list[Action]:
        """Stop using the current socket or attempt; later events from it are stale."""
        actions: list[Action] = []
        if self.pending is not None:
            actions.append(Cancel(reason))
        socket_id = self.current_socket
        if socket_id is not None and (self._socket_open or self.pending is not None):
            if self._socket_open or self.pending.at <= now:
                actions.append(CloseSocket(socket_id, 1000, reason))
            if self._socket_open:
                actions += self._record_close(now, socket_id, code, reason)
        self.current_socket = None
        self.pending = None
        self._socket_open = False
        return actions

    def _schedule(
        self, now: float, *, delay: float, attempt: int, code: int | None = None
    ) -> list[Action]:
        self._sockets += 1
        socket_id = f"{self.session_id}-{self._sockets}"
        self.current_socket = socket_id
        self.attempts = attempt
        self.state = State.CONNECTING if attempt == 0 else State.RECONNECTING
        self.pending = Connect(at=now + delay, socket_id=socket_id, attempt=attempt, backoff=delay)
        actions: list[Action] = [self.pending]
        if attempt > 0:
            beacon = self._beacon(
                now,
                "ws.reconnect_scheduled",
                socket_id=socket_id,
                attempt=attempt,
                backoff_ms=round(delay * 1000.0, 3),
                code=code,
                reason=self._advice_why,
            )
            actions.append(Emit(beacon))
        return actions

    def _give_up(self, now: float, error: str, code: int | None) -> list[Action]:
        self.state = State.FAILED
        self.counters.gave_up += 1
        self.error = GiveUp(error, code, self.attempts)
        beacon = self._beacon(
            now, "ws.give_up", code=code, attempt=self.attempts, reason=error.split(":")[0]
        )
        return [self.error, Emit(beacon)]

    def _beacon(self, now: float, kind: str, **fields: Any) -> dict[str, Any]:
        beacon: dict[str, Any] = {
            "v": 1,
            "ts": int(round((self.epoch + now) * 1000.0)),
            "type": kind,
            "session_id": self.session_id,
            "variant": self.variant,
        }
        if self._user_hash:
            beacon["user"] = self._user_hash
        beacon.update({k: v for k, v in fields.items() if v is not None})
        return beacon
