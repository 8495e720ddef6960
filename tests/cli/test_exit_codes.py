"""The exit-code contract: 0 GO, 1 NO_GO, 2 INCONCLUSIVE, 3 anything else, never a lie.

Every bad invocation below exits 3 with one line saying what is wrong (no traceback), and
an exception raised inside a gate, where no check can foresee it, exits 3 too: a crash is
never read as NO_GO, and no verdict file is left behind.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

from wsanalysis.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLE = str(REPO / "data" / "sample")
BEFORE, AFTER = (str(REPO / "data" / f"before_after_{s}") for s in ("before", "after"))
T0, T1 = "2026-11-02T08:00:00Z", "2026-11-02T07:00:00Z"  # T1 is before T0
DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port

BAD = {
    "share above 1": ["judge", "--data", SAMPLE, "--canary-share", "1.5"],
    "share 0": ["judge", "--data", SAMPLE, "--canary-share", "0"],
    "share 10": ["judge", "--data", SAMPLE, "--canary-share", "10"],
    "share not a number": ["judge", "--data", SAMPLE, "--canary-share", "ten"],
    "look zero": ["judge", "--data", SAMPLE, "--sequential", "--look", "0m"],
    "horizon not a duration": ["judge", "--data", SAMPLE, "--sequential", "--horizon", "2 days"],
    "start not a time": ["judge", "--data", SAMPLE, "--start", "yesterday"],
    "window backwards": ["judge", "--data", SAMPLE, "--start", T0, "--end", T1],
    "prometheus without window": ["judge", "--prometheus", DEAD],
    "password in the URL": [
        "judge",
        "--prometheus",
        "http://a:hunter2@127.0.0.1:9",
        "--start",
        T1,
        "--end",
        T0,
    ],  # fmt: skip
    "prometheus unreachable": ["judge", "--prometheus", DEAD, "--start", T1, "--end", T0],
    "missing folder": ["judge", "--data", "/nonexistent/dataset"],
    "one selector": ["judge", "--data", SAMPLE, "--canary-selector", 'track="canary"'],
    "rum with data": ["judge", "--data", SAMPLE, "--rum", SAMPLE],
    "unknown profile": ["judge", "--data", SAMPLE, "--profile", "nope"],
    "gate file missing": ["judge", "--data", SAMPLE, "--gates", "/nonexistent.yaml"],
    "no source": ["judge"],
    "unknown option": ["judge", "--data", SAMPLE, "--frobnicate"],
    "unknown command": ["frobnicate"],
    "no command": [],
    "incident window backwards": ["incident", "--data", SAMPLE, "--start", T0, "--end", T1],
    "incident rum sample 0": ["incident", "--data", SAMPLE, "--rum-sample", "0"],
    "incident prometheus without end": ["incident", "--prometheus", DEAD, "--start", T1],
    "compare window backwards": [
        "compare",
        BEFORE,
        AFTER,
        "--before-start",
        T0,
        "--before-end",
        T1,
    ],  # fmt: skip
    "compare missing folder": ["compare", BEFORE, "/nonexistent"],
    "summary missing folder": ["summary", "--data", "/nonexistent"],
    "report share": [
        "report",
        "canary",
        "--param",
        f"data={SAMPLE}",
        "--param",
        "canary_share=1.5",
    ],  # fmt: skip
    "canary window backwards": [
        "canary",
        "--param",
        f"data={SAMPLE}",
        "--param",
        f"start={T0}",
        "--param",
        f"end={T1}",
    ],  # fmt: skip
    "canary password in the URL": [
        "canary",
        "--param",
        "prometheus=http://a:hunter2@h:9090",
        "--param",
        f"start={T1}",
        "--param",
        f"end={T0}",
    ],  # fmt: skip
    "report incident rum sample": [
        "report",
        "incident",
        "--param",
        f"data={SAMPLE}",
        "--param",
        "rum_sample=0",
    ],  # fmt: skip
    "judge-server password in the URL": ["judge-server", "--prometheus", "http://a:hunter2@h"],
}


@pytest.mark.parametrize("argv", BAD.values(), ids=BAD.keys())
def test_bad_invocations_exit_3_with_one_line(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WSANALYSIS_JUDGE_TOKEN", raising=False)
    assert main(argv) == 3
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "error" in captured.err or "usage" in captured.out + captured.err
    assert "hunter2" not in captured.out + captured.err
    assert not list(tmp_path.iterdir()), "a failed command left a file behind"


def test_an_exception_inside_a_gate_exits_3_and_writes_no_verdict(tmp_path, capsys, monkeypatch):
    from wsanalysis.canary import evidence

    def broken(*args, **kwargs):
        raise ZeroDivisionError("injected inside the rate gate")

    monkeypatch.setattr(evidence, "rate_evidence", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the log goes
    out = tmp_path / "verdict.json"
    out.write_text('{"verdict": "GO"}')  # a previous run's verdict must not survive a crash
    assert main(["judge", "--data", SAMPLE, "--out", str(out)]) == 3
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "internal error (ZeroDivisionError: injected" in lines[0]
    assert "Traceback" not in err
    log = Path(re.search(r"traceback in (\S+)\)", lines[0]).group(1))
    assert log.parent == tmp_path
    assert "Traceback" in log.read_text() and "injected inside the rate gate" in log.read_text()
    assert not out.exists()

    assert main(["--debug", "judge", "--data", SAMPLE, "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "in broken" in err


def test_an_unwritable_verdict_exits_3_not_the_verdict(tmp_path, capsys):
    assert main(["judge", "--data", SAMPLE, "--profile", "staging", "--out",
                 "/dev/null/v.json"]) == 3  # fmt: skip
    err = capsys.readouterr().err
    assert "cannot write verdict to /dev/null/v.json" in err and "fix:" in err


def test_a_verdict_is_written_whole_and_its_code_returned(tmp_path, capsys):
    out = tmp_path / "deep" / "verdict.json"
    code = main(["judge", "--data", SAMPLE, "--canary-share", "0.1", "--out", str(out)])
    document = json.loads(out.read_text())
    assert code == {"GO": 0, "NO_GO": 1, "INCONCLUSIVE": 2}[document["verdict"]]
    assert [p.name for p in out.parent.iterdir()] == ["verdict.json"]  # no temporary left
    if document["verdict"] == "INCONCLUSIVE":
        assert main(["judge", "--data", SAMPLE, "--canary-share", "0.1", "--out", str(out),
                     "--inconclusive-exit", "1"]) == 1  # fmt: skip


def test_a_closed_stdout_is_the_readers_choice_not_a_failure(tmp_path: Path):
    """`wsanalysis judge ... | head -1`: the reader stops reading before the judge prints;
    the exit code stays the verdict's (1, NO_GO) and nothing is said about a crash."""
    import os
    import subprocess
    import sys

    out = tmp_path / "v.json"
    command = [sys.executable, "-m", "wsanalysis.cli", "judge", "--data",
               str(REPO / "data" / "error_rate_x2"), "--canary-share", "0.1", "--out", str(out)]  # fmt: skip
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first line
    process = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True, timeout=300)
    os.close(write)
    assert process.returncode == 1, process.stderr
    assert "internal error" not in process.stderr and "Exception" not in process.stderr
    assert json.loads(out.read_text())["verdict"] == "NO_GO"
