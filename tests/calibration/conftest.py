"""Calibration runs shared by the tests: each bundled history calibrated once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsanalysis.cli import main

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"


def run_calibrate(args: list[str], out: Path, capsys=None) -> tuple[int, dict | None, str]:
    """`wsanalysis calibrate ARGS --out OUT --quiet`: exit code, document, stdout."""
    code = main(["calibrate", *args, "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out if capsys is not None else ""
    document = json.loads(out.read_text()) if out.exists() else None
    return code, document, printed


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Calibrate a bundled dataset once per module (default settings: 1 h, 10%, 5 seeds)."""
    cache: dict[str, tuple[int, dict | None, str]] = {}

    def get(name: str) -> tuple[int, dict | None]:
        if name not in cache:
            out = tmp_path_factory.mktemp(name) / "calibration.json"
            cache[name] = run_calibrate(["--data", str(DATA / name)], out)
        return cache[name][:2]

    return get
