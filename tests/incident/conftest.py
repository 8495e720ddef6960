"""Bundled labelled datasets, loaded and analysed once per test session."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from wsanalysis.incident.analyze import Analysis, analyze
from wsanalysis.incident.inputs import IncidentData, load_dataset

DATA = Path(__file__).resolve().parents[2] / "data"


@cache
def loaded(name: str) -> IncidentData:
    return load_dataset(DATA / name)


@cache
def analysed(name: str) -> Analysis:
    return analyze(loaded(name))
