"""Scoring harness for the incident detectors, and their speed against the scan floor.

    .venv/bin/python benchmarks/bench_incident.py [--seeds 2] [--no-fresh] [--speed]
        [--speed-only] [--repeat 9]

Accuracy: every bundled dataset in data/ plus the labelled scenarios freshly simulated
with other seeds (`wsanalysis simulate NAME --seed N`, into a temp dir) go through
`wsanalysis.incident.analyze`; findings are matched to labels.json incident windows of the
same kind and variant (overlap, 2 minutes of slack each side). Per kind: recall (labelled
windows found), precision (findings that match a label), time to detect (finding start -
labelled start; negative = the finding starts earlier). Kinds derived from faults
(connection_lifetime -> duration_regression, ttfb_regression with >= 100 ms extra ->
ttfb_degradation, no_dedup -> duplicates_delivered) are scored the same way on findings
of medium severity or more. A/A datasets: the highest severity of any finding.

Speed (--speed): 48 h of 50 series and 1 M RUM beacons, every detector, against the
polars scan floor (reading the same frames and one group-by per frame), in interleaved
rounds; the ratio is the median of the per-round ratios.
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

from wsanalysis.incident.analyze import analyze  # noqa: E402
from wsanalysis.incident.findings import SEVERITY_ORDER  # noqa: E402
from wsanalysis.incident.inputs import load_dataset  # noqa: E402

INCIDENT_KINDS = ("server_restart", "thundering_herd", "network_outage", "reconnect_storm",
                  "auth_spike")  # fmt: skip
FAULT_KINDS = ("duration_regression", "ttfb_degradation", "duplicates_delivered")
FRESH = ("aa_baseline", "reconnect_storm", "herd_no_jitter", "network_outage",
         "auth_spike_token_change", "deploy_restart", "no_dedup", "duration_p50_drops_10min",
         "ttfb_p95_plus150")  # fmt: skip
SLACK = timedelta(minutes=2)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def fault_labels(labels: dict) -> list[dict]:
    """Labels implied by faults and by the client each variant ran (see the docstring)."""
    out = []
    for variant, spec in labels.get("variants", {}).items():
        client = spec.get("client", {})
        for incident in labels.get("incidents", []):
            if incident["variant"] != variant:
                continue
            window = {"variant": variant, "start": incident["start"], "end": incident["end"]}
            if client.get("jitter") == "none" and incident["kind"] == "server_restart":
                out.append({"kind": "thundering_herd", **window})
            if client.get("token_refresh") is False and incident["kind"] in (
                "server_restart",
                "network_outage",
            ):
                out.append({"kind": "auth_spike", **window})
        if client.get("dedup") is False and spec.get("server", {}).get("duplicate_p", 0) > 0:
            window = labels["window"]
            out.append({"kind": "duplicates_delivered", "variant": variant, **window})
        for fault in spec.get("faults", []):
            kind = {
                "connection_lifetime": "duration_regression",
                "no_dedup": "duplicates_delivered",
            }.get(fault["kind"])
            if fault["kind"] == "ttfb_regression" and spec["server"]["ttfb_extra"] >= 0.1:
                kind = "ttfb_degradation"
            if kind:
                out.append({"kind": kind, "variant": variant, "start": fault["start"],
                            "end": fault["end"]})  # fmt: skip
    return out


def label_episodes(labels: dict) -> list[dict]:
    """labels.json incidents grouped as the analysis groups findings (overlap in time, 2
    minutes of slack); an episode is `fleet` when any of its incidents hit the whole fleet,
    else the one variant its incidents hit."""
    names = list(labels.get("variants", {}))
    groups: list[dict] = []
    for incident in sorted(labels["incidents"], key=lambda i: i["start"]):
        scope = incident.get("scope") or ("fleet" if len(names) == 1 else incident["variant"])
        start, end = _t(incident["start"]), _t(incident["end"])
        if groups and start <= groups[-1]["end"] + SLACK:
            groups[-1]["end"] = max(groups[-1]["end"], end)
            groups[-1]["scopes"].add(scope)
        else:
            groups.append({"start": start, "end": end, "scopes": {scope}})
    for g in groups:
        scopes = g.pop("scopes")
        g["scope"] = "fleet" if "fleet" in scopes or len(scopes) > 1 else scopes.pop()
    return groups


def same_release(labels: dict) -> bool:
    """Canary and control run the same client and server (an A/A fleet, whatever happens)."""
    variants = labels.get("variants", {})
    if not {"canary", "control"} <= variants.keys():
        return False
    a, b = variants["canary"], variants["control"]
    return a.get("client") == b.get("client") and a.get("server") == b.get("server")


def score_scope(labels: dict, result) -> list[dict]:
    rows = []
    for label in label_episodes(labels):
        start, end = label["start"] - SLACK, label["end"] + SLACK
        hits = [e for e in result.episodes if e.start <= end and start <= e.end]
        got = hits[0].scope if hits else None  # episodes come ranked
        rows.append({"scope": label["scope"], "got": got, "right": got == label["scope"],
                     "aa": same_release(labels), "where": f"{label['start']:%H:%M}"})  # fmt: skip
    return rows


def score_one(folder: str) -> dict:
    labels = json.loads((Path(folder) / "labels.json").read_text())
    started = time.perf_counter()
    result = analyze(load_dataset(folder))
    seconds = time.perf_counter() - started
    wanted: list[dict] = []
    for label in [dict(i) for i in labels["incidents"]] + fault_labels(labels):
        if label not in wanted:
            wanted.append(label)
    rows = []
    for label in wanted:
        start, end = _t(label["start"]) - SLACK, _t(label["end"]) + SLACK
        hits = [
            f for f in result.findings
            if f.kind == label["kind"] and f.variant == label["variant"] and f.overlaps(start, end)
            and (label["kind"] in INCIDENT_KINDS or SEVERITY_ORDER[f.severity] >= 1)
        ]  # fmt: skip
        delay = (min(f.start for f in hits) - _t(label["start"])).total_seconds() if hits else None
        rows.append({"kind": label["kind"], "found": bool(hits), "delay_s": delay})
    findings = []
    for f in result.findings:
        if f.kind in FAULT_KINDS and SEVERITY_ORDER[f.severity] < 1:
            continue
        if f.kind not in INCIDENT_KINDS + FAULT_KINDS:
            continue
        matched = any(
            label["kind"] == f.kind and label["variant"] == f.variant
            and f.overlaps(_t(label["start"]) - SLACK, _t(label["end"]) + SLACK)
            for label in wanted
        )  # fmt: skip
        findings.append(
            {"kind": f.kind, "matched": matched, "where": f"{f.variant} {f.start:%H:%M}"}
        )
    worst = max((SEVERITY_ORDER[f.severity] for f in result.findings), default=-1)
    return {"dataset": folder, "labels": rows, "findings": findings, "worst": worst,
            "scopes": score_scope(labels, result),
            "seconds": seconds, "aa": not labels["incidents"] and not fault_labels(labels)
            and all(not v.get("faults") for v in labels["variants"].values())}  # fmt: skip


def simulate(job: tuple[str, int, str]) -> str:
    name, seed, root = job
    out = Path(root) / f"{name}-{seed}"
    if not (out / "labels.json").exists():
        subprocess.run(
            [sys.executable, "-m", "wsanalysis.cli", "simulate", name, "--out", str(out),
             "--seed", str(seed), "--quiet"], check=True, cwd=REPO,
        )  # fmt: skip
    return str(out)


def accuracy(seeds: int, fresh: bool, root: str) -> tuple[str, list[dict]]:
    folders = sorted(str(p.parent) for p in (REPO / "data").glob("*/labels.json"))
    jobs = [(n, 9000 + s, root) for n in FRESH for s in range(seeds)] if fresh else []
    with ProcessPoolExecutor(2) as pool:
        folders += list(pool.map(simulate, jobs))
        results = list(pool.map(score_one, folders))
    lines = [
        "| kind | labelled windows | found | recall | findings | matched | precision "
        "| time to detect (median / max) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind in INCIDENT_KINDS + FAULT_KINDS:
        labels = [r for res in results for r in res["labels"] if r["kind"] == kind]
        found = [r for r in labels if r["found"]]
        finds = [f for res in results for f in res["findings"] if f["kind"] == kind]
        matched = [f for f in finds if f["matched"]]
        delays = [r["delay_s"] for r in found]
        ttd = f"{statistics.median(delays):+.0f} s / {max(delays):+.0f} s" if delays else "–"
        recall = f"{len(found) / len(labels):.0%}" if labels else "–"
        precision = f"{len(matched) / len(finds):.0%}" if finds else "–"
        lines.append(f"| {kind} | {len(labels)} | {len(found)} | {recall} | {len(finds)} | "
                     f"{len(matched)} | {precision} | {ttd} |")  # fmt: skip
    aa = [r for r in results if r["aa"]]
    names = ["low", "medium", "high"]
    worst = max((r["worst"] for r in aa), default=-1)
    lines.append("")
    lines.append(f"A/A datasets: {len(aa)}; highest finding severity: "
                 f"{names[worst] if worst >= 0 else 'none'}.")  # fmt: skip
    lines.append(
        f"Datasets scored: {len(results)} ({len(folders) - len(jobs)} bundled, "
        f"{len(jobs)} fresh: seeds {9000}..{9000 + seeds - 1} of {', '.join(FRESH)})."
    )
    lines += ["", scope_table(results), ""]
    misses = [f"{Path(r['dataset']).name}: {f['kind']} {f['where']}" for r in results
              for f in r["findings"] if not f["matched"]]  # fmt: skip
    missed = [f"{Path(r['dataset']).name}: {x['kind']}" for r in results for x in r["labels"]
              if not x["found"]]  # fmt: skip
    lines.append("Unmatched findings: " + ("; ".join(misses) or "none") + ".")
    lines.append("Missed labels: " + ("; ".join(missed) or "none") + ".")
    return "\n".join(lines), results


def scope_table(results: list[dict]) -> str:
    """Episode scope against the labels: per labelled scope, how often it was called right."""
    lines = [
        "| labelled scope | labelled episodes | found | scope right | share right | called |",
        "|---|---:|---:|---:|---:|---|",
    ]
    rows = [s | {"dataset": Path(r["dataset"]).name} for r in results for s in r["scopes"]]
    for scope in ("fleet", "canary", "control"):
        mine = [s for s in rows if s["scope"] == scope]
        if not mine:
            continue
        found = [s for s in mine if s["got"]]
        right = [s for s in mine if s["right"]]
        called = ", ".join(
            f"{g} {sum(1 for s in found if s['got'] == g)}" for g in ("fleet", "canary", "control")
        )
        lines.append(f"| {scope} | {len(mine)} | {len(found)} | {len(right)} | "
                     f"{len(right) / len(mine):.0%} | {called} |")  # fmt: skip
    right = [s for s in rows if s["right"]]
    aa_fleet = [s for s in rows if s["aa"] and s["scope"] == "fleet"]
    aa_wrong = [s for s in aa_fleet if s["got"] == "canary"]
    wrong = [f"{s['dataset']} {s['where']} ({s['scope']} called {s['got']})" for s in rows
             if not s["right"]]  # fmt: skip
    lines += [
        "",
        f"Scope right in {len(right)} of {len(rows)} labelled episodes "
        f"({len(right) / max(len(rows), 1):.0%}; target >= 95%). Fleet-wide episodes on A/A "
        f"fleets (canary and control run the same release): {len(aa_fleet)}, called "
        f"canary-only: {len(aa_wrong)} (target 0).",
        "Wrong scopes: " + ("; ".join(wrong) or "none") + ".",
    ]
    return "\n".join(lines)


def speed(repeat: int = 9) -> str:
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
        for metric, label in [("ws_connections_total", None), ("ws_connections_active", None)] + [
            ("ws_closes_total", c) for c in codes
        ]:
            series.append((metric, variant, label))
    while len(series) < 50:
        series.append(("ws_frames_sent_total", "control", None))
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

        # rounds interleave the two, so a load swing on the shared machine hits both
        times: dict[str, list[float]] = {"scan floor": [], "all detectors": []}
        for round_ in range(repeat):
            print(f"speed round {round_ + 1}/{repeat} ...", file=sys.stderr)
            times["scan floor"].append(_timed(floor))
            times["all detectors"].append(_timed(full))
    ratios = [a / f for a, f in zip(times["all detectors"], times["scan floor"], strict=True)]
    rows = [f"| {name} | {statistics.median(seconds):.2f} |" for name, seconds in times.items()]
    return (
        f"| run | seconds (median of {repeat} rounds) |\n|---|---:|\n"
        + "\n".join(rows)
        + f"\n\nRatio to the floor (median of the per-round ratios): "
        f"{statistics.median(ratios):.1f}x, single rounds {min(ratios):.1f}x–{max(ratios):.1f}x "
        "(target <= 3x)."
    )


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="fresh seeds per scenario")
    parser.add_argument("--no-fresh", action="store_true", help="bundled datasets only")
    parser.add_argument("--speed", action="store_true", help="also run the speed benchmark")
    parser.add_argument("--speed-only", action="store_true", help="only the speed benchmark")
    parser.add_argument("--repeat", type=int, default=9, help="speed rounds")
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "wsanalysis-incident"))
    args = parser.parse_args()
    if not args.speed_only:
        print(accuracy(args.seeds, not args.no_fresh, args.root)[0])
    if args.speed or args.speed_only:
        print()
        print(speed(args.repeat))


if __name__ == "__main__":
    main()
