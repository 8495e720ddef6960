"""One vocabulary for time: every form the three old duration readers took still parses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from wsanalysis.errors import UsageError
from wsanalysis.reference.scenario import ScenarioError
from wsanalysis.reference.scenario import field_seconds as scenario_duration
from wsanalysis.sources.prometheus import _to_ms_span, to_epoch_ms
from wsanalysis.times import (
    TimeError,
    as_utc,
    duration_ms,
    duration_seconds,
    epoch_ms,
    parse_duration,
    parse_moment,
)
from wsanalysis.times import parse_duration as gate_duration

# (text, seconds): the union of what gate files, scenarios and PromQL ranges read before
OLD_FORMS = [
    ("90s", 90),  # gates, scenarios, PromQL
    ("5m", 300),
    ("1h", 3600),
    ("2d", 172800),
    ("250ms", 0.25),  # gates and scenarios
    ("2h30m", 9000),  # scenarios and PromQL (gates refused compound forms)
    ("1h30m", 5400),
    ("7m13s", 433),
    ("20h20m", 73200),
    ("1.5h", 5400),  # scenarios took decimals
    ("0.5", 0.5),  # PromQL steps: a bare number of seconds
    ("1w", 7 * 86400),  # PromQL ranges
    ("1y", 365 * 86400),
    ("1h 30m", 5400),  # scenarios ignored spaces
]


@pytest.mark.parametrize(("text", "seconds"), OLD_FORMS)
def test_every_old_form_reads_the_same_everywhere(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds)
    assert gate_duration(text) == timedelta(seconds=seconds)
    assert scenario_duration(text, "x") == pytest.approx(seconds)
    assert _to_ms_span(text) == round(seconds * 1000) == duration_ms(text)


def test_numbers_and_timedeltas_are_seconds() -> None:
    assert duration_seconds(42) == 42.0 == scenario_duration(42, "x")
    assert parse_duration(timedelta(minutes=2)) == timedelta(minutes=2)
    assert duration_ms(timedelta(minutes=1)) == 60_000


@pytest.mark.parametrize("bad", ["", "1.5 hours", "15 parsecs", "30m1h", "1h1h", "-5m", "m", True])
def test_bad_durations_say_how_to_write_one(bad: object) -> None:
    with pytest.raises(TimeError, match="as a duration") as caught:
        duration_seconds(bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, UsageError) and isinstance(caught.value, ValueError)
    assert "90s" in caught.value.fix or "1h30m" in caught.value.fix


def test_scenario_keeps_its_field_in_the_error() -> None:
    with pytest.raises(ScenarioError, match="scenario field warmup: '12 hours' is not a duration"):
        scenario_duration("12 hours", "warmup")
    with pytest.raises(ScenarioError, match="non-zero"):
        scenario_duration("0s", "duration", allow_zero=False)


def test_a_bare_number_is_epoch_seconds_everywhere() -> None:
    moment = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
    for form in (1_793_599_200, 1_793_599_200.0, "1793599200", " 1793599200.0 "):
        assert as_utc(form) == moment
        assert epoch_ms(form) == 1_793_599_200_000 == to_epoch_ms(form)
    assert parse_moment("1793599200", "start") == moment
    assert parse_moment("2026-11-02T06:00:00Z", "start") == moment
    assert parse_moment(None, "start") is None


def test_instants_in_every_other_form() -> None:
    moment = datetime(2024, 3, 1, tzinfo=UTC)
    assert as_utc(moment.replace(tzinfo=None)) == moment  # naive is UTC
    assert as_utc(moment.astimezone(timezone(timedelta(hours=2)))) == moment
    assert as_utc(date(2024, 3, 1)) == moment
    assert epoch_ms("2024-03-01T00:00:00.250Z") == 1709251200250


@pytest.mark.parametrize("bad", ["soon", float("nan"), float("inf"), 1e300, True, None])
def test_bad_instants_are_usage_errors(bad: object) -> None:
    with pytest.raises(UsageError, match="as a time"):
        as_utc(bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="as a time"):
        epoch_ms(bad)  # type: ignore[arg-type]


def test_times_depends_on_nothing_in_wsanalysis_but_errors() -> None:
    import ast
    from pathlib import Path

    import wsanalysis.times as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wsanalysis")
    }
    assert imported == {"wsanalysis.errors"}
