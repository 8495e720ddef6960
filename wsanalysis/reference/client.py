"""A thin asyncio client around the sans-I/O `ClientPolicy`.

Why not `async for ws in websockets.connect(...)`: that loop never shows close codes,
resets its backoff on every successful open and cannot refresh a token asynchronously,
so it cannot express the production policy. Here one supervisor task owns the policy:
socket tasks and the application post events to it, it feeds them to the policy and
performs the actions (single writer: only the supervisor writes to a socket, and only
to the policy's current one).

The token provider (an async callable) is awaited before every connection attempt and
the fresh token goes into the URL (`?token=`) or an `Authorization` header. If it
raises, the attempt counts as failed (1006) and is retried with backoff: an auth
service blip must not end the session; the attempt limit bounds it.
A handshake answered with HTTP 401/403 counts as 4401 (not retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from wsanalysis.reference import protocol
from wsanalysis.reference.clock import Timebase
from wsanalysis.reference.policy import (
    Action,
    Cancel,
    ClientPolicy,
    CloseSocket,
    Connect,
    Deliver,
    Drop,
    Emit,
    GiveUp,
    SendResume,
)

TokenProvider = Callable[[], Awaitable[str]]


class ClientGaveUp(Exception):
    """The policy gave up; `error` says why (shown to the user)."""

    def __init__(self, error: GiveUp) -> None:
        self.error = error
        super().__init__(error.error)


class BeaconSink(Protocol):
    def emit(self, beacon: dict[str, Any]) -> None: ...

    async def flush(self) -> None: ...

    async def aclose(self) -> None: ...


class MemorySink:
    """Keeps beacons in a list (tests, live summaries)."""

    def __init__(self) -> None:
        self.beacons: list[dict[str, Any]] = []

    def emit(self, beacon: dict[str, Any]) -> None:
        self.beacons.append(beacon)

    async def flush(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class NdjsonSink:
    """Appends one beacon per line to a file; several clients may share one sink."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self.count = 0

    def emit(self, beacon: dict[str, Any]) -> None:
        self._file.write(json.dumps(beacon, separators=(",", ":")) + "\n")
        self.count += 1

    async def flush(self) -> None:
        self._file.flush()

    async def aclose(self) -> None:
        if not self._file.closed:
            self._file.close()


class HttpSink:
    """POSTs batches of beacons as NDJSON to a collector endpoint.

    Failed posts are counted (`failed`) and their beacons dropped: telemetry must
    never block or crash the chat client.
    """

    def __init__(self, url: str, *, batch: int = 100, timeout: float = 5.0) -> None:
        self.url = url
        self.batch = batch
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self._buffer: list[dict[str, Any]] = []

    def emit(self, beacon: dict[str, Any]) -> None:
        self._buffer.append(beacon)

    async def flush(self) -> None:
        while self._buffer:
            chunk, self._buffer = self._buffer[: self.batch], self._buffer[self.batch :]
            body = "".join(json.dumps(b, separators=(",", ":")) + "\n" for b in chunk).encode()
            try:
                await asyncio.to_thread(self._post, body)
                self.sent += len(chunk)
            except OSError:
                self.failed += len(chunk)

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/x-ndjson"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()

    async def aclose(self) -> None:
        await self.flush()


class ReferenceClient:
    """One chat client: connects, reconnects as the policy says, delivers replies.

    `await client.start()`, `await client.send(thread_id, text)`, read `client.inbox`,
    `await client.close()`. `client.error` holds the `GiveUp` once the policy gives up.
    """

    def __init__(
        self,
        url: str,
        token_provider: TokenProvider | None = None,
        *,
        policy: ClientPolicy | None = None,
        timebase: Timebase | None = None,
        sink: BeaconSink | None = None,
        token_in: str = "query",
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        ping_interval: float | None = 20.0,
        on_frame: Callable[[protocol.Frame], None] | None = None,
    ) -> None:
        self.url = url
        self.token_provider = token_provider
        self.time = timebase if timebase is not None else Timebase()
        self.policy = policy if policy is not None else ClientPolicy(session_id=uuid.uuid4().hex)
        self.policy.epoch = self.time.epoch
        self.sink = sink if sink is not None else MemorySink()
        if token_in not in ("query", "header"):
            raise ValueError("token_in must be 'query' or 'header'")
        self.token_in = token_in
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.on_frame = on_frame
        self.inbox: asyncio.Queue[protocol.Frame] = asyncio.Queue()
        self.error: GiveUp | None = None
        self.tokens_used: list[str] = []
        self.bad_frames = 0
        self._events: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()
        self._scheduled: Connect | None = None
        self._socket_tasks: dict[str, asyncio.Task[None]] = {}
        self._sockets: dict[str, ClientConnection] = {}
        self._outbox: list[protocol.UserMessage] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._gave_up = asyncio.Event()
        self._status_changed = asyncio.Event()

    # -- application API -----------------------------------------------------------

    @property
    def status(self) -> str:
        return self.policy.status

    async def start(self) -> ReferenceClient:
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
            self._post("start")
        return self

    async def send(self, thread_id: str, text: str, trace: str | None = None) -> str:
        """Queue a user message (sent now if open, else after the next resume)."""
        if self.error is not None:
            raise ClientGaveUp(self.error)
        trace = trace or uuid.uuid4().hex[:16]
        self._post("send", protocol.UserMessage(thread_id, trace, text))
        return trace

    def set_online(self, online: bool) -> None:
        """The network went up or down (a browser's online/offline events)."""
        self._post("online" if online else "offline")

    async def wait_status(self, status: str, timeout: float | None = None) -> None:
        """Wait (real seconds) until the policy reaches `status`."""

        async def reached() -> None:
            while self.policy.status != status:
                self._status_changed.clear()
                await self._status_changed.wait()

        await asyncio.wait_for(reached(), timeout)

    async def wait_given_up(self, timeout: float | None = None) -> GiveUp:
        await asyncio.wait_for(self._gave_up.wait(), timeout)
        assert self.error is not None
        return self.error

    async def close(self) -> None:
        """Cancel every timer and task, close the socket, flush telemetry."""
        if self._supervisor is not None and not self._supervisor.done():
            self._post("shutdown")
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._supervisor = None
        await self._reap_sockets()
        if self._flushing is not None:
            await self._flushing
            self._flushing = None
        await self.sink.flush()

    async def __aenter__(self) -> ReferenceClient:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- supervisor ------------------------------------------------------------------

    def _post(self, kind: str, *args: Any) -> None:
        self._events.put_nowait((kind, args))

    async def _supervise(self) -> None:
        while True:
            timeout = self._wait_time()
            try:
                if not self._events.empty() or timeout is None or timeout > 0:
                    kind, args = await self.time.wait_for(self._events.get(), timeout)
                else:
                    kind, args = "tick", ()
            except TimeoutError:
                kind, args = "tick", ()
            now = self.time.now()
            actions = self._feed(now, kind, args)
            await self._perform(actions)
            due = self._scheduled
            if due is not None and due.at <= self.time.now():
                self._scheduled = None
                self._open_socket(due)
            self._status_changed.set()
            if kind == "shutdown":
                return

    def _wait_time(self) -> float | None:
        scheduled = self._scheduled.at if self._scheduled is not None else None
        times = [t for t in (self.policy.next_summary, scheduled) if t is not None]
        if not times:
            return None
        return max(0.0, min(times) - self.time.now())  # virtual seconds

    def _feed(self, now: float, kind: str, args: tuple[Any, ...]) -> list[Action]:
        policy = self.policy
        if kind == "start":
            return policy.start(now)
        if kind == "opened":
            return policy.opened(now, *args)
        if kind == "closed":
            return policy.closed(now, *args)
        if kind == "message":
            return policy.message(now, *args)
        if kind == "online":
            return policy.online(now)
        if kind == "offline":
            return policy.offline(now)
        if kind == "shutdown":
            return policy.shutdown(now)
        if kind == "send":
            (message,) = args
            self._outbox.append(message)
            actions = policy.sent(now, message.thread_id, message.trace)
            return actions
        return policy.tick(now)

    async def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Connect):
                self._scheduled = action
            elif isinstance(action, Cancel):
                self._scheduled = None
            elif isinstance(action, CloseSocket):
                self._close_socket(action.socket_id, action.code, action.reason)
            elif isinstance(action, SendResume):
                frame = protocol.Resume(action.threads)
                await self._write(action.socket_id, protocol.encode(frame))
            elif isinstance(action, Deliver):
                self.inbox.put_nowait(action.frame)
                if self.on_frame is not None:
                    self.on_frame(action.frame)
            elif isinstance(action, GiveUp):
                self.error = action
                self._gave_up.set()
            elif isinstance(action, Emit):
                self.sink.emit(action.beacon)
                if action.beacon["type"] == "ws.summary":
                    self._flush_in_background()
            elif isinstance(action, Drop):
                pass  # counted by the policy, reported in its beacons
        if self.status == "open":
            await self._flush_outbox()

    def _flush_in_background(self) -> None:
        """Flush telemetry without blocking the policy loop (a collector may be slow)."""
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self.sink.flush())

    async def _flush_outbox(self) -> None:
        socket_id = self.policy.current_socket
        if socket_id is None or socket_id not in self._sockets or self.status != "open":
            return
        while self._outbox:
            message = self._outbox[0]
            if not await self._write(socket_id, protocol.encode(message)):
                return  # stays queued; resent after the next resume
            self._outbox.pop(0)

    async def _write(self, socket_id: str, text: str) -> bool:
        ws = self._sockets.get(socket_id)
        if ws is None or not self.policy.is_current(socket_id):
            return False
        try:
            await ws.send(text)
        except ConnectionClosed:
            return False
        return True

    # -- sockets -----------------------------------------------------------------------

    def _open_socket(self, action: Connect) -> None:
        task = asyncio.get_running_loop().create_task(self._run_socket(action.socket_id))
        self._socket_tasks[action.socket_id] = task
        task.add_done_callback(lambda _: self._socket_tasks.pop(action.socket_id, None))

    def _close_socket(self, socket_id: str, code: int, reason: str) -> None:
        task = self._socket_tasks.get(socket_id)
        if task is not None:
            task.cancel()

    async def _run_socket(self, socket_id: str) -> None:
        """Connect, read until closed, post what happened; cancelled = close quietly."""
        ws: ClientConnection | None = None
        try:
            try:
                url, headers = await self._authorised_target()
                ws = await connect(
                    url,
                    additional_headers=headers,
                    open_timeout=self.open_timeout,
                    close_timeout=self.close_timeout,
                    ping_interval=self.ping_interval,
                    compression=None,
                    max_size=4 * protocol.MAX_FRAME_BYTES,
                )
            except InvalidStatus as error:
                status = error.response.status_code
                code = 4401 if status in (401, 403) else 1006
                self._post("closed", socket_id, code, f"http {status}")
                return
            except (OSError, TimeoutError, WebSocketException) as error:
                self._post("closed", socket_id, 1006, type(error).__name__)
                return
            except Exception as error:  # token provider failed: a failed attempt
                self._post("closed", socket_id, 1006, f"token refresh failed: {error}")
                return
            self._sockets[socket_id] = ws
            self._post("opened", socket_id)
            try:
                async for data in ws:
                    try:
                        frame = protocol.decode(data)
                    except protocol.FrameError:
                        self.bad_frames += 1
                        continue
                    self._post("message", socket_id, frame)
            except ConnectionClosed:
                pass
            self._post("closed", socket_id, ws.close_code or 1006, ws.close_reason or "")
        finally:
            self._sockets.pop(socket_id, None)
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()

    async def _authorised_target(self) -> tuple[str, dict[str, str]]:
        if self.token_provider is None:
            return self.url, {}
        token = await self.token_provider()
        self.tokens_used.append(token)
        if self.token_in == "header":
            return self.url, {"Authorization": f"Bearer {token}"}
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"]
        query.append(("token", token))
        return urlunsplit(parts._replace(query=urlencode(query))), {}

    async def _reap_sockets(self) -> None:
        tasks = list(self._socket_tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.close_timeout + 1.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
