"""Fleet simulator speed: the `simulated` engine, 1,000 concurrent clients, 48 virtual hours.

    .venv/bin/python benchmarks/bench_fleet.py [--hours 48] [--clients 1000] [--seed 1]

Target (issue 4): ≤ 60 s of wall time on the 2-core CI machine. Reports events per
second and the ratio of virtual to wall time, the time spent writing the dataset folder,
and, as a baseline measured in the same run, a bare heap event loop doing nothing with
the same number of events (what the engine's own work costs on top of scheduling).
"""

from __future__ import annotations

import argparse
import heapq
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from wsanalysis.reference.fleet import FleetSimulation, write_dataset
from wsanalysis.reference.scenario import parse_scenario


def scenario(hours: float, clients: int, seed: int) -> dict:
    return {
        "name": f"bench_{clients}_{hours:g}h",
        "seed": seed,
        "start": "2026-11-02T00:00:00Z",
        "duration": f"{hours:g}h",
        "warmup": "2h",
        "scrape_interval": "60s",
        "users": {
            "concurrent": clients,
            "session_length": {"median": "90m", "sigma": 0.8},
            "messages_per_hour": 4,
        },
        "variants": {
            "control": {"share": 0.9, "server": {"internal_error_p": 0.005, "drop_rate": 0.02}},
            "canary": {"share": 0.1, "server": {"internal_error_p": 0.005, "drop_rate": 0.02}},
        },
        "timeline": [
            {"kind": "restart", "at": "12h", "downtime": "5s"},
            {"kind": "network_outage", "start": "30h", "end": "30h20m", "share": 0.2},
        ],
    }


def bare_loop(events: int) -> float:
    """Seconds to push and pop `events` no-op events through a heap (the floor)."""
    queue: list[tuple[float, int, object, tuple]] = []
    noop = int
    started = time.perf_counter()
    for i in range(events):
        heapq.heappush(queue, (float(i % 977), i, noop, ()))
    while queue:
        _, _, handler, args = heapq.heappop(queue)
        handler(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    spec = parse_scenario(scenario(args.hours, args.clients, args.seed))
    engine = FleetSimulation(spec)
    result = engine.run()
    loop_events = engine.loop_events  # the loop's own work (result.events counts beacons)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_dataset(result, Path(tmp) / "bench")
        writing = time.perf_counter() - started
    floor = bare_loop(loop_events)
    virtual = result.virtual_seconds
    print(f"# Fleet simulator (`simulated` engine), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"python {platform.python_version()}, {platform.machine()}\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| concurrent clients (target) | {args.clients:,} |")
    print(f"| virtual time (warm-up 2 h + window) | {virtual / 3600:.0f} h |")
    print(f"| sessions | {sum(t['sessions'] for t in result.labels['truth'].values()):,} |")
    print(f"| loop events | {loop_events:,} |")
    print(f"| beacons emitted | {result.events:,} |")
    print(f"| simulation wall time | {result.wall_seconds:.1f} s (target ≤ 60 s) |")
    print(f"| loop events per second | {loop_events / result.wall_seconds:,.0f} |")
    print(f"| virtual / wall time | {virtual / result.wall_seconds:,.0f}× |")
    print(f"| metric samples / RUM beacons | {result.samples.height:,} / {len(result.beacons):,} |")
    print(f"| writing the dataset folder | {writing:.1f} s |")
    print(f"| baseline: bare heap loop, same events | {floor:.2f} s |")
    print(f"| engine cost / bare loop | {result.wall_seconds / floor:.1f}× |")


if __name__ == "__main__":
    main()
