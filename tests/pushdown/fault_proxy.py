"""A fault-injecting HTTP proxy in front of a real Prometheus, on 127.0.0.1.

It forwards every request and, when told to, answers as Thanos or Mimir do under
trouble: `warnings` in a successful answer (a store was down: partial data), or a
per-query limit refusal ("too many samples") for range queries spanning too many steps
or for instant queries whose range selector spans too long (a raw read's chunk); or,
`down`, drops every request unanswered (an outage of the server behind it).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"


@dataclass
class Faults:
    warn_when: str | None = None  # a query containing this text gets a warning
    warning: str = "partial response: store 10.0.3.7:10901 unavailable"
    max_steps: int | None = None  # range queries with more steps are refused (422)
    max_range_ms: int | None = None  # instant queries over a longer `[Nms]` are refused
    down: bool = False  # every request is dropped unanswered, as by a server that is gone
    seen: list[dict[str, str]] = field(default_factory=list)
    refused: int = 0


class FaultProxy:
    def __init__(self, upstream: str, faults: Faults) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = faults
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                proxy.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        faults = self.faults
        faults.seen.append(params)
        if faults.down:
            request.close_connection = True  # no status line: the client sees a dropped connection
            return None
        too_big = False
        if parts.path.endswith("/query_range") and faults.max_steps is not None:
            steps = (float(params["end"]) - float(params["start"])) / float(params["step"]) + 1
            too_big = steps > faults.max_steps
        if parts.path.endswith("/query") and faults.max_range_ms is not None:
            ranges = [int(ms) for ms in re.findall(r"\[(\d+)ms\]", params.get("query", ""))]
            too_big = any(ms > faults.max_range_ms for ms in ranges)
        if too_big:
            faults.refused += 1
            body = {"status": "error", "errorType": "execution", "error": TOO_MANY_SAMPLES}
            return self._send(request, 422, json.dumps(body).encode())
        answer = requests.get(self.upstream + request.path, timeout=30)
        content = answer.content
        query = params.get("query", "")
        if faults.warn_when and faults.warn_when in query and answer.status_code == 200:
            body = answer.json()
            body["warnings"] = [*body.get("warnings", []), faults.warning]
            content = json.dumps(body).encode()
        return self._send(request, answer.status_code, content)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, content: bytes) -> None:
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(content)))
        request.end_headers()
        request.wfile.write(content)
