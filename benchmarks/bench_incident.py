"""Scoring harness for the incident detectors on two traffic models, and their speed.

    .venv/bin/python benchmarks/bench_incident.py [--seeds 2] [--traffic-seeds 4]
        [--aa-days 6] [--no-fresh] [--only fleet|traffic] [--speed] [--speed-only]
        [--repeat 9] [--baseline DIR] [--root DIR]

Two traffic models, written apart:

* **fleet** — the reference fleet simulator: every bundled dataset in data/ plus the
  labelled scenarios simulated fresh with other seeds (`wsanalysis simulate NAME --seed
  N`), and its A/A scenario with more seeds for the false-alarm rate.
* **traffic** — `wsanalysis.traffic`, a second model independent of the fleet and of the
  detectors (batch arrivals on a two-peak daily curve with load swings, heavy-tailed
  sessions, drops and errors clustered on few users, auth failures with refused
  retries): every labelled scenario with `--traffic-seeds` seeds, and `--aa-days` 24 h
  A/A days of each A/A scenario (quiet, bursty, a harmless +30 ms TTFB canary).

Every dataset goes through `wsanalysis.incident.analyze`. Scoring is on episodes, what
an analyst reads: a labelled incident is *found* when an episode overlapping its window
(2 minutes of slack each side) holds a finding of its kind on its variant (a level-shift
label: a between-variant finding on its variant of one of the signals it names);
*as one episode* when exactly one episode does. For a found label: time to detect
(episode start − labelled start; retrospective), scope (the first-ranked matching
episode's scope against the label's), severity (against the label's, where the model
knows how many users it hit). Precision: episodes that match a label over all episodes.
False episodes per 24 h: episodes on A/A data (no incident, no fault) per 24 h of data,
low and medium-or-higher apart (the target: at most 1 low and no medium-or-higher).

Labels implied by what a fleet variant ran (stated in labels.json, nothing guessed): a
restart of a variant whose client has `jitter: none` is a `thundering_herd`; a restart
or outage of a variant with `token_refresh: false` is an `auth_spike`; `dedup: false`
with `duplicate_p > 0` is `duplicates_delivered`; the faults `connection_lifetime`
(durations and the 1006 drops and reconnects it makes), `internal_errors` (errors),
`abrupt_drops` (1006, reconnects, durations) and `ttfb_regression` of 100 ms or more
are level shifts of the whole window; `ttfb_regression` below 100 ms is harmless (the
+40 ms near miss): an episode about it is false.

Speed (--speed): 48 h of 50 series and 1 M RUM beacons, every detector, against the
polars scan floor (reading the same frames and one group-by per frame), in interleaved
rounds; the ratio is the median of the per-round ratios. `--baseline DIR` times another
checkout's `analyze` (e.g. main, `git worktree add --detach /tmp/base main`) in the same
rounds, in a process of its own, for a ratio against it from the same sitting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tqdm import tqdm  # noqa: E402

from wsanalysis.incident.analyze import analyze  # noqa: E402
from wsanalysis.incident.findings import SEVERITY_ORDER  # noqa: E402
from wsanalysis.incident.inputs import load_dataset  # noqa: E402
from wsanalysis.sources.metric_names import (  # noqa: E402
    CLOSES_TOTAL,
    CONNECTIONS_ACTIVE,
    CONNECTIONS_TOTAL,
    FRAMES_SENT_TOTAL,
)

FRESH = ("aa_baseline", "reconnect_storm", "herd_no_jitter", "network_outage",
         "auth_spike_token_change", "deploy_restart", "no_dedup", "duration_p50_drops_10min",
         "ttfb_p95_plus150", "error_rate_x2", "reconnect_rate_high")  # fmt: skip
SLACK = timedelta(minutes=2)
SHIFT_KINDS = ("level_shift", "duration_regression", "ttfb_degradation")
#: The signal a between-variant finding of each kind tells (level_shift says its own).
SHIFT_SIGNAL = {"duration_regression": "duration", "ttfb_degradation": "ttfb"}
#: Fleet faults that are level shifts of the whole window, and the signals they move.
FAULT_SHIFTS = {
    "connection_lifetime": ("duration_regression", ("duration", "1006", "reconnects")),
    "internal_errors": ("level_shift", ("errors",)),
    "abrupt_drops": ("level_shift", ("1006", "reconnects", "duration")),
}


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- labels ---------------------------------------------------------------------------
def fault_labels(labels: dict) -> list[dict]:
    """Labels implied by a fleet variant's client and faults (see the docstring)."""
    out = []
    for variant, spec in labels.get("variants", {}).items():
        client = spec.get("client", {})
        for incident in labels.get("incidents", []):
            if incident["variant"] != variant:
                continue
            window = {"variant": variant, "start": incident["start"], "end": incident["end"],
                      "scope": incident.get("scope", variant)}  # fmt: skip
            if client.get("jitter") == "none" and incident["kind"] == "server_restart":
                out.append({"kind": "thundering_herd", **window})
            if client.get("token_refresh") is False and incident["kind"] in (
                "server_restart",
                "network_outage",
            ):
                out.append({"kind": "auth_spike", **window})
        alone = len(labels.get("variants", {})) == 1  # one variant: the whole fleet
        whole = {"variant": variant, "scope": "fleet" if alone else variant, **labels["window"]}
        if client.get("dedup") is False and spec.get("server", {}).get("duplicate_p", 0) > 0:
            out.append({"kind": "duplicates_delivered", **whole})
        for fault in spec.get("faults", []):
            if fault["kind"] == "no_dedup":
                out.append({"kind": "duplicates_delivered", **whole})
            elif fault["kind"] in FAULT_SHIFTS:
                kind, signals = FAULT_SHIFTS[fault["kind"]]
                out.append({"kind": kind, "signals": list(signals), **whole})
            elif fault["kind"] == "ttfb_regression" and spec["server"]["ttfb_extra"] >= 0.1:
                out.append({"kind": "ttfb_degradation", "signals": ["ttfb"], **whole})
    return out


def wanted(labels: dict) -> list[dict]:
    """Every label, its scope that of the incident it is part of: labels overlapping in
    time (2 minutes of slack) are one incident, `fleet` when any of them hit the whole
    fleet or they hit different variants (a restart of both with a herd on the canary)."""
    out: list[dict] = []
    for label in [dict(i) for i in labels["incidents"]] + fault_labels(labels):
        if label not in out:
            out.append(label)
    for label in out:
        together = [o for o in out if o.get("signals") is None and label.get("signals") is None
                    and _t(o["start"]) - SLACK <= _t(label["end"])
                    and _t(label["start"]) - SLACK <= _t(o["end"])]  # fmt: skip
        fleet = any(o.get("scope") == "fleet" for o in together)
        if fleet or len({o["variant"] for o in together}) > 1:
            label["scope"] = "fleet"
    return out


def is_aa(labels: dict) -> bool:
    """No incident and no harmful fault (a traffic injection without a label, or a fleet
    TTFB regression below 100 ms, is harmless): every episode on it is a false alarm."""
    if labels["incidents"] or fault_labels(labels):
        return False
    faults = [f for v in labels["variants"].values() for f in v.get("faults", [])]
    return all(f.get("label") == "" or f.get("kind") == "ttfb_regression" for f in faults)


def is_shift(finding) -> bool:
    """A between-variant finding (its numbers say `since`; `findings.is_shift`, spelled
    here so the harness also scores a library from before level shifts)."""
    return "since" in finding.numbers


def _signal(finding) -> str | None:
    return SHIFT_SIGNAL.get(finding.kind) or finding.numbers.get("signal")


def matches(finding, label: dict) -> bool:
    """The finding tells the labelled incident: its kind on its variant, or, for a label
    naming signals, a finding of one of them on its variant (a shift, or its onset)."""
    if finding.variant != label["variant"]:
        return False
    if finding.kind == label["kind"]:
        return True
    signals = label.get("signals") or []
    return bool(signals) and _signal(finding) in signals and (
        is_shift(finding) or label["kind"] not in SHIFT_KINDS)  # fmt: skip


def _overlaps(episode, label: dict) -> bool:
    start, end = _t(label["start"]) - SLACK, _t(label["end"]) + SLACK
    return episode.start <= end and start <= episode.end


# -- one dataset ----------------------------------------------------------------------
def score_one(job: tuple[str, str]) -> dict:
    model, folder = job
    labels = json.loads((Path(folder) / "labels.json").read_text())
    started = time.perf_counter()
    data = load_dataset(folder)
    result = analyze(data)
    seconds = time.perf_counter() - started
    rows = []
    matched: set[int] = set()
    for label in wanted(labels):
        hits = [i for i, e in enumerate(result.episodes)
                if _overlaps(e, label) and any(matches(f, label) for f in e.findings)]  # fmt: skip
        matched.update(hits)
        first = result.episodes[hits[0]] if hits else None  # episodes come ranked
        rows.append({
            "kind": label["kind"], "found": bool(hits), "episodes": len(hits),
            "delay_s": (min(result.episodes[i].start for i in hits)
                        - _t(label["start"])).total_seconds() if hits else None,
            "scope": label.get("scope"), "got_scope": first.scope if first else None,
            "severity": label.get("severity"), "got_severity": first.severity if first else None,
            "where": f"{label['variant']} {label['start'][11:16]}",
        })  # fmt: skip
    false = [{"severity": e.severity, "kinds": e.kinds, "scope": e.scope,
              "where": f"{e.start:%H:%M}-{e.end:%H:%M}"}
             for i, e in enumerate(result.episodes) if i not in matched]  # fmt: skip
    hours = data.window.duration.total_seconds() / 3600 if data.window else 0.0
    return {"model": model, "dataset": folder, "labels": rows, "false": false,
            "episodes": len(result.episodes), "aa": is_aa(labels), "hours": hours,
            "seconds": seconds}  # fmt: skip


# -- the datasets ---------------------------------------------------------------------
def simulate_fleet(job: tuple[str, int, str]) -> str:
    name, seed, root = job
    out = Path(root) / "fleet" / f"{name}-{seed}"
    if not (out / "labels.json").exists():
        subprocess.run(
            [sys.executable, "-m", "wsanalysis.cli", "simulate", name, "--out", str(out),
             "--seed", str(seed), "--quiet"], check=True, cwd=REPO, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return str(out)


def simulate_traffic(job: tuple[str, int, float, str]) -> str:
    from wsanalysis.traffic import generate

    name, seed, hours, root = job
    out = Path(root) / "traffic" / f"{name}-{seed}-{hours:g}h"
    if not (out / "labels.json").exists():
        generate(name, out, seed=seed, hours=hours)
    return str(out)


def datasets(args: argparse.Namespace) -> tuple[list[tuple[str, str]], str]:
    from wsanalysis.traffic.scenarios import AA, SCENARIOS

    jobs: list[tuple[str, str]] = []
    notes = []
    with ProcessPoolExecutor(2) as pool:
        if args.only in (None, "fleet"):
            bundled = sorted(str(p.parent) for p in (REPO / "data").glob("*/labels.json"))
            fresh = [(n, 9000 + s, args.root) for n in FRESH for s in range(args.seeds)]
            fresh += [("aa_baseline", 9100 + s, args.root) for s in range(args.aa_days)]
            made = (
                []
                if args.no_fresh
                else _progress(pool.map(simulate_fleet, fresh), len(fresh), "fleet simulations")
            )
            jobs += [("fleet", f) for f in bundled + made]
            notes.append(f"fleet: {len(bundled)} bundled datasets, {len(made)} fresh (seeds "
                         f"9000..{9000 + args.seeds - 1} of {len(FRESH)} scenarios, A/A seeds "
                         f"9100..{9100 + args.aa_days - 1})")  # fmt: skip
        if args.only in (None, "traffic"):
            runs = [(n, 100 + s, 12.0, args.root) for n in SCENARIOS if n not in AA
                    for s in range(args.traffic_seeds)]  # fmt: skip
            runs += [(n, 200 + s, 24.0, args.root) for n in AA for s in range(args.aa_days)]
            made = _progress(pool.map(simulate_traffic, runs), len(runs), "traffic simulations")
            jobs += [("traffic", f) for f in made]
            notes.append(f"traffic: {len(runs)} datasets ({len(SCENARIOS) - len(AA)} labelled "
                         f"scenarios × seeds 100..{99 + args.traffic_seeds}, 12 h; {len(AA)} "
                         f"A/A scenarios × seeds 200..{199 + args.aa_days}, 24 h)")  # fmt: skip
    return jobs, "; ".join(notes)


def _progress(results, total: int, what: str) -> list:
    """The pool's results in order, with a progress bar on stderr (the table is stdout)."""
    return list(tqdm(results, total=total, desc=what, file=sys.stderr))


# -- tables ---------------------------------------------------------------------------
def _listed(items: list[str], most: int = 12) -> str:
    """Items joined, the first `most` of them (how many more, after)."""
    if not items:
        return "none"
    more = f"; … and {len(items) - most} more" if len(items) > most else ""
    return "; ".join(items[:most]) + more


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def model_table(results: list[dict], model: str) -> list[str]:
    mine = [r for r in results if r["model"] == model]
    rows = [x for r in mine for x in r["labels"]]
    lines = [
        f"### {model}",
        "",
        "| kind | labelled | found | as one episode | scope right | severity right "
        "| time to detect (median / max) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for kind in sorted({x["kind"] for x in rows}):
        labelled = [x for x in rows if x["kind"] == kind]
        found = [x for x in labelled if x["found"]]
        one = [x for x in found if x["episodes"] == 1]
        scoped = [x for x in found if x["scope"]]
        right = [x for x in scoped if x["got_scope"] == x["scope"]]
        rated = [x for x in found if x["severity"]]
        sev = [x for x in rated if x["got_severity"] == x["severity"]]
        delays = [x["delay_s"] for x in found]
        ttd = f"{statistics.median(delays):+.0f} s / {max(delays):+.0f} s" if delays else "–"
        lines.append(
            f"| {kind} | {len(labelled)} | {len(found)} ({_pct(len(found), len(labelled))}) | "
            f"{len(one)} | {len(right)}/{len(scoped)} | "
            f"{f'{len(sev)}/{len(rated)}' if rated else '–'} | {ttd} |"
        )
    episodes = sum(r["episodes"] for r in mine)
    false = [f for r in mine for f in r["false"]]
    aa = [r for r in mine if r["aa"]]
    hours = sum(r["hours"] for r in aa)
    aa_low = sum(1 for r in aa for f in r["false"] if f["severity"] == "low")
    aa_high = sum(1 for r in aa for f in r["false"] if SEVERITY_ORDER[f["severity"]] >= 1)
    per_day = 24 / hours if hours else float("nan")
    lines += [
        "",
        f"Episodes: {episodes}, matching a label: {episodes - len(false)} "
        f"(precision {_pct(episodes - len(false), episodes)}); false: {len(false)} "
        f"({sum(1 for f in false if f['severity'] == 'low')} low).",
        f"A/A: {len(aa)} datasets, {hours:.0f} h; false episodes per 24 h: "
        f"{aa_low * per_day:.2f} low, {aa_high * per_day:.2f} medium or higher "
        f"(target <= 1 low, 0 medium or higher).",
        "Missed labels: " + _listed([f"{Path(r['dataset']).name}: {x['kind']} {x['where']}"
                                     for r in mine for x in r["labels"] if not x["found"]]) + ".",
        "Split into several episodes: " + _listed([
            f"{Path(r['dataset']).name}: {x['kind']} {x['where']} ({x['episodes']})"
            for r in mine for x in r["labels"] if x["episodes"] > 1]) + ".",
        "Wrong scope or severity: " + _listed([
            f"{Path(r['dataset']).name}: {x['kind']} {x['where']} (scope {x['scope']} called "
            f"{x['got_scope']}, severity {x['severity']} rated {x['got_severity']})"
            for r in mine for x in r["labels"] if x["found"] and (
                (x["scope"] and x["got_scope"] != x["scope"])
                or (x["severity"] and x["got_severity"] != x["severity"]))]) + ".",
        "False episodes: " + _listed([
            f"{Path(r['dataset']).name}: {f['severity']} {'+'.join(f['kinds'])} {f['where']}"
            for r in mine for f in r["false"]]) + ".",
    ]  # fmt: skip
    return lines


def accuracy(args: argparse.Namespace) -> tuple[str, list[dict]]:
    jobs, notes = datasets(args)
    with ProcessPoolExecutor(2) as pool:
        results = _progress(pool.map(score_one, jobs), len(jobs), "analyses")
    lines = [f"Datasets scored: {len(results)} ({notes})."]
    for model in ("fleet", "traffic"):
        if any(r["model"] == model for r in results):
            lines += ["", *model_table(results, model)]
    return "\n".join(lines), results


# -- speed ----------------------------------------------------------------------------
#: The baseline's `analyze` timed in its own process (its own library on sys.path): one
#: line in, the seconds of one run out.
BASELINE_WORKER = """
import sys, time
sys.path.insert(0, sys.argv[1])
import polars as pl
from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.inputs import from_frames
print("ready", flush=True)
for _ in sys.stdin:
    started = time.perf_counter()
    analyze(from_frames(pl.read_parquet(sys.argv[2]), pl.read_parquet(sys.argv[3])))
    print(time.perf_counter() - started, flush=True)
"""


def speed(repeat: int = 9, baseline: str | None = None) -> str:
    import numpy as np
    import polars as pl

    from wsanalysis.incident.inputs import from_frames

    rng = np.random.default_rng(5)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    n_min = 48 * 60
    times = [start + timedelta(minutes=i) for i in range(n_min)]
    series = []
    codes = ["1000", "1006", "1011", "1012", "4401"]
    for variant in ("canary", "control"):
        for metric, label in [(CONNECTIONS_TOTAL, None), (CONNECTIONS_ACTIVE, None)] + [
            (CLOSES_TOTAL, c) for c in codes
        ]:
            series.append((metric, variant, label))
    while len(series) < 50:
        series.append((FRAMES_SENT_TOTAL, "control", None))
    frames = []
    for i, (metric, variant, code) in enumerate(series):
        values = np.cumsum(rng.poisson(5, n_min)).astype(float)
        frames.append(pl.DataFrame({
            "timestamp": times, "metric": metric, "variant": variant, "value": values,
            "code": code, "event": str(i),
        }).with_columns(pl.col("code").cast(pl.Utf8)))  # fmt: skip
    samples = pl.concat(frames).with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))
    n = 1_000_000
    ts = np.sort(rng.integers(0, 48 * 3600 * 1000, n))
    types = rng.choice(["ws.open", "ws.close", "ws.ttfb", "ws.reconnect_scheduled",
                        "ws.message"], n, p=[0.2, 0.2, 0.4, 0.05, 0.15])  # fmt: skip
    beacons = pl.DataFrame({
        "ts": pl.Series(ts + int(start.timestamp() * 1000)).cast(pl.Datetime("ms", "UTC")),
        "type": types, "session_id": rng.integers(0, 50_000, n).astype(str),
        "variant": rng.choice(["canary", "control"], n, p=[0.1, 0.9]),
        "socket_id": rng.integers(0, 200_000, n).astype(str), "trace": None,
        "code": pl.Series(np.where(types == "ws.close", 1000, -1)).replace(-1, None), "attempt": 1,
        "backoff_ms": rng.uniform(0, 2000, n), "duration_ms": rng.exponential(1.8e6, n),
        "ttfb_ms": rng.lognormal(6, 0.35, n),
    }).with_columns(pl.col("code").cast(pl.Int64), pl.col("trace").cast(pl.Utf8))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        sp, bp = Path(tmp) / "s.parquet", Path(tmp) / "b.parquet"
        samples.write_parquet(sp)
        beacons.write_parquet(bp)

        def floor() -> None:
            s = pl.read_parquet(sp)
            b = pl.read_parquet(bp)
            s.group_by("metric", "variant", pl.col("timestamp").dt.truncate("1m")).agg(
                pl.col("value").max()
            )
            b.group_by("type", "variant", pl.col("ts").dt.truncate("1m")).len()

        def full() -> None:
            analyze(from_frames(pl.read_parquet(sp), pl.read_parquet(bp)))

        def base() -> None:
            worker.stdin.write("run\n")
            worker.stdin.flush()
            times["all detectors, baseline"].append(float(worker.stdout.readline()))

        # rounds interleave them, so a load swing on the shared machine hits every one
        times: dict[str, list[float]] = {"scan floor": [], "all detectors": []}
        worker = None
        if baseline:
            worker = subprocess.Popen(
                [sys.executable, "-c", BASELINE_WORKER, baseline, str(sp), str(bp)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            if worker.stdout.readline().strip() != "ready":
                raise SystemExit(f"--baseline {baseline}: its wsanalysis did not import")
            times["all detectors, baseline"] = []
        for round_ in range(repeat):
            print(f"speed round {round_ + 1}/{repeat} ...", file=sys.stderr)
            times["scan floor"].append(_timed(floor))
            times["all detectors"].append(_timed(full))
            if worker is not None:
                base()
        if worker is not None:
            worker.stdin.close()
            worker.wait()
    rows = [f"| {name} | {statistics.median(seconds):.2f} |" for name, seconds in times.items()]
    lines = [f"| run | seconds (median of {repeat} rounds) |\n|---|---:|\n" + "\n".join(rows), ""]
    for name in [n for n in times if n.startswith("all detectors")]:
        ratios = [a / f for a, f in zip(times[name], times["scan floor"], strict=True)]
        lines.append(f"Ratio to the floor, {name} (median of the per-round ratios): "
                     f"{statistics.median(ratios):.1f}x, single rounds "
                     f"{min(ratios):.1f}x–{max(ratios):.1f}x.")  # fmt: skip
    if baseline:
        gain = [b / a for a, b in zip(times["all detectors"], times["all detectors, baseline"],
                                      strict=True)]  # fmt: skip
        lines.append(f"Baseline ({baseline}) over this library, per round: median "
                     f"{statistics.median(gain):.2f}x, single rounds "
                     f"{min(gain):.2f}x–{max(gain):.2f}x.")  # fmt: skip
    return "\n".join(lines)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="fresh fleet seeds per scenario")
    parser.add_argument("--traffic-seeds", type=int, default=4, help="seeds per traffic scenario")
    parser.add_argument("--aa-days", type=int, default=6, help="A/A days (24 h) per A/A scenario")
    parser.add_argument("--no-fresh", action="store_true", help="fleet: bundled datasets only")
    parser.add_argument("--only", choices=("fleet", "traffic"), help="one traffic model")
    parser.add_argument("--speed", action="store_true", help="also run the speed benchmark")
    parser.add_argument("--speed-only", action="store_true", help="only the speed benchmark")
    parser.add_argument("--repeat", type=int, default=9, help="speed rounds")
    parser.add_argument("--baseline", help="speed: also time this checkout's library (a folder "
                        "holding wsanalysis/) in the same rounds, in its own process")  # fmt: skip
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "wsanalysis-incident"))
    args = parser.parse_args()
    if not args.speed_only:
        print(accuracy(args)[0])
    if args.speed or args.speed_only:
        print()
        print(speed(args.repeat, args.baseline))


if __name__ == "__main__":
    main()
