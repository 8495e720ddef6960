"""`wsanalysis client`: N reference clients against a URL, RUM to a file, live summary.

Dogfood a release: each client connects with the production policy, sends a message
every `--message-every` seconds, and writes RUM beacons. Exit 0 when every client is
still alive at the end, 1 when any gave up (the error is printed), 3 on usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections import Counter

from wsanalysis.errors import UsageError
from wsanalysis.reference.client import HttpSink, MemorySink, NdjsonSink, ReferenceClient
from wsanalysis.reference.clock import Timebase
from wsanalysis.reference.policy import JITTER_STRATEGIES, ClientPolicy
from wsanalysis.reference.tokens import issue_token

SECRET_ENV = "WSANALYSIS_SECRET"
TOKEN_ENV = "WSANALYSIS_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "client",
        help="run N reference chat clients against a server",
        description=(
            f"Run N clients against URL. Tokens: minted per client from ${SECRET_ENV} "
            f"(user client-<i>), or one static token from ${TOKEN_ENV}."
        ),
    )
    parser.add_argument("url", help="ws:// or wss:// URL of the chat endpoint")
    parser.add_argument("-n", "--clients", type=int, default=1)
    parser.add_argument("--duration", type=float, default=30.0, help="real seconds")
    parser.add_argument("--message-every", type=float, default=5.0, help="seconds; 0 = never")
    parser.add_argument("--rum", help="append RUM beacons (NDJSON) to this file")
    parser.add_argument("--collector", help="POST RUM beacons (NDJSON) to this URL")
    parser.add_argument("--variant", default="control")
    parser.add_argument("--jitter", choices=JITTER_STRATEGIES, default="production")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=1.0, help="policy seconds per real s")
    parser.add_argument("--summary-every", type=float, default=60.0, help="ws.summary period")
    parser.add_argument("--report-every", type=float, default=2.0, help="live summary period")
    parser.add_argument("--quiet", action="store_true", help="no live summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.clients < 1:
        raise UsageError("--clients must be at least 1")
    if not args.url.startswith(("ws://", "wss://")):
        raise UsageError(f"{args.url!r} is not a WebSocket URL", "use ws://host:port/path")
    if args.rum and args.collector:
        raise UsageError("--rum and --collector are exclusive", "pick one beacon destination")
    secret, static = os.environ.get(SECRET_ENV), os.environ.get(TOKEN_ENV)
    if not secret and not static:
        raise UsageError(
            f"no credentials: neither ${SECRET_ENV} nor ${TOKEN_ENV} is set",
            f"export {SECRET_ENV} (the server's secret) or {TOKEN_ENV} (a token)",
        )
    return asyncio.run(_run(args, secret, static))


async def _run(args: argparse.Namespace, secret: str | None, static: str | None) -> int:
    timebase = Timebase(args.time_scale)
    if args.rum:
        sink = NdjsonSink(args.rum)
    elif args.collector:
        sink = HttpSink(args.collector)
    else:
        sink = MemorySink()
    clients = [_make_client(args, i, timebase, sink, secret, static) for i in range(args.clients)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    for client in clients:
        await client.start()
    talkers = [
        loop.create_task(_talk(c, i, args.message_every, stop)) for i, c in enumerate(clients)
    ]
    started = time.monotonic()
    deadline = started + args.duration
    while not stop.is_set() and time.monotonic() < deadline:
        wait = min(args.report_every, deadline - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, wait))
        if not args.quiet:
            print(_summary_line(clients, time.monotonic() - started), file=sys.stderr)
    stop.set()
    await asyncio.gather(*talkers, return_exceptions=True)
    await asyncio.gather(*(c.close() for c in clients))
    await sink.aclose()
    print(_summary_line(clients, time.monotonic() - started), file=sys.stderr)
    failed = [c for c in clients if c.error is not None]
    for reason, count in Counter(c.error.error for c in failed).items():
        print(f"{count} client(s) gave up: {reason}", file=sys.stderr)
    return 1 if failed else 0


def _make_client(
    args: argparse.Namespace,
    index: int,
    timebase: Timebase,
    sink,
    secret: str | None,
    static: str | None,
) -> ReferenceClient:
    user = f"client-{index}"

    async def token() -> str:
        if static:
            return static
        return issue_token(secret or "", user, time.time(), ttl=3600)

    policy = ClientPolicy(
        session_id=f"{args.seed}-{index}",
        variant=args.variant,
        user=user,
        jitter=args.jitter,
        rng=random.Random(args.seed * 1_000_003 + index),
        summary_every=args.summary_every,
    )
    return ReferenceClient(args.url, token, policy=policy, timebase=timebase, sink=sink)


async def _talk(client: ReferenceClient, index: int, every: float, stop: asyncio.Event) -> None:
    """Send a message every `every` real seconds while the client lives."""
    if every <= 0:
        return
    n = 0
    while not stop.is_set() and client.error is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set() or client.error is not None:
            return
        n += 1
        await client.send(f"thread-{index}", f"message {n}")


def _summary_line(clients: list[ReferenceClient], elapsed: float) -> str:
    status = Counter(c.status for c in clients)
    codes: Counter[int] = Counter()
    delivered = dedup = stale = 0
    for client in clients:
        codes.update(client.policy.metrics.close_codes)
        delivered += client.policy.counters.delivered
        dedup += client.policy.counters.dedup_drops
        stale += client.policy.counters.stale_drops
    states = " ".join(f"{k}={v}" for k, v in sorted(status.items()))
    closes = ",".join(f"{k}:{v}" for k, v in sorted(codes.items())) or "-"
    return (
        f"[{elapsed:6.1f}s] {states} | replies={delivered} dedup_drops={dedup} "
        f"stale_drops={stale} | closes {closes}"
    )
