"""A run of the traffic model as a dataset folder, the contract's layout: `metrics.om`,
`rum.ndjson.gz`, `labels.json` (window, RUM sampling, variants, incidents, the model's
parameters and the ground truth).

Each labelled incident carries what the model knows and a detector must estimate: the
sessions it hit among the variant's live sessions, and the severity that share gives
(`SEVERITY_SHARES`: what users felt, the same rule the detectors apply to their
estimates). For a TTFB shift the share is the excess of replies slower than the other
variant's p95; for a lifetime cap, the excess of connections shorter than the other
variant's median.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.rum import write_rum
from wsanalysis.traffic.metrics import scrape
from wsanalysis.traffic.model import Inject, Run

#: Share of a variant's live sessions hit from which an incident is medium, then high.
SEVERITY_SHARES = (0.01, 0.05)
RESTART_LABEL_S = 60.0  # a restart's labelled window, as the fleet labels it


def severity_of(share: float | None) -> str | None:
    if share is None or not np.isfinite(share):
        return None
    medium, high = SEVERITY_SHARES
    return "high" if share >= high else "medium" if share >= medium else "low"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _share(run: Run, index: int, inject: Inject, variant: str, a: float, b: float) -> float | None:
    """The share of `variant`'s users (or replies, or connections) the injection hit."""
    sessions, others = run.sessions, [v for v in run.traffic.variants if v != variant]
    if inject.kind == "ttfb":
        if not others:
            return None
        r = run.replies
        span = (r["time"] >= a) & (r["time"] < b)
        mine, other = r["ttfb_ms"][span & (r["variant"] == variant)], r["ttfb_ms"][
            span & (r["variant"] == others[0])
        ]  # fmt: skip
        p95 = np.quantile(other, 0.95)
        return float(np.mean(mine > p95) - np.mean(other > p95))
    if inject.kind == "lifetime":
        if not others:
            return None
        c = run.connections
        span = (c["open"] >= a) & (c["open"] < b)
        lived = c["close"] - c["open"]
        mine, other = lived[span & (c["variant"] == variant)], lived[
            span & (c["variant"] == others[0])
        ]  # fmt: skip
        median = np.median(other)
        return float(np.mean(mine < median) - np.mean(other < median))
    live = (sessions["variant"] == variant) & (sessions["arrive"] < b) & (sessions["leave"] > a)
    hit = np.zeros(len(live), bool)
    hit[list(run.hit.get(index, ()))] = True
    return float((hit & live).sum() / max(live.sum(), 1))


def incidents(run: Run) -> list[dict[str, Any]]:
    """The labelled incidents, one per injection and variant it hit."""
    traffic, out = run.traffic, []
    for index, inject in enumerate(traffic.injects):
        if not inject.label:
            continue
        a = traffic.at(inject.start)
        b = a + RESTART_LABEL_S if inject.kind == "restart" else traffic.at(inject.end)
        scope = "fleet" if set(traffic.variants) <= set(inject.variants) else inject.variants[0]
        for variant in inject.variants:
            share = _share(run, index, inject, variant, a, b)
            out.append({
                "kind": inject.label, "variant": variant, "start": _iso(a), "end": _iso(b),
                "scope": scope, "signals": list(inject.signals),
                "severity": None if inject.kind == "restart" else severity_of(share),
                "share_hit": None if share is None else round(share, 4),
            })  # fmt: skip
    return sorted(out, key=lambda i: (i["start"], i["variant"], i["kind"]))


def truth(run: Run) -> dict[str, Any]:
    """Counts per variant over the window (all sessions, not only the RUM sample)."""
    t, c = run.traffic, run.connections
    in_window = (c["close"] >= t.window_start) & (c["close"] < t.horizon)
    out = {}
    for v in t.variants:
        mine = in_window & (c["variant"] == v)
        codes, counts = np.unique(c["code"][mine], return_counts=True)
        frames = run.error_frames
        out[v] = {
            "sessions": int(((run.sessions["variant"] == v)
                             & (run.sessions["leave"] > t.window_start)).sum()),
            "connections_closed": int(mine.sum()),
            "closes": {str(k): int(n) for k, n in zip(codes, counts, strict=True)},
            "error_frames": int(((frames["variant"] == v) & (frames["time"] >= t.window_start)
                                 ).sum()) if len(frames["time"]) else 0,
        }  # fmt: skip
    return out


def labels(run: Run, name: str, description: str = "") -> dict[str, Any]:
    t = run.traffic
    shares = {"canary": t.canary_share}
    return {
        "dataset": name,
        "description": description,
        "generator": "wsanalysis.traffic",
        "seed": t.seed,
        "window": {"start": _iso(t.window_start), "end": _iso(t.horizon)},
        "scrape_interval_s": t.scrape_s,
        "rum": {"session_sample": t.rum_sample, "excluded_types": ["ws.message", "ws.summary"]},
        "variants": {
            v: {
                "traffic_share": shares.get(v, 1 - t.canary_share),
                "pods": t.pod_count(v),
                "faults": [
                    i.__dict__ | {"variants": list(i.variants)}
                    for i in t.injects
                    if v in i.variants
                ],
            }
            for v in t.variants
        },  # fmt: skip
        "incidents": incidents(run),
        "model": t.to_json(),
        "truth": truth(run),
    }


def write(run: Run, folder: str | Path, name: str, description: str = "") -> Path:
    """Write the dataset folder (metrics.om, rum.ndjson.gz, labels.json)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_openmetrics(scrape(run), folder / "metrics.om")
    write_rum(run.beacons, folder / "rum.ndjson.gz")
    document = labels(run, name, description)
    (folder / "labels.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    return folder
