"""Small speed choices made inside the code, each against the obvious alternative.

    .venv/bin/python benchmarks/bench_internals.py [--rounds 5]

Each row times our way and the alternative in the same run, in alternating rounds, and
reports the best round of each and their ratio (the machine is shared, so only the ratio
is meaningful). The figures used to live in docstrings and comments; the code now says
why it made the choice and points here.

- Poisson(1) bootstrap weights: `stats.quantiles`' 65536-entry table indexed by 16 random
  bits vs `numpy.random.Generator.poisson(1.0)`, 10 million weights.
- Scraping `reference.server.ServerMetrics` in the fleet simulator: `samples()` (our own
  counts) vs `registry.collect()` (prometheus_client's public collection through our
  collector), on a registry with every family and 12 close-code children.
- HS256 token check: `reference.tokens.validate_token` (`hmac`) vs `jwt.decode` (PyJWT).
- Importing papermill in a fresh interpreter with and without jsonschema's optional
  `rfc3987_syntax` (`report.execute._import_papermill` leaves it out).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jwt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from wsanalysis.reference.server import ServerMetrics  # noqa: E402
from wsanalysis.reference.tokens import issue_token, validate_token  # noqa: E402

SECRET = "bench-secret-0123456789abcdef-0123456789"


def per_call(fn: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def poisson_pair() -> tuple[Callable[[], object], Callable[[], object], int]:
    rng = np.random.default_rng(1)
    n = 10_000_000
    # the table as stats.quantiles builds it (a private name there, so built again here)
    cdf = np.round(stats.poisson.cdf(np.arange(12), 1.0) * 65536)
    lookup = np.searchsorted(cdf, np.arange(65536), side="right").astype(np.float64)

    def table() -> object:
        return lookup[rng.integers(0, 65536, size=n, dtype=np.uint16)]

    def generator() -> object:
        return rng.poisson(1.0, size=n)

    return table, generator, 1


def scrape_pair() -> tuple[Callable[[], object], Callable[[], object], int]:
    metrics = ServerMetrics()
    for i in range(200):
        metrics.opened(float(i), i)
    for i, code in enumerate((1000, 1001, 1006, 1011, 1012, 1013, 4401) * 10):
        metrics.closed(100.0 + i, i, code, ("client", "abnormal")[i % 2])
    for event in ("typing", "assistant_message", "error", "reconnect_advice"):
        metrics.frame_sent(event, 5)
    metrics.advice("restart")
    for i in range(100):
        metrics.ttfb(0.01 * i)

    def ours() -> object:
        return metrics.samples()

    def collect() -> object:
        return [
            (s.name, s.labels, s.value)
            for family in metrics.registry.collect()
            for s in family.samples
            if not s.name.endswith("_created")
        ]

    return ours, collect, 2000


def token_pair() -> tuple[Callable[[], object], Callable[[], object], int]:
    now = time.time()
    token = issue_token(SECRET, "user-1", now, 3600.0)

    def ours() -> object:
        return validate_token(token, SECRET, now)

    def pyjwt() -> object:
        return jwt.decode(token, SECRET, algorithms=["HS256"])

    return ours, pyjwt, 5000


def import_seconds(stub: bool) -> float:
    code = (
        "import sys, time; started = time.perf_counter()\n"
        + ("sys.modules.setdefault('rfc3987_syntax', None)\n" if stub else "")
        + "import papermill; print(time.perf_counter() - started)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for label, ours_label, other_label, make in (
        ("Poisson(1) weights, 10 M", "table", "Generator.poisson", poisson_pair),
        ("fleet scrape of ServerMetrics", "samples()", "registry.collect()", scrape_pair),
        ("HS256 token check", "hmac", "PyJWT decode", token_pair),
    ):
        ours, other, repeat = make()
        a, b = [], []
        for _ in range(args.rounds):
            a.append(per_call(ours, repeat))
            b.append(per_call(other, repeat))
        rows.append((label, ours_label, min(a), other_label, min(b)))
    with_stub, without = [], []
    for _ in range(args.rounds):
        with_stub.append(import_seconds(True))
        without.append(import_seconds(False))
    rows.append(
        ("import papermill (fresh process)", "without rfc3987_syntax", min(with_stub),
         "with it", min(without))
    )  # fmt: skip
    print(f"# Internal speed choices, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"python {platform.python_version()}, {platform.machine()}, best of {args.rounds}\n")
    print("| choice | ours | time | alternative | time | alternative / ours |")
    print("|---|---|---:|---|---:|---:|")
    for label, ours_label, a_s, other_label, b_s in rows:
        print(
            f"| {label} | {ours_label} | {_fmt(a_s)} | {other_label} | {_fmt(b_s)} | "
            f"{b_s / a_s:.1f}× |"
        )


def _fmt(seconds: float) -> str:
    if seconds >= 0.1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-4:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


if __name__ == "__main__":
    main()
