"""Every notebook runs exactly as committed, with no parameters (issue 18: an analyst
opens it and presses Run All), on the bundled data its defaults name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.notebooks.conftest import NOTEBOOKS
from wsanalysis.report.kinds import KINDS
from wsanalysis.report.parameters import read_spec

RESULT_FILES = {"canary_evaluation": "verdict.json", "incident_analysis": "findings.json"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_as_committed(opened: Path, notebook: Path):
    import papermill

    source = opened / "notebooks" / notebook.name
    executed = papermill.execute_notebook(
        str(source), str(source.with_suffix(".out.ipynb")), parameters=None,
        kernel_name="python3", cwd=str(source.parent), progress_bar=False,
        execution_timeout=300,
    )  # fmt: skip
    errors = [
        o for c in executed["cells"] if c["cell_type"] == "code"
        for o in c.get("outputs", []) if o["output_type"] == "error"
    ]  # fmt: skip
    assert errors == []
    assert all(c.get("execution_count") for c in executed["cells"] if c["cell_type"] == "code"), (
        "every code cell ran"
    )
    document = json.loads((source.parent / RESULT_FILES[notebook.stem]).read_text())
    assert document["verdict"]  # a banner word: the analysis ran on the default data


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_default_data_exists_and_validates(kind: str):
    """The defaults name bundled data; the report's validation resolves them from the
    notebook's folder, and a source the caller names replaces the default one."""
    report = KINDS[kind]
    default = read_spec(report.notebook)["data"].default
    assert default and default.startswith("../data/")
    assert (report.notebook.parent / default).is_dir()
    params = report.validate({})
    assert Path(params["data"]) == (report.notebook.parent / default).resolve()
    given = {"prometheus": "http://127.0.0.1:9", "start": "2026-11-02T06:00:00Z",
             "end": "2026-11-02T07:00:00Z"}  # fmt: skip
    assert report.validate(given)["data"] is None


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_jupytext_twins_in_step(notebook: Path):
    """The .py twin and the .ipynb hold the same cells; the .ipynb is stored without outputs."""
    import jupytext

    def cells(nb):
        return [(c["cell_type"], "".join(c["source"]).strip(),
                 sorted(c["metadata"].get("tags", []))) for c in nb["cells"]]  # fmt: skip

    stored = json.loads(notebook.read_text())
    assert cells(jupytext.read(notebook.with_suffix(".py"))) == cells(stored)
    assert all(not c.get("outputs") for c in stored["cells"] if c["cell_type"] == "code")
