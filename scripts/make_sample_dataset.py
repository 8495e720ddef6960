"""Write the bundled sample dataset (data/sample): 6 h of a canary and its control.

A placeholder until the fleet simulator writes labelled datasets: a small,
vectorised model of the chat socket stack, enough for the sources, the tests and
`make demo` to have realistic data. Sessions arrive as a Poisson process; each
holds connections with log-normal lifetimes; abnormal closes reconnect after the
production backoff (1 s × U(0.8, 1.2)); messages get a log-normal
time-to-first-byte. At 4 h the canary is restarted (every socket closed with 1012).
Server metrics are the contract's, scraped every 60 s with a `variant` target
label; client telemetry is RUM beacons of the contract.

    .venv/bin/python scripts/make_sample_dataset.py [--out data/sample] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.rum import write_rum

START = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
HOURS = 6.0
SCRAPE_S = 60
WARMUP_S = 2 * 3600  # the servers started 2 h before the window: counters are not zero
RESTART_AT_S = 4 * 3600
DURATION_BUCKETS = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200]
TTFB_BUCKETS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10]
CLOSE_REASONS = {
    1000: "normal",
    1001: "going_away",
    1006: "abnormal",
    1011: "internal_error",
    1012: "service_restart",
    4401: "unauthenticated",
}
RETRIED = {1006, 1011, 1012}

VARIANTS = {
    # sessions per hour, close-code probabilities for a connection that ends by itself
    "control": {
        "sessions_per_hour": 900,
        "codes": {1000: 0.78, 1001: 0.16, 1006: 0.03, 1011: 0.01, 4401: 0.02},
    },
    "canary": {
        "sessions_per_hour": 100,
        "codes": {1000: 0.78, 1001: 0.16, 1006: 0.03, 1011: 0.01, 4401: 0.02},
    },
}


def simulate_variant(name: str, spec: dict, rng: np.random.Generator) -> tuple[dict, list[dict]]:
    """Connections, closes and messages of one variant, in seconds since START."""
    span = WARMUP_S + HOURS * 3600
    n_sessions = rng.poisson(spec["sessions_per_hour"] * span / 3600)
    session_starts = np.sort(rng.uniform(-WARMUP_S, HOURS * 3600, n_sessions))
    codes, probabilities = zip(*spec["codes"].items(), strict=True)
    restart = RESTART_AT_S if name == "canary" else None

    opens, closes, close_codes, durations = [], [], [], []
    ttfb_times, ttfb_values, frames = [], [], {"typing": [], "assistant_message": [], "error": []}
    beacons: list[dict] = []

    def beacon(t: float, kind: str, session: str, **fields) -> None:
        if 0 <= t <= HOURS * 3600:
            ts = int(START.timestamp() * 1000 + t * 1000)
            beacons.append(
                {"v": 1, "ts": ts, "type": kind, "session_id": session, "variant": name, **fields}
            )

    for index, t in enumerate(session_starts):
        session = f"{name[:2]}-{index:06d}"
        attempt, socket_index = 0, 0
        session_durations: list[float] = []
        session_codes: dict[str, int] = {}
        backoffs: list[float] = []
        while t < HOURS * 3600:
            socket_id = f"{session}/{socket_index}"
            lifetime = float(rng.lognormal(np.log(45 * 60), 1.1))
            code = int(rng.choice(codes, p=probabilities))
            end = t + lifetime
            if restart is not None and t < restart <= end:
                end, code = float(restart), 1012
            opens.append(t)
            beacon(t, "ws.open", session, socket_id=socket_id, attempt=attempt)
            messages = rng.poisson((end - t) / 600)  # one user message per 10 min
            for sent in np.sort(rng.uniform(t, end, messages)):
                ttfb = float(rng.lognormal(np.log(0.8), 0.45))
                if sent + ttfb >= end:
                    continue
                ttfb_times.append(sent + ttfb)
                ttfb_values.append(ttfb)
                frames["typing"].append(sent + 0.05)
                thread = f"t-{rng.integers(1, 6)}"
                trace = f"{rng.integers(0, 2**63):016x}"
                for part in range(int(rng.integers(1, 4))):
                    frames["assistant_message"].append(sent + ttfb + part * 0.4)
                if rng.random() < 0.01:
                    frames["error"].append(sent + ttfb)
                beacon(
                    sent + ttfb,
                    "ws.ttfb",
                    session,
                    socket_id=socket_id,
                    thread_id=thread,
                    trace=trace,
                    ttfb_ms=round(ttfb * 1000, 1),
                )
                beacon(
                    sent + ttfb,
                    "ws.message",
                    session,
                    socket_id=socket_id,
                    thread_id=thread,
                    trace=trace,
                )
            if end > HOURS * 3600:
                break  # still open at the window's end: censored
            closes.append(end)
            close_codes.append(code)
            durations.append(end - t)
            session_durations.append(end - t)
            session_codes[str(code)] = session_codes.get(str(code), 0) + 1
            beacon(
                end,
                "ws.close",
                session,
                socket_id=socket_id,
                code=code,
                reason=CLOSE_REASONS[code],
                duration_ms=round((end - t) * 1000),
            )
            if code not in RETRIED:
                if code == 4401:
                    beacon(end, "ws.give_up", session, code=code, reason="auth")
                break
            attempt = 1  # the first attempt succeeds in this model: backoff resets after it
            backoff = 1.0 * (0.8 + 0.4 * rng.random())
            backoffs.append(backoff)
            beacon(
                end,
                "ws.reconnect_scheduled",
                session,
                attempt=attempt,
                backoff_ms=round(backoff * 1000, 1),
                code=code,
            )
            t = end + backoff
            socket_index += 1
        if session_durations or backoffs:
            last = min(t, HOURS * 3600)
            beacon(
                last,
                "ws.summary",
                session,
                close_codes=session_codes,
                avg_backoff_ms=round(1000 * float(np.mean(backoffs)), 1) if backoffs else None,
                avg_duration_ms=round(1000 * float(np.mean(session_durations)), 1)
                if session_durations
                else None,
                p95_duration_ms=round(1000 * float(np.quantile(session_durations, 0.95)), 1)
                if session_durations
                else None,
            )

    events = {
        "opens": np.sort(np.array(opens)),
        "closes": np.array(closes),
        "close_codes": np.array(close_codes, dtype=int),
        "durations": np.array(durations),
        "ttfb_times": np.array(ttfb_times),
        "ttfb_values": np.array(ttfb_values),
        "frames": {k: np.sort(np.array(v)) for k, v in frames.items()},
    }
    return events, beacons


def scrape(variant: str, events: dict, times: np.ndarray) -> pl.DataFrame:
    """Counter, gauge and histogram values as Prometheus would have scraped them."""
    rows: list[pl.DataFrame] = []

    def series(metric: str, values: np.ndarray, **labels: str) -> None:
        frame = pl.DataFrame({"t": times, "value": values.astype(float)}).with_columns(
            pl.lit(metric).alias("metric"),
            pl.lit(variant).alias("variant"),
            *[pl.lit(v).alias(k) for k, v in labels.items()],
        )
        rows.append(frame)

    def count_until(event_times: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.sort(event_times), times, side="right")

    opened = count_until(events["opens"])
    closed = count_until(events["closes"])
    series("ws_connections_total", opened)
    series("ws_connections_active", opened - closed)
    for code, reason in CLOSE_REASONS.items():
        mask = events["close_codes"] == code
        if mask.any():
            series(
                "ws_closes_total",
                count_until(events["closes"][mask]),
                code=str(code),
                reason=reason,
            )
    for event, stamps in events["frames"].items():
        series("ws_frames_sent_total", count_until(stamps), event=event)
    series(
        "ws_reconnect_advice_total",
        count_until(events["closes"][events["close_codes"] == 1012]),
        why="restart",
    )

    def histogram(name: str, at: np.ndarray, observed: np.ndarray, buckets: list[float]) -> None:
        order = np.argsort(at)
        at, observed = at[order], observed[order]
        for le in buckets:
            series(f"{name}_bucket", count_until(at[observed <= le]), le=_le(le))
        series(f"{name}_bucket", count_until(at), le="+Inf")
        series(f"{name}_count", count_until(at))
        cumulative = np.concatenate([[0.0], np.cumsum(observed)])
        series(f"{name}_sum", cumulative[np.searchsorted(at, times, side="right")])

    histogram(
        "ws_connection_duration_seconds", events["closes"], events["durations"], DURATION_BUCKETS
    )
    histogram(
        "ws_assistant_ttfb_seconds", events["ttfb_times"], events["ttfb_values"], TTFB_BUCKETS
    )
    frame = pl.concat(rows, how="diagonal")
    return frame.with_columns(
        (pl.lit(int(START.timestamp() * 1000)) + (pl.col("t") * 1000).cast(pl.Int64))
        .cast(pl.Datetime("ms", "UTC"))
        .alias("timestamp")
    ).drop("t")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(START.timestamp() + seconds, UTC).isoformat()


def _le(value: float) -> str:
    return repr(float(value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/sample"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    times = np.arange(0, HOURS * 3600 + 1, SCRAPE_S, dtype=float)
    metrics, beacons = [], []
    for name, spec in VARIANTS.items():
        events, variant_beacons = simulate_variant(name, spec, rng)
        metrics.append(scrape(name, events, times))
        beacons.extend(variant_beacons)
        print(f"{name}: {len(events['opens'])} connections, {len(variant_beacons)} beacons")
    args.out.mkdir(parents=True, exist_ok=True)
    write_openmetrics(pl.concat(metrics, how="diagonal"), args.out / "metrics.om")
    beacons.sort(key=lambda b: (b["ts"], b["session_id"]))
    write_rum(beacons, args.out / "rum.ndjson.gz")
    labels = {
        "dataset": "sample",
        "generator": "scripts/make_sample_dataset.py",
        "seed": args.seed,
        "window": {"start": _iso(0), "end": _iso(HOURS * 3600)},
        "variants": {
            "control": {"traffic_share": 0.9, "faults": []},
            "canary": {
                "traffic_share": 0.1,
                "faults": [{"kind": "server_restart", "code": 1012, "at": _iso(RESTART_AT_S)}],
            },
        },
        "incidents": [
            {
                "kind": "server_restart",
                "variant": "canary",
                "start": _iso(RESTART_AT_S),
                "end": _iso(RESTART_AT_S + 60),
                "scope": "canary",  # only the canary restarted
            }
        ],
    }
    (args.out / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
