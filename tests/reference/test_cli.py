"""`wsanalysis serve` and `wsanalysis client` end to end on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from refkit import SECRET

from wsanalysis.cli import main

# `wsanalysis serve` through its register/run contract, without importing every other
# subcommand (some import notebook machinery, which costs seconds per process).
SERVE_ONLY = (
    "import argparse, sys; from wsanalysis.commands import serve; "
    "parser = argparse.ArgumentParser(prog='wsanalysis'); "
    "serve.register(parser.add_subparsers()); "
    "sys.exit(serve.run(parser.parse_args(sys.argv[1:])))"
)


@pytest.fixture(scope="module")
def served():
    env = dict(os.environ, WSANALYSIS_SECRET=SECRET, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_ONLY, "serve", "--port", "0", "--demo-token", "bob"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        token_line = proc.stdout.readline()
        match = re.search(r"(ws://\S+)", first)
        assert match, first + proc.stderr.read()
        yield match.group(1), token_line.split(": ", 1)[1].strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert '"event":"disconnect"' in err  # structured logs went to stderr


def test_client_command_talks_to_the_serve_command(served, tmp_path, monkeypatch, capsys):
    url, _ = served
    monkeypatch.setenv("WSANALYSIS_SECRET", SECRET)
    rum = tmp_path / "rum.ndjson"
    code = main(
        ["client", url, "-n", "3", "--duration", "1.5", "--message-every", "0.3",
         "--rum", str(rum), "--report-every", "0.5", "--variant", "canary"]
    )  # fmt: skip
    assert code == 0
    beacons = [json.loads(line) for line in rum.read_text().splitlines()]
    assert {b["session_id"] for b in beacons} == {"0-0", "0-1", "0-2"}
    assert sum(b["type"] == "ws.message" for b in beacons) >= 3
    assert all(b["variant"] == "canary" for b in beacons)
    assert sum(b["type"] == "ws.summary" for b in beacons) == 3
    err = capsys.readouterr().err
    assert "open=3" in err and "replies=" in err
    metrics_url = url.replace("ws://", "http://").replace("/ws", "/metrics")
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    assert "ws_connections_total" in text and "ws_closes_total" in text


def test_client_with_static_token_env(served, monkeypatch):
    url, token = served
    monkeypatch.delenv("WSANALYSIS_SECRET", raising=False)
    monkeypatch.setenv("WSANALYSIS_TOKEN", token)
    assert main(["client", url, "--duration", "0.5", "--quiet"]) == 0
    monkeypatch.setenv("WSANALYSIS_TOKEN", "not-a-token")
    assert main(["client", url, "--duration", "0.5", "--quiet"]) == 1  # 4401: gave up


def test_usage_errors_exit_3(monkeypatch, capsys):
    monkeypatch.delenv("WSANALYSIS_SECRET", raising=False)
    monkeypatch.delenv("WSANALYSIS_TOKEN", raising=False)
    assert main(["serve", "--port", "0"]) == 3
    assert "WSANALYSIS_SECRET" in capsys.readouterr().err
    assert main(["client", "ws://127.0.0.1:1/ws"]) == 3
    assert main(["client", "http://x"]) == 3


def test_client_posts_beacons_to_a_collector(served, monkeypatch):
    received: list[dict] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.extend(json.loads(line) for line in body.splitlines())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    url, _ = served
    monkeypatch.setenv("WSANALYSIS_SECRET", SECRET)
    try:
        endpoint = f"http://127.0.0.1:{collector.server_port}/rum"
        assert main(["client", url, "--duration", "0.5", "--collector", endpoint, "--quiet"]) == 0
    finally:
        collector.shutdown()
        collector.server_close()
    assert [b["type"] for b in received][0] == "ws.open"
    assert received[-1]["type"] == "ws.summary"
