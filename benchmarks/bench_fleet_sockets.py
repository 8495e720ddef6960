"""Fleet simulator speed: the `sockets` engine, 200 clients over 2 virtual hours.

    .venv/bin/python benchmarks/bench_fleet_sockets.py [--clients 200] [--hours 2]
        [--scales 60,120,240] [--profile-minutes 10]

Target (issue 4): a speed-up of at least 60× real time. The engine runs on a scaled
clock, so the speed-up is the scale as long as the event loop keeps up; what the
scale costs is lag (a real millisecond of loop latency is `scale` virtual ms), so
each row reports the factor reached (virtual / wall time), the CPU the loop used, and
the lag: how late the servers' reply sleeps woke (it adds to TTFB), how late scrapes
started, how long (virtual) a deploy restart took to close every socket. Baseline in
the same run: the `simulated` engine on the same scenario. A short profiled run says
where the CPU time goes, by package.
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import time
from collections import Counter
from datetime import UTC, datetime

from wsanalysis.reference.fleet import simulate
from wsanalysis.reference.fleet_sockets import simulate_sockets
from wsanalysis.reference.scenario import parse_scenario


def scenario(clients: int, hours: float, seed: int = 1) -> dict:
    return {
        "name": f"bench_sockets_{clients}_{hours:g}h",
        "seed": seed,
        "start": "2026-11-02T12:00:00Z",
        "duration": f"{hours:g}h",
        "warmup": "5m",
        "scrape_interval": "60s",
        "users": {
            "concurrent": clients,
            "session_length": {"median": "90m", "sigma": 0.8},
            "messages_per_hour": 6,
        },
        "variants": {
            "control": {"share": 0.9, "server": {"internal_error_p": 0.005, "drop_rate": 0.02}},
            "canary": {"share": 0.1, "server": {"internal_error_p": 0.005, "drop_rate": 0.02}},
        },
        "timeline": [{"kind": "restart", "at": f"{hours / 2:g}h"}],
    }


def row(scale: float, spec: dict) -> str:
    result = simulate_sockets(parse_scenario(spec), scale=scale)
    lag = result.lag_summary()
    spread = max((e["late_s"] for e in result.event_spread), default=float("nan"))
    sockets = sum(e["sockets"] for e in result.event_spread)
    opened = sum(t["connections_opened"] for t in result.labels["truth"].values())
    return (
        f"| {scale:g}× | {result.wall_seconds:.1f} | "
        f"{result.virtual_seconds / result.wall_seconds:.1f}× | "
        f"{result.cpu_seconds / result.wall_seconds:.0%} | {opened:,} | {len(result.beacons):,} | "
        f"{lag['ttfb_lag_p50'] * 1e3:.0f} / {lag['ttfb_lag_p95'] * 1e3:.0f} | "
        f"{lag['scrape_lag_p50'] * 1e3:.0f} / {lag['scrape_lag_max'] * 1e3:.0f} | "
        f"{spread:.1f} s ({sockets} sockets) |"
    )


def profile(spec: dict, minutes: float) -> list[tuple[str, float]]:
    """CPU time (not waiting) by package over a short run with a restart; profiler
    overhead included, so read the shares, not the seconds."""
    short = dict(spec, duration=f"{minutes:g}m", timeline=[{"kind": "restart", "at": "2m"}])
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    simulate_sockets(parse_scenario(short), scale=60.0)
    profiler.disable()
    by_package: Counter[str] = Counter()
    for (path, _line, name), (_cc, _nc, tottime, _ct, _callers) in pstats.Stats(
        profiler
    ).stats.items():
        by_package[_package(path, name)] += tottime
    total = sum(by_package.values())
    return [(name, seconds / total) for name, seconds in by_package.most_common(8)]


def _package(path: str, name: str) -> str:
    for marker, name in (
        ("websockets", "websockets (framing, handshakes)"),
        ("asyncio", "asyncio (event loop, tasks, transports)"),
        ("selectors", "selectors (epoll)"),
        ("prometheus_client", "prometheus_client (metrics, exposition)"),
        ("wsanalysis/reference/client", "reference client (supervisor)"),
        ("wsanalysis/reference/policy", "client policy"),
        ("wsanalysis/reference/server", "reference server"),
        ("wsanalysis/reference/fleet_sockets", "sockets engine (users, scrapes)"),
        ("wsanalysis/reference/protocol", "frame encode/decode"),
        ("wsanalysis/reference/tokens", "tokens (JWT)"),
        ("jwt", "tokens (JWT)"),
        ("json", "json"),
        ("polars", "polars (result frame)"),
    ):
        if marker in path:
            return name
    if path != "~":
        return "other Python"
    for marker, label in (
        ("socket", "socket syscalls (send, recv, accept, connect, close)"),
        ("epoll", "epoll"),
        ("json", "json"),
        ("hmac", "tokens (JWT)"),
        ("hash", "tokens (JWT)"),
    ):
        if marker in name:
            return label
    return "other built-ins"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--scales", default="60,120,240")
    parser.add_argument("--profile-minutes", type=float, default=10.0)
    args = parser.parse_args()
    spec = scenario(args.clients, args.hours)
    started = time.perf_counter()
    baseline = simulate(parse_scenario(spec))
    print(
        f"# sockets engine: {args.clients} clients, {args.hours:g} virtual h "
        f"(+5 min warm-up), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}\n"
    )
    print(
        "| clock | wall s | speed-up reached | CPU / wall | connections | beacons "
        "| reply-sleep lag p50 / p95 (virtual ms) | scrape lag p50 / max (virtual ms) "
        "| restart: last close after |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for scale in (float(s) for s in args.scales.split(",")):
        print(row(scale, spec), flush=True)
    print(
        f"\nBaseline, same scenario, `simulated` engine: {baseline.wall_seconds:.2f} s wall "
        f"({baseline.virtual_seconds / baseline.wall_seconds:,.0f}× real time).\n"
    )
    print(
        f"Where the CPU goes ({args.profile_minutes:g} virtual min at 60× with a restart at "
        "2 min; cProfile on process time, tottime by package):\n"
    )
    print("| package | share of CPU |")
    print("|---|---|")
    for name, share in profile(spec, args.profile_minutes):
        print(f"| {name} | {share:.0%} |")
    print(f"\nTotal benchmark time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
