"""Thundering herd on real sockets, and the RUM beacon sinks."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from refkit import SECRET, make_client, next_of_type, run_async, token_provider
from scipy import stats

from wsanalysis.reference.client import HttpSink, NdjsonSink, ReferenceClient
from wsanalysis.reference.clock import ManualClock, Timebase
from wsanalysis.reference.policy import ClientPolicy
from wsanalysis.reference.server import ChatServer
from wsanalysis.sources.schema import RUM_REQUIRED

N_CLIENTS = 100


#: The hand-driven clock moves in steps this long after the restart (virtual seconds).
STEP = 0.01


@run_async
async def test_thundering_herd_spreads_as_production_jitter_predicts():
    """On a hand-driven clock: time moves in 10 ms steps, and after each step the test
    waits (real time, no budget) until every attempt that came due has opened, so each
    reconnect lands within one step of its schedule whatever the machine's load."""
    clock = ManualClock()
    server = ChatServer(SECRET, timebase=clock, log_event=lambda _: None, ping_interval=None)
    async with server:
        clients = [
            make_client(server, clock, session=f"c{i}", seed=1000 + i) for i in range(N_CLIENTS)
        ]
        await asyncio.gather(*(c.start() for c in clients))
        await asyncio.gather(*(c.wait_status("open", 20) for c in clients))
        restart_at = clock.now()
        await server.restart()
        await asyncio.gather(*(c.wait_status("reconnecting", 20) for c in clients))
        while clock.now() - restart_at < 1.5:
            clock.advance(STEP)
            due = [c for c in clients if c.policy.pending and c.policy.pending.at <= clock.now()]
            await asyncio.gather(*(c.wait_status("open", 20) for c in due))
        await asyncio.gather(*(c.wait_status("open", 20) for c in clients))
        await asyncio.gather(*(c.close() for c in clients))
    backoffs, opened_after = [], []
    for client in clients:
        scheduled = [b for b in client.sink.beacons if b["type"] == "ws.reconnect_scheduled"]
        opens = [b for b in client.sink.beacons if b["type"] == "ws.open"]
        assert len(scheduled) == 1 and len(opens) == 2  # one attempt each, no give-up
        backoffs.append(scheduled[0]["backoff_ms"] / 1000.0)
        opened_after.append(opens[1]["ts"] / 1000.0 - (clock.epoch + restart_at))
    # the schedule: uniform on [0.8, 1.2] s, as base × (0.8 + 0.4·U) predicts
    assert min(backoffs) >= 0.8 and max(backoffs) <= 1.2
    assert stats.kstest(backoffs, stats.uniform(0.8, 0.4).cdf).pvalue > 0.001
    # the wire: reconnects happen in the order and spread of the schedule, not at once
    rho = stats.spearmanr(backoffs, opened_after).statistic
    assert rho > 0.7
    assert min(opened_after) >= 0.8 - 0.002  # nobody came back before the window (ms rounding)
    assert max(opened_after) - min(opened_after) > 0.2  # spread over the window
    lateness = [o - b for o, b in zip(opened_after, backoffs, strict=True)]
    assert all(-0.002 <= x <= STEP + 0.002 for x in lateness)  # within a step of schedule


@run_async
async def test_ndjson_sink_writes_contract_beacons(tmp_path):
    tb = Timebase(50.0)
    path = tmp_path / "rum" / "beacons.ndjson"
    sink = NdjsonSink(path)
    async with ChatServer(SECRET, timebase=tb, log_event=lambda _: None) as server:
        client = ReferenceClient(
            server.url,
            token_provider(tb),
            policy=ClientPolicy(session_id="s-file", variant="canary"),
            timebase=tb,
            sink=sink,
        )
        await client.start()
        await client.wait_status("open", 5)
        await client.send("t", "hello")
        await next_of_type(client, "assistant_message")
        await client.close()
    await sink.aclose()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [b["type"] for b in lines][0] == "ws.open"
    assert {"ws.message", "ws.ttfb", "ws.close", "ws.summary"} <= {b["type"] for b in lines}
    assert all(all(k in b for k in RUM_REQUIRED) and b["variant"] == "canary" for b in lines)


class _Collector(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.received += [json.loads(line) for line in body.decode().splitlines()]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@run_async
async def test_http_sink_posts_batches_and_counts_failures():
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    try:
        sink = HttpSink(f"http://127.0.0.1:{collector.server_port}/rum", batch=2)
        for i in range(5):
            sink.emit({"v": 1, "ts": i, "type": "ws.open", "session_id": "s", "variant": "c"})
        await sink.aclose()
    finally:
        collector.shutdown()
        collector.server_close()
    assert [b["ts"] for b in _Collector.received] == [0, 1, 2, 3, 4]
    assert sink.sent == 5 and sink.failed == 0
    dead = HttpSink(f"http://127.0.0.1:{collector.server_port}/rum", timeout=0.5)
    dead.emit({"v": 1})
    await dead.flush()
    assert dead.failed == 1
