"""Parameter spec and validation, before any kernel starts; the CLI's refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jupytext
import pytest

from wsanalysis.cli import main
from wsanalysis.errors import DataError, UsageError
from wsanalysis.report.kinds import CANARY, NOTEBOOKS
from wsanalysis.report.parameters import parse_assignments, parse_parameters_cell

CELL = """
name: str = "x"  # a name
count: int = 3  # how many
share: float | None = None  # a share
flag: bool = False  # on or off
"""


def test_cell_is_read_as_a_typed_spec():
    spec = parse_parameters_cell(CELL)
    assert [p.name for p in spec.parameters] == ["name", "count", "share", "flag"]
    assert spec["count"].type is int and not spec["count"].optional
    assert spec["share"].type is float and spec["share"].optional
    assert spec["flag"].help == "on or off"
    assert spec.defaults() == {"name": "x", "count": 3, "share": None, "flag": False}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1  # untyped", "name: type = literal"),
        ("x: list = []  # a list", "annotation must be one of"),
        ("x: int = None  # no", "needs `int | None`"),
        ("x: int = 'a'  # no", "is not a int"),
        ("x: int = 1", "help comment"),
        ("x: int | str = 1  # two", "T | None"),
    ],
)
def test_bad_cells_are_refused(source, message):
    with pytest.raises(ValueError, match=message.replace("|", r"\|")):
        parse_parameters_cell(source)


def test_text_values_are_coerced_against_annotations():
    spec = parse_parameters_cell(CELL)
    values = spec.validate({"count": "7", "share": "0.25", "flag": "yes", "name": "y"})
    assert values == {"name": "y", "count": 7, "share": 0.25, "flag": True}
    assert spec.validate({"share": "none"})["share"] is None
    assert spec.validate({"count": 4.0})["count"] == 4  # YAML float that is an integer
    when = datetime(2026, 11, 2, 6, tzinfo=UTC)
    assert spec.validate({"name": when})["name"] == "2026-11-02T06:00:00+00:00"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"count": "many"}, "'count'"),
        ({"count": 2.5}, "'count'"),
        ({"count": True}, "'count'"),
        ({"flag": "maybe"}, "'flag'"),
        ({"flag": 1}, "'flag'"),
        ({"share": "a lot"}, "'share'"),
        ({"name": None}, "'name'"),
        ({"name": ["a"]}, "'name'"),
        ({"colour": "red"}, "'colour'"),
    ],
)
def test_bad_values_name_the_parameter(values, named):
    with pytest.raises(UsageError) as error:
        parse_parameters_cell(CELL).validate(values)
    assert named in error.value.problem


def test_assignments_parse_and_refuse_garbage():
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(UsageError, match="name=value"):
        parse_assignments(["novalue"])


def test_canary_spec_comes_from_the_notebook():
    spec = CANARY.spec()
    names = [p.name for p in spec.parameters]
    assert names[:2] == ["data", "prometheus"]
    assert {"gates", "profile", "canary_share", "sequential", "output_dir"} <= set(names)
    assert all(p.help for p in spec.parameters)
    assert spec["canary_share"].type is float and spec["sequential"].type is bool


def test_notebook_pair_is_in_sync():
    """The .ipynb is generated from the jupytext .py: same cells, same tags."""
    text = jupytext.read(NOTEBOOKS / "canary_evaluation.py")
    stored = json.loads((NOTEBOOKS / "canary_evaluation.ipynb").read_text())

    def cells(notebook):
        return [
            (c["cell_type"], "".join(c["source"]).strip(), sorted(c["metadata"].get("tags", [])))
            for c in notebook["cells"]
        ]

    assert cells(text) == cells(stored)
    assert all(not c.get("outputs") for c in stored["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"data": ""}, "data, prometheus"),  # {} now runs on the notebook's default data
        ({"data": "data/sample", "prometheus": "http://127.0.0.1:9090"}, "data, prometheus"),
        ({"data": "no/such/folder"}, "'data'"),
        ({"prometheus": "http://127.0.0.1:9090", "start": "2026-11-02T06:00:00Z"}, "'end'"),
        ({"data": "data/sample", "start": "yesterday-ish"}, "'start'"),
        ({"data": "data/sample", "canary_share": "1.5"}, "'canary_share'"),
        ({"data": "data/sample", "bucket": "ten minutes"}, "'bucket'"),
        ({"data": "data/sample", "profile": "nightly"}, "'profile'"),
        ({"data": "data/sample", "gates": "no/gates.yaml"}, "'gates'"),
        ({"data": "data/sample", "rum": "data/sample/rum.ndjson.gz"}, "'rum'"),
        ({"prometheus": "https://u:pw@prom.example", "start": "1", "end": "2"}, "'prometheus'"),
    ],
)
def test_canary_rules_beyond_types(values, named, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    with pytest.raises((UsageError, DataError)) as error:
        CANARY.validate(values)
    assert named in error.value.problem


def test_a_credential_pasted_into_a_parameter_is_refused(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv("WSANALYSIS_PROM_BEARER_TOKEN", "tok-123456")
    with pytest.raises(UsageError, match="'prometheus'.*credential"):
        CANARY.validate({"prometheus": "http://h/?token=tok-123456", "start": "1", "end": "2"})


def test_the_default_url_from_the_environment_is_not_a_secret(monkeypatch):
    monkeypatch.setenv("WSANALYSIS_PROM_URL", "http://127.0.0.1:9090")
    values = CANARY.validate(
        {"prometheus": "http://127.0.0.1:9090", "start": "1793599200", "end": "1793620800"}
    )
    assert values["prometheus"] == "http://127.0.0.1:9090"
    assert (values["start"], values["end"]) == ("2026-11-02T06:00:00Z", "2026-11-02T12:00:00Z")


def test_paths_become_absolute(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    values = CANARY.validate({"data": "data/sample", "canary_share": "0.1"})
    assert values["data"] == str(repo_root / "data" / "sample")
    assert values["canary_share"] == 0.1 and values["profile"] == "canary"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--param", "data=data/sample", "--param", "canary_share=lots"], "canary_share"),
        (["--param", "data=data/sample", "--param", "colour=red"], "colour"),
        (["--param", "data=data/sample", "--param", "output_dir=/tmp"], "output_dir"),
        (["--param", "data=data/sample", "--param", "profile=nope"], "profile"),
    ],
)
def test_cli_bad_parameters_exit_3_and_write_nothing(argv, named, tmp_path, capsys, repo_root):
    out = tmp_path / "out"
    code = main(["canary", *argv, "--out", str(out)])
    assert code == 3
    assert named in capsys.readouterr().err
    assert not out.exists()  # no report at all, so none that claims GO


def test_prepare_only_injects_without_executing(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    out = tmp_path / "prepared"
    params = tmp_path / "p.yaml"
    params.write_text("data: data/sample\ncanary_share: 0.2\n")
    code = main(["report", "canary", "--params", str(params), "--param", "canary_share=0.1",
                 "--out", str(out), "--prepare-only"])  # fmt: skip
    assert code == 0
    notebook = json.loads((out / "report.ipynb").read_text())
    injected = next(
        c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    )
    source = "".join(injected["source"])
    assert "canary_share = 0.1" in source  # --param overrides --params
    assert f'data = "{repo_root / "data" / "sample"}"' in source
    assert all(not c.get("outputs") for c in notebook["cells"] if c["cell_type"] == "code")
    assert not (out / "verdict.json").exists() and not (out / "report.html").exists()


def test_a_missing_notebook_is_a_usage_error(tmp_path):
    from dataclasses import replace

    missing = replace(CANARY, notebook=tmp_path / "gone.ipynb")
    with pytest.raises(UsageError, match="notebook .* is missing"):
        missing.validate({"data": "data/sample"})
