"""A ramp at the service: each look's share kept as a stage, looks that race or repeat.

Stages from looks (`stages_of`) without a server; the rest through `canary_looks.Judge`
over a real Prometheus holding the labelled A/A dataset: a changed share opens a stage
(never a 400), a look without `end` that waited for the canary's lock behind a later one
answers that look's answer instead of a 400, a look at the last look's end answers the
last answer without reading, and the report link carries the id URL-encoded.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.service.test_judge_server import START, selectors
from wsanalysis.canary.stages import Stage
from wsanalysis.errors import UsageError
from wsanalysis.service.canary_looks import Judge, stages_of
from wsanalysis.service.requests import Look
from wsanalysis.service.state import StateStore
from wsanalysis.times import epoch_ms

pytestmark = pytest.mark.prometheus

T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)


def at(minutes: int) -> int:
    return epoch_ms(T0 + timedelta(minutes=minutes))


def test_a_stage_opens_where_a_looks_share_differs_from_the_last():
    looks = [(at(0), 0.1), (at(5), 0.1), (at(10), 0.1), (at(10), 0.25), (at(15), 0.25),
             (at(20), None), (at(25), 0.5)]  # fmt: skip
    stages = stages_of(at(0), looks)
    moments = [T0 + timedelta(minutes=m) for m in (0, 10, 15, 20, 25)]
    assert stages == (
        Stage(0.1, moments[0], moments[1]),  # the look at the start holds no time
        Stage(0.25, moments[1], moments[2]),  # a share holds since the look before
        Stage(None, moments[2], moments[3]),
        Stage(0.5, moments[3], moments[4]),
    )
    assert stages_of(at(0), [(at(0), 0.1)]) == ()


def look(hours: float, share: float | None = 0.1, **fields) -> Look:
    return Look(id="shop/checkout@7d9f8c", start=START, end=START + timedelta(hours=hours),
                canary_share=share, look="1h", horizon="12h", **selectors("aa"),
                **fields)  # fmt: skip


@pytest.fixture
def service(two_datasets_prometheus, tmp_path) -> Judge:
    return Judge(StateStore(tmp_path / "state.sqlite"), two_datasets_prometheus.url,
                 report_url="https://reports.example/{id}/report.html")  # fmt: skip


def test_a_changed_share_opens_a_stage_and_a_changed_setting_is_still_refused(service):
    first = service.look(look(1))
    ramped = service.look(look(2, 0.25))
    assert first.verdict == ramped.verdict == "INCONCLUSIVE"
    assert [(s["share"], s["start"], s["end"]) for s in ramped.document["stages"]] == [
        (0.1, START.isoformat(), (START + timedelta(hours=1)).isoformat()),
        (0.25, (START + timedelta(hours=1)).isoformat(), (START + timedelta(hours=2)).isoformat()),
    ]
    assert [r.canary_share for r in service.store.looks(first.document["id"])] == [0.1, 0.25]
    for changed in ({"profile": "staging"}, {"canary_selector": 'dataset="x2",variant="canary"'}):
        with pytest.raises(UsageError, match="was started with other"):
            service.look(replace(look(3), **changed))


def test_a_look_without_end_that_waited_behind_a_later_one_answers_that_one(service):
    earlier, later = look(1, end_is_now=True), look(2, end_is_now=True)
    decided = service.look(later)  # the later look took the lock first
    waited = service.look(earlier)
    assert waited.cached and waited.document["fetched_samples"] == 0
    assert waited.document["window"] == decided.document["window"]
    assert len(service.store.looks(later.id)) == 1
    with pytest.raises(UsageError, match="is before the last look"):  # an `end` sent is kept
        service.look(look(1))


def test_a_look_at_the_last_looks_end_answers_the_last_answer_unread(service):
    first = service.look(look(2))
    again = service.look(look(2, 0.5))  # a second hook in the same interval
    assert again.cached and again.document["fetched_samples"] == 0
    assert {k: v for k, v in again.document.items() if k not in ("looks", "fetched_samples",
            "received_bytes", "read_seconds")} == {k: v for k, v in first.document.items()
            if k not in ("looks", "fetched_samples", "received_bytes", "read_seconds")}  # fmt: skip
    assert len(service.store.looks(first.document["id"])) == 1
    assert (
        first.document["report"] == "https://reports.example/shop%2Fcheckout%407d9f8c/report.html"
    )
