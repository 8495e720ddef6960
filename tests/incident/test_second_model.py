"""Issue #27 on traffic the detectors were not tuned on (`wsanalysis.traffic`): an
hour-long auth spike is one episode sized by the users it hit, a regression all along
is told for every signal that has it, and A/A days stay within the false-alarm target
(at most one low episode and no medium-or-higher one per 24 h).

The datasets are simulated once per test session (about a minute in all); the
benchmark (`benchmarks/bench_incident.py`) runs the same scenarios with more seeds.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from wsanalysis.incident.analyze import Analysis, analyze
from wsanalysis.incident.findings import SEVERITY_ORDER, is_shift
from wsanalysis.incident.inputs import load_dataset
from wsanalysis.traffic import generate

ROOT: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _root(tmp_path_factory):
    ROOT.append(tmp_path_factory.mktemp("second-model"))
    yield
    ROOT.pop()


@cache
def analysed(name: str, seed: int, hours: float = 12.0) -> Analysis:
    folder = generate(name, ROOT[-1] / f"{name}-{seed}", seed=seed, hours=hours)
    return analyze(load_dataset(folder))


def test_an_hour_long_auth_spike_is_one_episode_sized_by_the_users_it_hit():
    analysis = analysed("auth_hour_x30", 31)
    spike = [e for e in analysis.episodes if "auth_spike" in e.kinds]
    (episode,) = spike
    assert episode.scope == "canary"
    assert SEVERITY_ORDER[episode.severity] >= SEVERITY_ORDER["medium"]
    assert episode.start.strftime("%H") == "12" or episode.start.strftime("%H:%M") >= "11:45"
    covered = (min(episode.end, episode.start.replace(hour=13, minute=0))
               - max(episode.start, episode.start.replace(hour=12, minute=0)))  # fmt: skip
    assert covered.total_seconds() >= 45 * 60  # the hour, not three minutes of it
    assert "too few" not in episode.sentence and "beyond control" in episode.sentence


@pytest.mark.parametrize(
    ("name", "kind", "signal"),
    [
        ("errors_x2", "level_shift", "errors"),
        ("abnormal_x12", "level_shift", "1006"),
        ("shorter_x2", "duration_regression", "duration"),
    ],
)
def test_a_regression_all_along_is_told_for_its_signal(name, kind, signal):
    analysis = analysed(name, 32)
    shifts = [f for f in analysis.findings if is_shift(f)]
    told = [f for f in shifts if f.kind == kind and f.numbers["signal"] == signal]
    assert told and told[0].variant == "canary"
    assert "over the whole window" in told[0].sentence  # all along: since the window's start
    (episode,) = [e for e in analysis.episodes if any(is_shift(f) for f in e.findings)]
    assert episode.scope == "canary" and "over the whole window" in episode.sentence
    assert SEVERITY_ORDER[episode.severity] >= SEVERITY_ORDER["medium"]
    assert {f.variant for f in shifts} == {"canary"}


@pytest.mark.parametrize("name", ["aa_quiet", "aa_bursty", "aa_ttfb_plus30"])
def test_an_aa_day_is_within_the_false_alarm_target(name):
    analysis = analysed(name, 33, hours=24.0)
    low = [e for e in analysis.episodes if e.severity == "low"]
    higher = [e for e in analysis.episodes if e.severity != "low"]
    assert len(low) <= 1, [e.sentence for e in low]
    assert higher == [], [e.sentence for e in higher]
