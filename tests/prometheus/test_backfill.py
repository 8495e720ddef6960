"""promtool backfill (what it needs, fixed for it), LocalPrometheus and `wsanalysis prom`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.prometheus.fixtures import REPO, SYNTHETIC_END, SYNTHETIC_START, require_prometheus
from wsanalysis.cli import main
from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources.local_prometheus import (
    LocalPrometheus,
    PrometheusNotInstalled,
    backfill,
    reorder_series,
    tidy_for_promtool,
)
from wsanalysis.sources.openmetrics import read_openmetrics

# Out of time order within series, blank lines, no `# EOF`: promtool 2.42 would fail
# on the last two and silently drop the out-of-order samples.
UNRULY = """\
# TYPE ws_x gauge
ws_x{variant="canary"} 2 1700000015
ws_x{variant="control"} 5 1700000015

# TYPE ws_y gauge
ws_y{variant="canary",code="a b}"} 7 1700000000
# TYPE ws_x gauge
ws_x{variant="canary"} 1 1700000000
ws_x{variant="canary"} 3 1700000030.5
ws_x{variant="control"} 4 1700000000
"""


def test_a_good_file_goes_to_promtool_as_it_is():
    good = b'# TYPE ws_x gauge\nws_x{variant="canary"} 1 1700000000\nws_x 2 1700000015\n# EOF\n'
    assert tidy_for_promtool(good) == (None, 2)
    assert tidy_for_promtool(good.rstrip()) == (None, 2)
    assert reorder_series(good) is None


def test_blank_lines_and_a_missing_eof_are_tidied():
    tidy, samples = tidy_for_promtool(UNRULY.encode())
    assert samples == 6
    lines = tidy.decode().splitlines()
    assert lines[-1] == "# EOF" and "" not in lines and len(lines) == 10
    trailing = b"ws_x 1 1700000000\n# EOF\n\n\n"  # promtool: "unexpected data after # EOF"
    assert tidy_for_promtool(trailing) == (b"ws_x 1 1700000000\n# EOF\n", 1)


def test_series_are_put_in_time_order_with_their_family_comments():
    lines = reorder_series(UNRULY.encode()).decode().splitlines()
    assert lines[-1] == "# EOF" and "" not in lines
    canary = [line for line in lines if line.startswith('ws_x{variant="canary"}')]
    assert [line.split()[-1] for line in canary] == ["1700000000", "1700000015", "1700000030.5"]
    assert lines.index("# TYPE ws_x gauge") < lines.index(canary[0])


def test_unruly_file_backfills_without_losing_samples(tmp_path):
    require_prometheus()
    path = tmp_path / "metrics.om"
    path.write_text(UNRULY)
    result = backfill(path, tmp_path / "tsdb")
    assert result.input_fixed and result.samples == 6
    # the unruly text breaks OpenMetrics' rules (blank line, a family written twice):
    # its samples, as promtool gets them, are the reordered file's (lenient drops only
    # the repeated `# TYPE` line, no sample)
    expected = read_openmetrics(reorder_series(UNRULY.encode()), lenient=True)
    assert expected.height == 6
    with LocalPrometheus(result.tsdb) as prometheus:
        frame = prometheus.source().read_samples('{__name__=~"ws_.*"}', 1700000000, 1700000030.5)
    assert frame.equals(expected)


def test_repeated_timestamps_are_reported(tmp_path):
    require_prometheus()
    path = tmp_path / "metrics.om"
    path.write_text("ws_x 1 1700000000\nws_x 2 1700000000\n# EOF\n")
    with pytest.warns(UserWarning, match="stored 1 of the 2 samples"):
        backfill(path, tmp_path / "tsdb")


def test_a_sample_without_timestamp_is_named(tmp_path):
    require_prometheus()
    path = tmp_path / "metrics.om"
    path.write_text("ws_x 1 1700000000\nws_x 2\n# EOF\n")
    with pytest.raises(DataError, match="line 2: 'ws_x 2' is not a sample with a timestamp"):
        backfill(path, tmp_path / "tsdb")


def test_promtool_errors_are_shown(tmp_path):
    require_prometheus()
    path = tmp_path / "metrics.om"
    path.write_text("# TYPE ws_x counter\n# UNIT ws_x seconds\nws_x_total 1 1700000000\n# EOF\n")
    with pytest.raises(DataError, match="unit not a suffix"):
        backfill(path, tmp_path / "tsdb")


def test_missing_binaries_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrometheusNotInstalled, match="promtool` is not installed") as caught:
        backfill(tmp_path, tmp_path / "tsdb")
    assert "apt-get install -y prometheus" in caught.value.fix
    with pytest.raises(PrometheusNotInstalled, match="prometheus` is not installed"):
        LocalPrometheus(tmp_path).start()


def test_load_refuses_a_non_empty_tsdb_unless_replace(synthetic_dataset, tmp_path, capsys):
    require_prometheus()
    tsdb = tmp_path / "tsdb"
    assert main(["prom", "load", str(synthetic_dataset), "--tsdb", str(tsdb)]) == 0
    out = capsys.readouterr().out
    assert "9,620 samples in 2 block(s), 2024-03-01 00:00:00 → 2024-03-01 02:00:00" in out
    assert main(["prom", "load", str(synthetic_dataset), "--tsdb", str(tsdb)]) == 3
    assert "is not empty" in capsys.readouterr().err
    assert main(["prom", "load", str(synthetic_dataset), "--tsdb", str(tsdb), "--replace"]) == 0
    with pytest.raises(UsageError, match="not empty"):
        backfill(synthetic_dataset, tsdb)


def test_load_names_a_missing_dataset(capsys):
    assert main(["prom", "load", "no/such/dataset", "--tsdb", "/tmp/unused"]) == 3
    assert "no dataset at no/such/dataset" in capsys.readouterr().err


def test_prom_up_serves_the_dataset_until_interrupted(synthetic_dataset):
    require_prometheus()
    command = [sys.executable, "-m", "wsanalysis.cli", "prom", "up", str(synthetic_dataset)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stdout:
            if " is up at " in line:
                url = line.split(" is up at ")[1].strip()
                break
        assert url and url.startswith("http://127.0.0.1:")
        at = (SYNTHETIC_START.timestamp() + SYNTHETIC_END.timestamp()) / 2
        query = f"{url}/api/v1/query?query=count(ws_connections_active)&time={at}"
        with urllib.request.urlopen(query, timeout=10) as response:
            body = json.load(response)
        assert body["data"]["result"][0]["value"][1] == "2"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_prometheus_exit_is_reported(tmp_path):
    require_prometheus()
    (tmp_path / "tsdb").mkdir()
    (tmp_path / "tsdb" / "lock").write_text("")
    with pytest.raises(Exception, match="prometheus exited with code"):
        LocalPrometheus(tmp_path / "tsdb", config_yaml="scrape_configs: [{bad").start()


def test_tsdb_must_exist(tmp_path: Path):
    require_prometheus()
    with pytest.raises(UsageError, match="no TSDB directory"):
        LocalPrometheus(tmp_path / "missing").start()


def test_a_port_in_use_is_named(synthetic_dataset, tmp_path):
    require_prometheus()
    backfill(synthetic_dataset, tmp_path / "tsdb")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is already in use"):
            LocalPrometheus(tmp_path / "tsdb", port=port).start()
