"""Every bundled dataset rewritten into another service's names (by code: every metric,
label, label value, beacon field and type, the variant label and its values), read back
through a telemetry mapping: the judge (files, and a real Prometheus with push-down, by
label mapping and by selectors), the incident analysis, the canary report, the
before/after table and the exports give the original's answers, and no exported rule
spells a name of the contract.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml

import wsanalysis
from tests.telemetry.dialect import Dialect, make_dialect
from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import load_judge_input
from wsanalysis.canary.judge import judge
from wsanalysis.cli import main
from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.inputs import load_dataset
from wsanalysis.observability.dashboard import build_dashboard
from wsanalysis.observability.rules import rules_document
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.local_prometheus import LocalPrometheus, backfill
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.prometheus import PrometheusSource
from wsanalysis.sources.promql_text import _tokens
from wsanalysis.sources.telemetry import load_telemetry
from wsanalysis.sources.translation import HISTOGRAM_SUFFIXES
from wsanalysis.sources.variants import unescape

REPO = Path(__file__).resolve().parents[2]
DATASETS = sorted(p.name for p in (REPO / "data").iterdir() if (p / "labels.json").exists())
GATES = load_gate_file(None)
ON_PROMETHEUS = ("error_rate_x2", "auth_spike_token_change")


def flavor(name: str) -> str:
    """Half the datasets map the variant by a label, half by selectors (the before/after
    pair has variants `before` and `after`, which only a label keeps: a series that no
    selector matches has no variant at all)."""
    if name.startswith("before_after"):
        return "label"
    return "label" if DATASETS.index(name) % 2 == 0 else "selectors"


@pytest.fixture(scope="module")
def dialects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dialect]:
    root = tmp_path_factory.mktemp("dialects")
    with ThreadPoolExecutor(2) as pool:
        made = pool.map(
            lambda i: make_dialect(REPO / "data" / DATASETS[i], root / DATASETS[i], seed=i + 1),
            range(len(DATASETS)),
        )
        return dict(zip(DATASETS, made, strict=True))


def telemetry_of(dialect: Dialect, name: str) -> Path:
    return dialect.by_label if flavor(name) == "label" else dialect.by_selectors


def answers(verdict) -> tuple:
    """The verdict, its reason, each gate's decision and sentence (sentences about the
    inputs name the mapping, so only their number is compared)."""
    notes = verdict.metadata.get("notes") or []
    reason = verdict.reason.removesuffix(" ".join(notes)).strip()
    return (
        verdict.overall,
        reason,
        len(notes),
        [(g.name, g.decision, g.sentence) for g in verdict.gates],
    )


def judged(folder: Path, telemetry: Path | None = None) -> dict[str, tuple]:
    """Both profiles' answers from one load (every column and series, as a report reads)."""
    data = load_judge_input(GATES.profile("canary"), data=folder, telemetry=telemetry)
    return {p: answers(judge(GATES.profile(p), data)) for p in ("canary", "staging")}


@pytest.mark.parametrize("name", DATASETS)
def test_judge_on_files(dialects: dict[str, Dialect], name: str):
    dialect = dialects[name]
    original = judged(REPO / "data" / name)
    assert judged(dialect.folder, telemetry_of(dialect, name)) == original


def episodes(folder: Path, telemetry: Path | None = None) -> tuple:
    data = load_dataset(folder, telemetry=telemetry)
    result = analyze(data)
    return (
        data.rum_sample,
        [(e.kinds, e.start, e.end, e.scope, e.severity, e.sentence) for e in result.episodes],
        [(f.kind, f.start, f.end, f.variant, f.sentence) for f in result.findings],
        [(n.detector, n.reason) for n in result.not_run],
    )


@pytest.mark.parametrize("name", DATASETS)
def test_incident_on_files(dialects: dict[str, Dialect], name: str):
    dialect = dialects[name]
    original = episodes(REPO / "data" / name)
    assert episodes(dialect.folder, telemetry_of(dialect, name)) == original


def test_before_after_table(dialects: dict[str, Dialect], tmp_path: Path, capsys):
    before, after = (f"before_after_{side}" for side in ("before", "after"))
    assert main(["compare", str(REPO / "data" / before), str(REPO / "data" / after)]) == 0
    original = capsys.readouterr().out
    # both folders through one mapping: the `before` dialect's names, given to `after` too
    mapping = dialects[before].by_label
    same_names = tmp_path / "after"
    made = make_dialect(REPO / "data" / after, same_names, seed=DATASETS.index(before) + 1)
    assert made.metrics == dialects[before].metrics
    shutil.copy(mapping, tmp_path / "telemetry.yaml")
    args = [str(dialects[before].folder), str(same_names), "--telemetry", str(mapping)]
    assert main(["compare", *args]) == 0
    assert capsys.readouterr().out == original


# -- a real Prometheus holding each dataset twice: in the contract's names and a dialect's


@pytest.fixture(scope="module")
def both_names(dialects, tmp_path_factory) -> dict[str, LocalPrometheus]:
    """One server per dataset, holding the original and the dialect side by side (their
    names never meet), so both are judged by the same server the same way."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.skip("prometheus not installed: run `apt-get install prometheus`")
    servers: dict[str, LocalPrometheus] = {}
    try:
        for name in ON_PROMETHEUS:
            folder = tmp_path_factory.mktemp(f"both-{name}")
            original = Dataset.open(REPO / "data" / name).metrics()
            renamed = Dataset.open(dialects[name].folder).metrics()  # user's names, variant null
            frame = pl.concat([original, renamed], how="diagonal_relaxed")
            write_openmetrics(frame, folder / "metrics.om")
            backfill(folder, folder / "tsdb")
            servers[name] = LocalPrometheus(folder / "tsdb")
            servers[name].start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.prometheus
@pytest.mark.parametrize("name", ON_PROMETHEUS)
@pytest.mark.parametrize("mapping", ["label", "selectors"])
def test_judge_on_prometheus(dialects, both_names, name: str, mapping: str):
    dialect, server = dialects[name], both_names[name]
    window = Dataset.open(REPO / "data" / name).labels["window"]
    profile = GATES.profile("canary")

    def verdict(telemetry: Path | None, **variants: str) -> tuple:
        data = load_judge_input(
            profile, prometheus=server.url, start=window["start"], end=window["end"],
            canary_share=0.1, telemetry=telemetry, **variants,
        )  # fmt: skip
        return answers(judge(profile, data))

    original = verdict(None)
    telemetry = dialect.by_label if mapping == "label" else dialect.by_selectors
    assert verdict(telemetry) == original
    if mapping == "selectors":  # the command line's selectors replace the file's variants
        selectors = {
            "canary_selector": dialect.canary_selector,
            "control_selector": dialect.control_selector,
        }
        assert verdict(dialect.by_label, **selectors) == original


# -- exports


def _reference_names(dialect: Dialect) -> tuple[set[str], set[str]]:
    """Identifiers and string values of the contract the dialect renames."""
    identifiers = {"variant", *dialect.labels}
    for family in dialect.metrics:
        identifiers |= {family, family.removesuffix("_total")}
        identifiers |= {family + s for s in HISTOGRAM_SUFFIXES}
    values = {v for values in dialect.label_values.values() for v in values} | {"canary", "control"}
    return identifiers, values


def _spelled(expr: str, identifiers: set[str], values: set[str]) -> list[str]:
    """The contract's names an expression still spells (identifiers, record-name parts,
    string values)."""
    found = []
    for kind, token in _tokens(expr):
        if kind == "ident":
            parts = {token, *token.split(":"), *(p for t in token.split(":") for p in t.split("_"))}
            found += [token for part in parts if part in identifiers]
        elif kind == "string" and unescape(token[1:-1]) in values:
            found.append(token)
    return found


@pytest.mark.filterwarnings("ignore:no data for")  # a rule with no series in the window
@pytest.mark.parametrize("mapping", ["label", "selectors"])
def test_rules_in_the_dialect(dialects, both_names, mapping: str, tmp_path: Path):
    """promtool accepts them, they spell no name of the contract, and each recording rule
    computes on the dialect what the original's computes on the original."""
    name = ON_PROMETHEUS[0]
    dialect, server = dialects[name], both_names[name]
    telemetry = load_telemetry(dialect.by_label if mapping == "label" else dialect.by_selectors)
    document = rules_document(GATES, telemetry)
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    check = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    identifiers, values = _reference_names(dialect)
    rules = [r for group in document["groups"] for r in group["rules"]]
    for rule in rules:
        assert not _spelled(rule["expr"], identifiers, values), rule
        assert not _spelled(rule.get("record", "x"), identifiers, values), rule["record"]
        assert "$labels.variant" not in json.dumps(rule.get("annotations", {}))
    originals = rules_document(GATES)["groups"][0]["rules"]
    at = Dataset.open(REPO / "data" / name).labels["window"]["end"]
    roles = {dialect.canary: "canary", dialect.control: "control"}
    compared = 0
    with PrometheusSource(server.url) as source:
        for original, translated in zip(originals, document["groups"][0]["rules"], strict=True):
            want = _values(source, original["expr"], at, "variant", {})
            got = _values(source, translated["expr"], at, dialect.label, roles)
            assert got.keys() == want.keys(), original["record"]
            for role in want:
                assert got[role] == pytest.approx(want[role], rel=1e-9), original["record"]
                compared += 1
    assert compared >= 20  # most rules have data for both variants


def _values(source: PrometheusSource, expr: str, at: str, label: str, roles: dict) -> dict:
    """Per variant role, the sorted values an expression gives at `at`."""
    frame = source.query_range(expr, at, at, timedelta(minutes=1))
    if not frame.height:
        return {}
    frame = frame.with_columns(pl.col(label).replace(roles).alias("_role"))
    return {
        role: sorted(part["value"].to_list())
        for (role,), part in frame.group_by(["_role"], maintain_order=True)
    }


def test_dashboard_in_the_dialect(dialects):
    dialect = dialects[ON_PROMETHEUS[0]]
    identifiers, values = _reference_names(dialect)
    for path in (dialect.by_label, dialect.by_selectors):
        board = build_dashboard(GATES, telemetry=load_telemetry(path))
        targets = [t for p in board["panels"] for t in p.get("targets", [])]
        assert targets
        for target in targets:
            assert not _spelled(target["expr"], identifiers, values), target["expr"]
            assert "{{variant}}" not in target["legendFormat"]
        variable = board["templating"]["list"][1]["query"]["query"]
        assert (
            variable == f"label_values({dialect.metrics['ws_connections_total']}, {dialect.label})"
        )


def test_canary_report_in_the_dialect(dialects, tmp_path: Path):
    """The report on the dialect says what the notebook's own call says on the original
    (`wsanalysis.judge(..., frames=True)`), and every chart draws something."""
    name = "error_rate_x2"
    dialect = dialects[name]
    translated = tmp_path / "dialect"
    original = wsanalysis.judge(REPO / "data" / name, frames=True).to_json()
    code = main(
        ["canary", "--param", f"data={dialect.folder}", "--telemetry", str(dialect.by_label),
         "--out", str(translated)]
    )  # fmt: skip
    assert code == 1
    document = json.loads((translated / "verdict.json").read_text())
    assert [(g["name"], g["decision"], g["sentence"]) for g in document["gates"]] == [
        (g["name"], g["decision"], g["sentence"]) for g in original["gates"]
    ]
    notebook = json.loads((translated / "report.ipynb").read_text())
    figures = [
        o["data"]["application/vnd.plotly.v1+json"]
        for cell in notebook["cells"]
        for o in cell.get("outputs", [])
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(figures) >= 5
    for figure in figures:  # every chart draws something (they used to be empty)
        assert any(len(t.get("x") or t.get("y") or ()) for t in figure["data"]), figure["layout"]


@pytest.mark.prometheus
def test_a_judge_server_look_names_its_telemetry(dialects, both_names, tmp_path: Path):
    """A look's `telemetry` field (a file under --files-root) reaches the service's reads:
    its answer is the original's, judged by the same server in the contract's names."""
    from wsanalysis.service.canary_looks import Judge
    from wsanalysis.service.requests import parse_look
    from wsanalysis.service.state import StateStore

    name = ON_PROMETHEUS[0]
    dialect, server = dialects[name], both_names[name]
    window = Dataset.open(REPO / "data" / name).labels["window"]
    fields = {"start": window["start"], "end": window["end"], "canary_share": "0.1",
              "look": "1h", "horizon": "12h"}  # fmt: skip
    judge_ = Judge(StateStore(tmp_path / "state.sqlite"), server.url)
    original = judge_.look(parse_look({"id": "original", **fields})).document
    look = parse_look(
        {"id": "dialect", "telemetry": dialect.by_label.name, **fields},
        files_root=dialect.folder,
    )
    assert look.telemetry == str(dialect.by_label.resolve())
    translated = judge_.look(look).document
    assert translated["verdict"] == original["verdict"]
    assert [(g["name"], g["decision"]) for g in translated["gates"]] == [
        (g["name"], g["decision"]) for g in original["gates"]
    ]
