"""A kernel that dies and a cell that hangs: distinct exit codes, a failed page, no verdict.

Tiny notebooks through the same executor (a `ReportKind` is one notebook and its rules),
so the failure paths run a real kernel without waiting for a real report.
"""

from __future__ import annotations

import json

import jupytext
import pytest

from wsanalysis.report.execute import EXIT_FAILED, EXIT_KERNEL_DIED, execute
from wsanalysis.report.kinds import ReportKind


def tiny_kind(tmp_path, body: str) -> ReportKind:
    source = (
        '# %% tags=["parameters"]\n'
        'output_dir: str = "."  # where the result goes\n\n'
        "# %%\n"
        "import json, pathlib\n"
        "pathlib.Path(output_dir, 'verdict.json').write_text(json.dumps("
        "{'verdict': 'GO', 'reason': 'written before the trouble', 'exit_code': 0}))\n\n"
        f"# %%\n{body}\n"
    )
    path = tmp_path / "tiny.ipynb"
    notebook = jupytext.reads(source, fmt="py:percent")
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    jupytext.write(notebook, path)
    return ReportKind("tiny", "Tiny", path, "verdict.json")


@pytest.mark.parametrize(
    ("body", "timeout", "code", "kind"),
    [
        ("import os\nos._exit(9)", 60, EXIT_KERNEL_DIED, "kernel died"),
        ("import time\ntime.sleep(60)", 2, EXIT_FAILED, "timeout"),
    ],
)
def test_trouble_after_a_go_was_written_is_never_a_go(tmp_path, body, timeout, code, kind):
    report = tiny_kind(tmp_path, body)
    run = execute(report, report.spec().validate({}), tmp_path / "out", timeout=timeout)
    assert run.exit_code == code
    assert run.failure is not None and run.failure.kind == kind
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert verdict["verdict"] is None and verdict["exit_code"] == code
    page = (tmp_path / "out" / "report.html").read_text()
    assert "REPORT FAILED" in page and '<div class="word">GO</div>' not in page
