"""Bundled fleet datasets through a real Prometheus: backfilled with promtool, read back
over the HTTP API, equal to the file source sample for sample."""

from __future__ import annotations

import pytest

from tests.prometheus.fixtures import require_prometheus
from wsanalysis.sources.local_prometheus import prometheus_for_dataset
from wsanalysis.sources.openmetrics import read_openmetrics
from wsanalysis.sources.prometheus import PrometheusSettings, PrometheusSource

from .conftest import DATA, generated_datasets

pytestmark = pytest.mark.prometheus


@pytest.mark.parametrize("name", generated_datasets())
def test_dataset_reads_the_same_from_file_and_a_backfilled_prometheus(name, tmp_path) -> None:
    require_prometheus()
    folder = DATA / name  # bundled metrics are gzipped: the backfill reads them as they are
    from_file = read_openmetrics(folder / "metrics.om.gz")
    start, end = from_file["timestamp"].min(), from_file["timestamp"].max()
    with (
        prometheus_for_dataset(folder, tsdb=tmp_path / "tsdb") as prometheus,
        PrometheusSource(PrometheusSettings(url=prometheus.url)) as source,
    ):
        from_server = source.read_samples('{__name__=~"ws_.+"}', start, end)
    assert from_server.height == from_file.height > 0
    assert from_server.equals(from_file)
