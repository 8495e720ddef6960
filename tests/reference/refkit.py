"""Helpers for the reference stack's socket tests (imported by the test modules)."""

from __future__ import annotations

import asyncio
import functools
import random
import urllib.request
from collections.abc import Callable

from wsanalysis.reference.client import MemorySink, ReferenceClient
from wsanalysis.reference.clock import Timebase
from wsanalysis.reference.policy import ClientPolicy
from wsanalysis.reference.server import ChatServer
from wsanalysis.reference.tokens import issue_token

SECRET = "reference-tests-secret-0123456789abcdef"


def run_async(test: Callable) -> Callable:
    """Run an async test function in a fresh event loop, bounded to 40 real seconds."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(asyncio.wait_for(test(*args, **kwargs), 40))

    return wrapper


def token_provider(timebase: Timebase, user: str = "alice", ttl: float = 3600.0):
    calls: list[str] = []

    async def provide() -> str:
        token = issue_token(SECRET, user, timebase.epoch_now(), ttl)
        calls.append(token)
        return token

    provide.calls = calls  # type: ignore[attr-defined]
    return provide


def make_client(
    server: ChatServer,
    timebase: Timebase,
    *,
    session: str = "s1",
    seed: int = 1,
    provider=None,
    **policy_kwargs,
) -> ReferenceClient:
    policy = ClientPolicy(session_id=session, rng=random.Random(seed), **policy_kwargs)
    return ReferenceClient(
        server.url,
        provider or token_provider(timebase),
        policy=policy,
        timebase=timebase,
        sink=MemorySink(),
        ping_interval=None,
    )


async def next_of_type(client: ReferenceClient, kind: str, timeout: float = 5.0):
    """The next frame of type `kind` from the client's inbox (others are skipped)."""
    while True:
        frame = await asyncio.wait_for(client.inbox.get(), timeout)
        if frame.type == kind:
            return frame


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll for something that follows on the wire (a close, a duplicate frame): real
    time, but not a budget; the generous timeout only matters on a loaded machine."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def scrape(server: ChatServer, path: str = "/metrics") -> tuple[int, str]:
    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(server.http_url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return await asyncio.to_thread(get)


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        metric, _, rest = series.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if metric == name and got == want:
            return float(value)
    return 0.0


def beacon_types(client: ReferenceClient) -> list[str]:
    return [b["type"] for b in client.sink.beacons]
