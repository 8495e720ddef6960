"""The ground truth a fleet run writes to `labels.json` (both engines write it here).

Per variant the faults injected and when, the incident windows with their kind, the
scenario's `expect` block (the default gate file's decisions) and the engine's `truth`
counts (`fleet_core.Truth`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from wsanalysis.reference.scenario import INCIDENT_OF, Event, Scenario, field_seconds


def dataset_labels(scenario: Scenario, truth: dict[str, Any], engine: str) -> dict[str, Any]:
    """labels.json: faults per variant, incidents, `expect`, and what really happened."""
    start = scenario.start

    def at(offset: float) -> str:
        return (start + timedelta(seconds=offset)).isoformat()

    variants: dict[str, Any] = {}
    for v in scenario.variants:
        faults = [
            dict(f)
            | {
                "start": at(field_seconds(f.get("start", 0), f"{v.name}.faults.start")),
                "end": at(field_seconds(f.get("end", scenario.duration), f"{v.name}.faults.end")),
            }
            for f in v.faults
        ]
        for event in scenario.timeline:
            if v.name in event.variants:
                faults.append(_event_json(event, at))
        variants[v.name] = {
            "traffic_share": v.share,
            "client": asdict(v.client),
            "server": asdict(v.server),
            "faults": faults,
        }
    incidents = []
    names = [v.name for v in scenario.variants]
    for event in scenario.timeline:
        end = event.end
        if event.kind == "restart":
            end = event.start + max(60.0, event.params.get("downtime", 0.0))
        for name in event.variants:
            incidents.append(
                {"kind": INCIDENT_OF[event.kind], "variant": name,
                 "start": at(event.start), "end": at(end),
                 "scope": incident_scope(event.variants, names)}
            )  # fmt: skip
    for incident in scenario.expect.get("incidents", []):
        incidents.append(
            dict(incident)
            | {
                "start": at(field_seconds(incident["start"], "expect.incidents.start")),
                "end": at(field_seconds(incident["end"], "expect.incidents.end")),
            }
            | {"scope": incident.get("scope") or incident_scope([incident["variant"]], names)}
        )
    expect = {k: v for k, v in scenario.expect.items() if k != "incidents"}
    return {
        "dataset": scenario.name,
        "description": scenario.description,
        "generator": "wsanalysis.reference.fleet",
        "engine": engine,
        "seed": scenario.seed,
        "window": {"start": at(0), "end": at(scenario.duration)},
        "scrape_interval_s": scenario.scrape_interval,
        # RUM kept per session (scale per-day counts by 1/sample) and types left out
        "rum": {
            "session_sample": scenario.rum_sample,
            "excluded_types": list(scenario.rum_exclude),
        },
        "variants": variants,
        "incidents": sorted(incidents, key=lambda i: (i["start"], i["variant"], i["kind"])),
        "expect": expect,
        "truth": truth,
    }


def _event_json(event: Event, at: Callable[[float], str]) -> dict[str, Any]:
    params = {k: v for k, v in event.params.items() if k not in ("set", "set_fields")}
    if "set" in event.params:
        params["set"] = {n: getattr(event.params["set"], n) for n in event.params["set_fields"]}
    return {"kind": event.kind, "start": at(event.start), "end": at(event.end)} | params


def incident_scope(hit: list[str] | tuple[str, ...], variants: list[str]) -> str:
    """`fleet` when the incident hit every variant of the run (or the run has one), else
    the one variant it hit: the scope an incident episode is scored against."""
    if set(variants) <= set(hit) or len(set(hit)) != 1:
        return "fleet"
    return next(iter(hit))
