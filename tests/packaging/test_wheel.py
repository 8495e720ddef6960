"""The wheel is enough: built from the checkout, installed into a fresh virtual environment
outside it, `wsanalysis canary` runs a report from a dataset folder (the notebooks ship
inside the wheel).

Only wsanalysis comes from the wheel. Its dependencies are the project venv's: the new
venv sees that site-packages through a `.pth` line, which puts the folder on sys.path
after the venv's own (so the wheel's wsanalysis wins) and does not run the folder's own
`.pth` files (so the editable install's finder, which points at the checkout, stays
off). Installing ~150 dependencies again would cost minutes and the network, and test
pip rather than our packaging. The test proves which copy ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(args: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]} {result.stderr[-3000:]}"
    return result


def test_the_wheel_carries_the_notebooks_and_runs_a_canary_report(tmp_path: Path):
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels, REPO])
    (wheel,) = wheels.glob("wsanalysis-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                .stdout.strip())  # fmt: skip
    (site / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         "--quiet", wheel])  # fmt: skip

    work = tmp_path / "elsewhere"  # not the checkout: nothing found by accident
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = run([python, "-c", "import wsanalysis, wsanalysis.report.kinds as k; "
                 "print(wsanalysis.__file__); print(k.CANARY.notebook)"], cwd=work, env=env)  # fmt: skip
    module, notebook = where.stdout.split()
    assert Path(module).is_relative_to(venv) and Path(notebook).is_relative_to(venv)
    assert not Path(notebook).is_symlink() and Path(notebook).is_file()

    out = work / "report"
    result = subprocess.run(
        [venv / "bin" / "wsanalysis", "canary", "--param", f"data={REPO / 'data' / 'sample'}",
         "--param", "canary_share=0.1", "--param", "start=2026-11-02T06:00:00Z",
         "--param", "end=2026-11-02T08:00:00Z", "--out", out],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode in (0, 1, 2), result.stderr[-3000:]
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] in ("GO", "NO_GO", "INCONCLUSIVE")
    assert result.returncode == {"GO": 0, "NO_GO": 1, "INCONCLUSIVE": 2}[verdict["verdict"]]
    assert Path(verdict["run"]["notebook"]).is_relative_to(venv)
    html = (out / "report.html").read_text()
    assert verdict["verdict"] in html and "Canary evaluation" in html
