"""The service says what the CLI says: every bundled dataset, sequential mode, look by look.

One real Prometheus holds every bundled dataset (a `dataset` label tells them apart; a
canary is picked by selectors). At 35 and 70 minutes, half and the end of each dataset's
window the service's data path (`canary_looks.Judge`: incremental push-down reads, the
late margin re-read, per-bucket sums in its SQLite state) looks, and `wsanalysis judge
--prometheus ... --sequential` runs over the same window; the two documents must be
equal (verdict, reason, every gate's decision, figures and sentence, provenance), apart
from what belongs to a run or a look. The selectors name a label only the server has
(`dataset`), so both read the beacons' variant from their own field (a telemetry file's
`rum.fields.variant`; selectors reach the beacons otherwise). On a one-variant dataset
(before/after) the selectors pick no series: both refuse it, with the same words. Under a partial-response warning on any family
(a fault-injecting proxy in front of the server), both leave the same gates undecided.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from tests.pushdown.fault_proxy import FaultProxy, Faults
from tests.service.conftest import BUNDLED, REPO
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.reads import gate_metric_names
from wsanalysis.cli import main
from wsanalysis.errors import DataError
from wsanalysis.service.canary_looks import Judge
from wsanalysis.service.requests import Look
from wsanalysis.service.state import StateStore
from wsanalysis.sources.dataset import Dataset

pytestmark = pytest.mark.prometheus

PLAN = {"look": "1h", "horizon": "24h"}
#: what belongs to one run of the CLI or to one look of the service, not to the verdict
EARLY = timedelta(minutes=35)  # before any rate gate can decide (the first hour's burn-in)
OWN = {
    "run",
    "id",
    "report",
    "looks",
    "elapsed_s",
    "final",
    "fetched_samples",
    "received_bytes",
    "read_seconds",
}


def window(name: str) -> tuple[datetime, datetime]:
    frame = Dataset.open(REPO / "data" / name).metrics()
    start, end = frame["timestamp"].min(), frame["timestamp"].max()
    minute = timedelta(minutes=1)
    return start, start + ((end - start) // minute) * minute


def selectors(name: str) -> dict[str, str]:
    return {
        "canary_selector": f'dataset="{name}",variant="canary"',
        "control_selector": f'dataset="{name}",variant="control"',
    }


def beacon_variants(folder: Path) -> Path:
    """A telemetry file: the beacons name their variant in their own `variant` field."""
    path = folder / "telemetry.yaml"
    path.write_text("version: 1\nrum:\n  fields: {variant: variant}\n")
    return path


def look(name: str, start: datetime, end: datetime, rum: Path | None, names: Path) -> Look:
    return Look(id=name, start=start, end=end, canary_share=0.1, rum=str(rum) if rum else None,
                **PLAN, **selectors(name), telemetry=str(names))  # fmt: skip


def cli(
    url: str, name: str, start: datetime, end: datetime, rum: Path | None, out: Path, names: Path
) -> dict:
    args = ["judge", "--prometheus", url, "--start", start.isoformat(), "--end", end.isoformat(),
            "--canary-share", "0.1", "--sequential", "--look", PLAN["look"], "--horizon",
            PLAN["horizon"], "--out", str(out), "--telemetry", str(names)]  # fmt: skip
    for option, value in selectors(name).items():
        args += [f"--{option.replace('_', '-')}", value]
    if rum is not None:
        args += ["--rum", str(rum)]
    code = main(args)
    assert code in (0, 1, 2), f"{name}: the CLI failed"
    return json.loads(out.read_text())


def refused_alike(refused: DataError, run_cli, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI refuses what the service refused (exit 3), naming the same problem."""
    capsys.readouterr()
    with pytest.raises(AssertionError, match="the CLI failed"):
        run_cli()
    assert refused.problem in capsys.readouterr().err


def verdict_part(document: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in document.items() if k not in OWN}))


@pytest.mark.parametrize("name", BUNDLED)
def test_the_service_says_what_the_cli_says_look_by_look(
    bundled_prometheus, tmp_path, name, capsys
):
    start, end = window(name)
    rum = Dataset.open(REPO / "data" / name).rum_path
    service = Judge(StateStore(tmp_path / "state.sqlite"), bundled_prometheus.url)
    names = beacon_variants(tmp_path)
    compared = 0
    half = start + ((end - start) / 2 // timedelta(minutes=1)) * timedelta(minutes=1)
    for k, at in enumerate((start + EARLY, start + 2 * EARLY, half, end)):
        out = tmp_path / f"v{k}.json"
        try:
            answer = service.look(look(name, start, at, rum, names))
        except DataError as refused:  # no series is canary or control: never a verdict
            assert name.startswith("before_after"), refused
            run_cli = partial(cli, bundled_prometheus.url, name, start, at, rum, out, names)
            refused_alike(refused, run_cli, capsys)
            return
        if answer.cached:  # decided at an earlier look: the answer stays
            continue
        expected = cli(bundled_prometheus.url, name, start, at, rum, out, names)
        assert verdict_part(answer.document) == verdict_part(expected), f"{name} at {at}"
        compared += 1
    # the incremental path ran (a look after the first), unless the first look decided
    assert compared >= 2 or service.store.looks(name)[0].verdict in ("GO", "NO_GO")


PROFILE = load_gate_file(None).profile("canary")


@pytest.mark.parametrize("family", gate_metric_names(PROFILE))
def test_a_partial_answer_on_any_family_leaves_the_same_gates_undecided(
    bundled_prometheus, tmp_path, family
):
    """Server figures only (no RUM), so every family feeds a gate; the proxy adds a
    partial-response warning to every query on `family`, at every look."""
    name = "aa_baseline"
    start, end = window(name)
    names = beacon_variants(tmp_path)
    clean = cli(bundled_prometheus.url, name, start, end, None, tmp_path / "clean.json", names)
    faults = Faults(warn_when=family)
    with FaultProxy(bundled_prometheus.url, faults) as proxy:
        service = Judge(StateStore(tmp_path / "state.sqlite"), proxy.url)
        for at in (start + (end - start) / 2, end):
            answer = service.look(look(name, start, at, None, names))
        expected = cli(proxy.url, name, start, end, None, tmp_path / "warned.json", names)
    assert verdict_part(answer.document) == verdict_part(expected)
    touched = {g.name for g in PROFILE.gates if family in g.server_series}
    gates = {g["name"]: g for g in answer.document["gates"]}
    for before in clean["gates"]:
        after = gates[before["name"]]
        if before["name"] in touched and before["decision"] != "no_data":
            assert after["decision"] == "inconclusive", after["name"]
            assert faults.warning in after["sentence"]
        else:
            assert after["decision"] == before["decision"], after["name"]
    assert answer.document["source_warnings"] == {family: [faults.warning]}
    if touched and any(g["decision"] == "pass" for g in clean["gates"] if g["name"] in touched):
        assert answer.document["verdict"] != "GO"
