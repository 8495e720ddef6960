"""Samples that reach the server after a look covered their timestamps are not lost.

A real VictoriaMetrics; the labelled A/A dataset is imported up to 10 minutes before the
first look's end, the service looks, then the last 10 minutes before that end arrive
(`/api/v1/import`, as a slow scrape or a remote-write delay would deliver them) with
the next hour. The next look re-reads its late margin (`--late`, 15 min by default) and
says exactly what a one-shot `wsanalysis judge` says over the whole window; a service
told to re-read nothing late says something else: the margin is what keeps them.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from tests.pushdown.test_promql_pushdown import require_victoriametrics
from tests.service.conftest import REPO
from tests.service.test_service_equals_cli import beacon_variants, cli, look, verdict_part, window
from wsanalysis.service.canary_looks import Judge
from wsanalysis.service.state import StateStore
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.local_victoriametrics import LocalVictoriaMetrics

NAME = "aa_baseline"
DELAY = timedelta(minutes=10)  # how late the last samples before the first look arrive


def test_late_samples_are_read_by_the_next_look(tmp_path):
    require_victoriametrics()
    start, end = window(NAME)
    first, second = start + timedelta(hours=3), start + timedelta(hours=4)
    samples = Dataset.open(REPO / "data" / NAME).metrics().with_columns(dataset=pl.lit(NAME))
    stamp = pl.col("timestamp")
    on_time = samples.filter(stamp <= first - DELAY)
    late = samples.filter((stamp > first - DELAY) & (stamp <= second))
    assert late.filter(stamp <= first).height > 0
    names = beacon_variants(tmp_path)
    with LocalVictoriaMetrics(tmp_path / "vm") as server:
        server.import_samples(on_time)
        margin = Judge(StateStore(tmp_path / "margin.sqlite"), server.url)
        no_margin = Judge(StateStore(tmp_path / "none.sqlite"), server.url, late=timedelta(0))
        for service in (margin, no_margin):
            service.look(look(NAME, start, first, None, names))
        server.import_samples(late)  # after the first look covered their timestamps
        answer = margin.look(look(NAME, start, second, None, names))
        blind = no_margin.look(look(NAME, start, second, None, names))
        expected = cli(server.url, NAME, start, second, None, tmp_path / "one-shot.json", names)
    assert verdict_part(answer.document) == verdict_part(expected)
    assert verdict_part(blind.document) != verdict_part(expected)
