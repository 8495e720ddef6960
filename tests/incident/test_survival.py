"""Our use of Kaplan–Meier and log-rank on real connection durations matches lifelines."""

from __future__ import annotations

import math

import polars as pl
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test

from tests.incident.conftest import loaded
from wsanalysis.incident.survival import compare, durations, quantiles_over_time


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return durations(loaded("duration_p50_drops_10min"))


def test_censoring_keeps_open_sockets(frame):
    assert (~frame["observed"]).sum() > 0  # sockets open at the end are kept, censored
    assert frame["duration"].min() >= 0


def test_kaplan_meier_and_logrank_match_lifelines(frame):
    result = compare(frame)
    for variant, curve in result.curves.items():
        part = frame.filter(pl.col("variant") == variant)
        kmf = KaplanMeierFitter().fit(part["duration"].to_numpy(), part["observed"].to_numpy())
        ours = curve.duration_quantile(0.5).estimate
        theirs = kmf.median_survival_time_
        assert (math.isinf(ours) and math.isinf(theirs)) or ours == pytest.approx(theirs)
        times = part["duration"].quantile(0.3)
        assert curve.survival_at(times) == pytest.approx(
            kmf.survival_function_at_times(times).iloc[0]
        )
    a = frame.filter(pl.col("variant") == "canary")
    b = frame.filter(pl.col("variant") == "control")
    theirs = logrank_test(a["duration"], b["duration"], a["observed"], b["observed"])
    assert result.test.statistic == pytest.approx(theirs.test_statistic, rel=1e-6)


def test_quantiles_over_time_per_hour():
    table = quantiles_over_time(loaded("duration_p50_drops_10min"))
    canary = table.filter(pl.col("variant") == "canary")
    assert canary.height >= 10
    assert canary["p50_s"].median() < 20 * 60  # dropped after ~10 minutes
