"""Reference server capacity vs a bare `websockets` echo server, and the reconnect herd.

    .venv/bin/python benchmarks/bench_reference.py [--idle 10000] [--handshakes 2000]
        [--fanout 1000] [--herd 1000] [--downtime 0.0] [--skip-capacity]

Capacity: each server runs in its own subprocess (compression off, loopback only);
this process is the client. Per server: idle connections held and the server's RSS
growth per connection; handshakes/s (open+close, 100 in flight); fan-out frames/s
(one message delivered to `--fanout` sockets, 20 times). Ratios are ours / bare,
measured in the same run (for handshakes and frames, bare / ours: >1 means slower).

Herd: 1,000 `ClientPolicy` objects on a virtual clock, all connected, then a 1012
restart (with the server's 1 s restart advice); during `--downtime` seconds attempts
fail (1006) and are rescheduled. Peak attempts/s is the largest 100 ms bin × 10.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402

from wsanalysis.reference.policy import (  # noqa: E402
    JITTER_STRATEGIES,
    ClientPolicy,
    Connect,
)
from wsanalysis.reference.server import ChatServer, Faults  # noqa: E402
from wsanalysis.reference.tokens import issue_token  # noqa: E402

SECRET = "benchmark-secret-0123456789abcdef0123456789"
FANOUT_ROUNDS = 20
IN_FLIGHT = 100


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- the two servers (run as subprocesses) ------------------------------------------------


async def serve_bare() -> None:
    """A bare websockets server: echo, and `fan:` messages go to every other socket."""
    clients = set()

    async def handler(ws):
        clients.add(ws)
        try:
            async for message in ws:
                if message.startswith("fan:"):
                    for other in list(clients):
                        if other is not ws:
                            with contextlib.suppress(Exception):
                                await other.send(message)
                else:
                    await ws.send(message)
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


async def serve_ours() -> None:
    server = ChatServer(SECRET, faults=Faults(ttfb_median=0.0), log_event=lambda _: None)
    server.log_event = lambda record: json.dumps(record)  # the cost of logging, not the I/O
    await server.start("127.0.0.1", 0)
    print(server.port, flush=True)
    await asyncio.Future()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- capacity measurements (this process is the client) -------------------------------------


def url_for(kind: str, port: int, user: str = "bench") -> str:
    base = f"ws://127.0.0.1:{port}/ws"
    if kind == "bare":
        return base
    return f"{base}?token={issue_token(SECRET, user, time.time(), 3600)}"


async def open_many(url: str, n: int) -> list:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one():
        async with gate:
            return await connect(url, compression=None, open_timeout=60, ping_interval=None)

    return await asyncio.gather(*(one() for _ in range(n)))


async def close_all(conns: list) -> None:
    for i in range(0, len(conns), 500):
        await asyncio.gather(*(c.close() for c in conns[i : i + 500]), return_exceptions=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc, 10 ms resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(kind: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True
    )
    return proc, int(proc.stdout.readline())


async def idle_and_memory(kind: str, pid: int, port: int, n: int) -> dict:
    before = rss_kib(pid)
    conns = await open_many(url_for(kind, port), n)
    await asyncio.sleep(1.0)
    after = rss_kib(pid)
    held = sum(c.state.name == "OPEN" for c in conns)
    await close_all(conns)
    await asyncio.sleep(0.5)
    return {"idle_held": held, "kib_per_conn": (after - before) / max(1, n)}


async def handshakes(kind: str, pid: int, port: int, n: int) -> tuple[float, float]:
    """(handshakes per wall second, server CPU µs per handshake) for n open+close."""
    url = url_for(kind, port)
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one():
        async with gate:
            ws = await connect(url, compression=None, open_timeout=60, ping_interval=None)
            await ws.close()

    cpu, start = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    wall, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu
    return n / wall, cpu / n * 1e6


async def measure(args: argparse.Namespace) -> dict[str, dict]:
    """Both servers up at once; rates measured alternately, best of `rounds`."""
    servers = {kind: start_server(kind) for kind in ("bare", "ours")}
    try:
        await asyncio.sleep(0.3)
        results: dict[str, dict] = {}
        for kind, (proc, port) in servers.items():
            results[kind] = await idle_and_memory(kind, proc.pid, port, args.idle)
            results[kind].update(hs_rate=[], hs_cpu=[], fan_rate=[], fan_cpu=[])
        for round_ in range(args.rounds):
            order = ("bare", "ours") if round_ % 2 == 0 else ("ours", "bare")
            for kind in order:
                proc, port = servers[kind]
                rate, cpu = await handshakes(kind, proc.pid, port, args.handshakes)
                results[kind]["hs_rate"].append(rate)
                results[kind]["hs_cpu"].append(cpu)
                rate, cpu = await fanout(kind, proc.pid, port, args.fanout, round_)
                results[kind]["fan_rate"].append(rate)
                results[kind]["fan_cpu"].append(cpu)
        return results
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)


async def fanout(kind: str, pid: int, port: int, n: int, round_: int) -> tuple[float, float]:
    """(frames per wall second, server CPU µs per frame) for one message to n sockets, ×20."""
    url = url_for(kind, port, user=f"fan{round_}")
    receivers = await open_many(url, n)
    sender = await connect(url, compression=None, ping_interval=None)
    if kind == "ours":  # subscribe every receiver to the thread, as a resume would
        resume = json.dumps({"type": "resume", "threads": {"t": 0}})
        await asyncio.gather(*(r.send(resume) for r in receivers))
        await sender.send(resume)
        await asyncio.sleep(0.5)
    done = asyncio.Event()
    remaining = [n * FANOUT_ROUNDS]

    async def drain(ws):
        async for message in ws:
            if kind == "bare" or '"assistant_message"' in message:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

    readers = [asyncio.create_task(drain(r)) for r in receivers]
    cpu, start = cpu_seconds(pid), time.perf_counter()
    for i in range(FANOUT_ROUNDS):
        if kind == "ours":
            text = json.dumps({"type": "user_message", "thread_id": "t", "trace": f"f{i}"})
        else:
            text = f"fan:{i}"
        await sender.send(text)
    await asyncio.wait_for(done.wait(), 120)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await close_all([*receivers, sender])
    return n * FANOUT_ROUNDS / elapsed, cpu / (n * FANOUT_ROUNDS) * 1e6


# -- thundering herd on a virtual clock ---------------------------------------------------


def herd(strategy: str, n: int, downtime: float, seed: int = 0, rtt: float = 0.005) -> dict:
    """Restart (1012 + 1 s advice) at t=0; attempts before `downtime` fail with 1006."""
    attempts: list[float] = []
    reconnected: dict[int, float] = {}
    queue: list[tuple[float, int, Connect]] = []
    policies = []
    for i in range(n):
        policy = ClientPolicy(
            session_id=f"c{i}", jitter=strategy, rng=random.Random(seed * 100_003 + i)
        )
        (connect_action,) = [a for a in policy.start(-3600.0) if isinstance(a, Connect)]
        policy.opened(-3600.0, connect_action.socket_id)
        policy.advice(0.0, connect_action.socket_id, 1.0, "restart")
        for action in policy.closed(0.0, connect_action.socket_id, 1012, "restart"):
            if isinstance(action, Connect):
                heapq.heappush(queue, (action.at, i, action))
        policies.append(policy)
    while queue:
        at, i, action = heapq.heappop(queue)
        attempts.append(at)
        policy = policies[i]
        if at < downtime:
            follow = policy.closed(at + rtt, action.socket_id, 1006, "refused")
            for nxt in follow:
                if isinstance(nxt, Connect):
                    heapq.heappush(queue, (nxt.at, i, nxt))
        else:
            policy.opened(at + rtt, action.socket_id)
            reconnected[i] = at + rtt
    bins: dict[int, int] = {}
    for t in attempts:
        bins[int(t // 0.1)] = bins.get(int(t // 0.1), 0) + 1
    times = sorted(reconnected.values())
    p99 = times[max(0, int(0.99 * len(times)) - 1)] if times else float("nan")
    return {
        "strategy": strategy,
        "peak_per_s": max(bins.values()) * 10,
        "attempts_per_client": len(attempts) / n,
        "p99_s": p99,
        "gave_up": n - len(reconnected),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["bare", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--handshakes", type=int, default=2_000)
    parser.add_argument("--fanout", type=int, default=1_000)
    parser.add_argument("--herd", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3, help="best of, for rates")
    parser.add_argument("--downtime", type=float, action="append", default=None)
    parser.add_argument("--skip-capacity", action="store_true")
    args = parser.parse_args()
    raise_file_limit()
    if args.serve:
        asyncio.run(serve_bare() if args.serve == "bare" else serve_ours())
        return
    print(f"# bench_reference — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, loopback only\n")
    if not args.skip_capacity:
        results = asyncio.run(measure(args))
        bare, ours = results["bare"], results["ours"]
        print(f"## Server capacity (idle={args.idle}, handshakes={args.handshakes}, "
              f"fan-out {args.fanout} sockets × {FANOUT_ROUNDS} messages, best of {args.rounds})\n")  # fmt: skip
        print("| measure | bare websockets | reference server | cost ratio (ours/bare) |")
        print("|---|---:|---:|---:|")
        print(f"| idle connections held | {bare['idle_held']} | {ours['idle_held']} | |")
        rows = [
            ("server memory per idle connection (KiB)", "kib_per_conn", min, False),
            ("handshakes/s, wall (open+close, 100 in flight)", "hs_rate", max, True),
            ("server CPU per handshake (µs)", "hs_cpu", min, False),
            ("fan-out frames/s, wall", "fan_rate", max, True),
            ("server CPU per fan-out frame (µs)", "fan_cpu", min, False),
        ]
        for label, key, best, is_rate in rows:
            b, o = (v[key] if not isinstance(v[key], list) else best(v[key]) for v in (bare, ours))
            ratio = b / o if is_rate else o / b
            print(f"| {label} | {b:,.1f} | {o:,.1f} | {ratio:.2f}× |")
        print()
    for downtime in args.downtime or [0.0, 2.0]:
        print(f"## Thundering herd: {args.herd} clients, 1012 restart, downtime {downtime:g} s\n")
        print("| jitter | peak attempts/s | peak / N | attempts per client | p99 reconnect (s) "
              "| gave up |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        for strategy in JITTER_STRATEGIES:
            r = herd(strategy, args.herd, downtime)
            print(
                f"| {strategy} | {r['peak_per_s']:.0f} | {r['peak_per_s'] / args.herd:.2f} | "
                f"{r['attempts_per_client']:.2f} | {r['p99_s']:.2f} | {r['gave_up']} |"
            )
        print()


if __name__ == "__main__":
    main()
