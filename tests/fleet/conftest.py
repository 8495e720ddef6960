"""Fixtures for the fleet simulator's tests: a tiny scenario and the bundled datasets."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from wsanalysis.reference.scenario import bundled_names

DATA = Path(__file__).resolve().parents[2] / "data"

#: A scenario small enough to run in a fraction of a second, with every kind of event.
TINY = {
    "name": "tiny",
    "description": "a small fleet for tests",
    "seed": 5,
    "start": "2026-11-02T06:00:00Z",
    "duration": "2h",
    "warmup": "20m",
    "scrape_interval": "60s",
    "users": {
        "concurrent": 60,
        "session_length": {"median": "20m", "sigma": 0.5},
        "messages_per_hour": 6,
        "token_ttl": "30m",
    },
    "variants": {
        "control": {"share": 0.7, "server": {"internal_error_p": 0.02, "drop_rate": 0.1}},
        "canary": {
            "share": 0.3,
            "client": {"jitter": "none", "dedup": False, "token_refresh": False},
            "server": {"duplicate_p": 0.2, "ttfb": {"median": "300ms", "sigma": 0.3}},
        },
    },
    "timeline": [
        {"kind": "restart", "at": "30m", "downtime": "5s"},
        {"kind": "network_outage", "start": "50m", "end": "55m", "share": 0.5},
        {"kind": "token_rotation", "at": "70m", "duration": "5m", "variants": ["canary"]},
        {"kind": "latency", "start": "80m", "end": "90m", "extra": "1s"},
        {"kind": "reconnect_storm", "start": "95m", "end": "100m", "share": 1.0},
        {"kind": "drain", "start": "105m", "end": "106m", "variants": ["control"]},
        {"kind": "server_faults", "start": "110m", "set": {"internal_error_p": 0.5}},
    ],
    "expect": {"canary_share": 0.3, "profiles": {"canary": {"verdict": "NO_GO"}}},
}


@pytest.fixture
def tiny() -> dict:
    return copy.deepcopy(TINY)


def generated_datasets() -> list[str]:
    """Bundled dataset folders written by the fleet (labels.json names the generator)."""
    names = []
    for name in bundled_names():
        labels = DATA / name / "labels.json"
        if labels.is_file() and json.loads(labels.read_text()).get("generator", "").startswith(
            "wsanalysis.reference.fleet"
        ):
            names.append(name)
    return names
