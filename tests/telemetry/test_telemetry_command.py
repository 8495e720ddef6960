"""`wsanalysis telemetry init|check`: the template reads as the contract itself, and the
check says role by role what a dialect holds under a mapping's names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.telemetry.dialect import make_dialect
from wsanalysis.cli import main
from wsanalysis.sources.telemetry import load_telemetry

REPO = Path(__file__).resolve().parents[2]


def test_init_writes_a_template_that_reads_as_the_contract(tmp_path: Path, capsys):
    out = tmp_path / "telemetry.yaml"
    assert main(["telemetry", "init", "--out", str(out)]) == 0
    assert load_telemetry(out).is_reference  # every line commented out: nothing renamed
    text = out.read_text()
    for name in ("ws_closes_total", "ws.ttfb", "session_id", "sample_rate", "selectors"):
        assert name in text
    assert main(["telemetry", "init", "--out", str(out)]) == 3  # never overwritten
    assert "exists" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dialect(tmp_path_factory: pytest.TempPathFactory):
    return make_dialect(REPO / "data" / "network_outage", tmp_path_factory.mktemp("d") / "n", 5)


def test_check_role_by_role(dialect, capsys):
    args = ["telemetry", "check", "--data", str(dialect.folder)]
    assert main([*args, "--telemetry", str(dialect.by_label)]) == 0
    out = capsys.readouterr().out
    closes = dialect.metrics["ws_closes_total"]
    assert f"[found  ] metric ws_closes_total = {closes}:" in out
    assert f"[found  ] beacon type ws.close = {dialect.types['ws.close']}:" in out
    assert "[found  ] variants variant = label" in out
    assert "[MISSING]" in out or "of" in out.splitlines()[-1]

    assert main(args) == 0  # no mapping: everything is missing, and the data's names shown
    out = capsys.readouterr().out
    assert "[MISSING] metric ws_closes_total: no series under this name" in out
    assert "[MISSING] unmapped metrics: the data hold" in out and closes in out
    assert "beacons lines" in out and "rejected: missing required field" in out
