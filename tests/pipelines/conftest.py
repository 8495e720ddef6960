"""A real Prometheus holding canaries as the controllers label them, for the controller double.

`aa_baseline` (healthy) and `error_rate_x2` (errors ×2) over the same 12 h, and a
synthetic healthy canary whose share ramps (`RAMP`), each in its own namespace, with the labels the examples select on: Flagger's `app=checkout` (canary
pods) and `app=checkout-primary` (primary pods), Argo's `rollouts_pod_template_hash`
(one hash per ReplicaSet). The judge-server reaches it through a proxy that can be made
to drop every request (an outage), and reads the double's virtual clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from tests.canary import ramps
from tests.prometheus.fixtures import require_prometheus
from tests.pushdown.fault_proxy import FaultProxy, Faults
from tests.service.served import served
from wsanalysis.canary.synthetic import CanaryCase
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.prometheus import PrometheusSettings

REPO = Path(__file__).resolve().parents[2]
TOKEN = "controller-double-token-0123456789"


@dataclass(frozen=True)
class Deployment:
    """Where one canary's series live, in the controllers' own labels."""

    dataset: str
    namespace: str
    canary_hash: str
    stable_hash: str


HEALTHY = Deployment("aa_baseline", "shop", "6b8d9f7c5", "5c4b3a2d1")
ERRORS_X2 = Deployment("error_rate_x2", "shop-x2", "7e8f9a0b1", "4d3c2b1a0")
#: A healthy canary whose traffic share really ramps (synthetic server counters): 10 %
#: from 10:00, 25 % from 11:00, 50 % from 12:00 to 16:00, as Argo's setWeight steps move it.
RAMP = Deployment("synthetic ramp", "shop-ramp", "9a8b7c6d5", "1f2e3d4c5")
RAMP_START = datetime(2026, 11, 2, 10, tzinfo=UTC)
RAMP_STAGES = ((1.0, 0.10), (1.0, 0.25), (4.0, 0.50))  # (hours, canary share)


def ramp_samples() -> pl.DataFrame:
    """The ramp's counters, running on across stages (no reset where the share changes)."""
    stages = [(hours, CanaryCase(canary_share=share)) for hours, share in RAMP_STAGES]
    return ramps.ramp_samples(ramps.ramp_cases(RAMP_START, stages))


def labelled(deployment: Deployment) -> pl.DataFrame:
    canary = pl.col("variant") == "canary"
    if deployment is RAMP:
        frame = ramp_samples()
    else:
        frame = Dataset.open(REPO / "data" / deployment.dataset).metrics()
    return frame.with_columns(
        namespace=pl.lit(deployment.namespace),
        app=pl.when(canary).then(pl.lit("checkout")).otherwise(pl.lit("checkout-primary")),
        rollouts_pod_template_hash=pl.when(canary)
        .then(pl.lit(deployment.canary_hash))
        .otherwise(pl.lit(deployment.stable_hash)),
    )


@pytest.fixture(scope="session")
def controller_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    require_prometheus()
    folder = tmp_path_factory.mktemp("controller-canaries")
    frames = [labelled(d) for d in (HEALTHY, ERRORS_X2, RAMP)]
    write_openmetrics(pl.concat(frames, how="diagonal_relaxed"), folder / "metrics.om")
    tsdb = tmp_path_factory.mktemp("controller-canaries-tsdb")
    backfill(folder, tsdb, replace=True)
    with LocalPrometheus(tsdb) as prometheus:
        yield prometheus


@dataclass
class Service:
    url: str
    faults: Faults  # faults.down = True: Prometheus is unreachable


@pytest.fixture
def judge_service(controller_prometheus: LocalPrometheus, tmp_path: Path, request) -> Iterator:
    """A judge-server on the double's clock (`request.param`-free: call with the clock)."""

    def start(clock, files_root: Path | None = None) -> Service:
        faults = Faults()
        proxy = FaultProxy(controller_prometheus.url, faults).__enter__()
        request.addfinalizer(lambda: proxy.__exit__(None, None, None))
        # no retries: an outage answers 503 at once (the retries would only add real time)
        settings = PrometheusSettings(url=proxy.url, retries=0)
        context = served(prometheus=settings, state=tmp_path / "judge.sqlite", token=TOKEN,
                         clock=clock, files_root=files_root)  # fmt: skip
        url = context.__enter__()
        request.addfinalizer(lambda: context.__exit__(None, None, None))
        return Service(url, faults)

    yield start
