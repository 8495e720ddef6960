"""Server behaviour and its Prometheus telemetry, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest
from refkit import (
    SECRET,
    make_client,
    metric_value,
    next_of_type,
    run_async,
    scrape,
    until,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsanalysis.reference.clock import ManualClock, Timebase
from wsanalysis.reference.server import ChatServer, Faults, ServerMetrics
from wsanalysis.reference.tokens import issue_token


def new_server(timebase, **kwargs) -> ChatServer:
    logs: list[dict] = []
    server = ChatServer(
        SECRET, timebase=timebase, log_event=logs.append, ping_interval=None, **kwargs
    )
    server.logs = logs  # type: ignore[attr-defined]
    return server


def authed(server: ChatServer, user: str = "alice") -> str:
    return f"{server.url}?token={issue_token(SECRET, user, server.time.epoch_now(), 600)}"


async def closed_with(ws) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code, ws.close_reason


@run_async
async def test_unauthenticated_socket_is_accepted_then_closed_4401():
    async with new_server(Timebase()) as server:
        async with connect(server.url) as ws:  # the handshake itself succeeds
            code, reason = await closed_with(ws)
        async with connect(server.url + "?token=forged.token.value") as ws:
            await closed_with(ws)
        _, text = await scrape(server)
    assert (code, reason) == (4401, "missing")
    assert metric_value(text, "ws_closes_total", code="4401", reason="unauthenticated") == 2
    assert metric_value(text, "ws_connections_total") == 2


@run_async
async def test_internal_error_fault_sends_error_then_closes_1011():
    async with new_server(Timebase(), faults=Faults(internal_error_p=1.0)) as server:
        async with connect(authed(server)) as ws:
            await ws.send(json.dumps({"type": "user_message", "thread_id": "t", "trace": "x"}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            code, _ = await closed_with(ws)
        _, text = await scrape(server)
    assert error["type"] == "error" and error["code"] == "internal"
    assert code == 1011
    assert metric_value(text, "ws_closes_total", code="1011", reason="internal_error") == 1
    assert metric_value(text, "ws_frames_sent_total", event="error") == 1


@run_async
async def test_active_gauge_rises_on_connect_and_falls_on_disconnect():
    async with new_server(Timebase()) as server:
        _, before = await scrape(server)
        ws = await connect(authed(server))
        await ws.send(json.dumps({"type": "user_message", "thread_id": "t", "trace": "x"}))
        await asyncio.wait_for(ws.recv(), 5)  # typing: the server has registered us
        _, during = await scrape(server)
        await ws.close()
        await until(lambda: server.connection_count == 0)
        _, after = await scrape(server)
    assert metric_value(before, "ws_connections_active") == 0
    assert metric_value(during, "ws_connections_active") == 1
    assert metric_value(after, "ws_connections_active") == 0
    assert metric_value(after, "ws_closes_total", code="1000", reason="client") == 1


@run_async
async def test_connection_held_60s_is_observed_as_60s():
    clock = ManualClock()
    async with new_server(clock) as server:
        ws = await connect(authed(server))
        await ws.send(json.dumps({"type": "user_message", "thread_id": "t", "trace": "x"}))
        await asyncio.wait_for(ws.recv(), 5)
        clock.advance(60.0)
        await ws.close()
        await until(lambda: server.connection_count == 0)
        _, text = await scrape(server)
    total = metric_value(text, "ws_connection_duration_seconds_sum")
    assert total == pytest.approx(60.0, abs=0.5)  # the reply task's sleep advanced ≤ 0.2 s
    assert metric_value(text, "ws_connection_duration_seconds_bucket", le="30.0") == 0
    assert (
        metric_value(text, "ws_connection_duration_seconds_bucket", le="60.0")
        + metric_value(text, "ws_connection_duration_seconds_bucket", le="120.0")
        >= 1
    )
    disconnect = [e for e in server.logs if e["event"] == "disconnect"][0]
    assert disconnect["duration_s"] == pytest.approx(60.0, abs=0.5)
    assert disconnect["user"] == "alice" and disconnect["thread_ids"] == ["t"]


@run_async
async def test_policy_close_codes_binary_oversized_origin():
    async with new_server(Timebase(), max_message_bytes=1024) as server:
        async with connect(authed(server)) as ws:
            await ws.send(b"\x00\x01")
            binary = (await closed_with(ws))[0]
        async with connect(authed(server)) as ws:
            await ws.send("x" * 2000)
            oversized = (await closed_with(ws))[0]
        async with connect(authed(server)) as ws:
            await ws.send("{not json")
            bad = json.loads(await asyncio.wait_for(ws.recv(), 5))
    async with new_server(Timebase(), allowed_origins=["https://chat.example"]) as server:
        async with connect(authed(server), origin="https://evil.example") as ws:
            origin = (await closed_with(ws))[0]
        async with connect(authed(server), origin="https://chat.example") as ws:
            await ws.send(json.dumps({"type": "user_message", "thread_id": "t", "trace": "x"}))
            allowed = json.loads(await asyncio.wait_for(ws.recv(), 5))["type"]
    assert (binary, oversized, origin) == (1003, 1008, 1008)
    assert bad["type"] == "error" and bad["code"] == "bad_json"
    assert allowed == "typing"


@run_async
async def test_restart_advises_then_closes_1012_and_refuses_during_downtime():
    tb = Timebase(50.0)
    async with new_server(tb) as server:
        async with connect(authed(server)) as ws:
            await ws.send(json.dumps({"type": "user_message", "thread_id": "t", "trace": "x"}))
            await asyncio.wait_for(ws.recv(), 5)
            await server.restart(downtime=10.0)
            frames = []
            with pytest.raises(ConnectionClosed):
                while True:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            code = ws.close_code
        with pytest.raises(InvalidStatus) as refused:
            await connect(authed(server))
        _, text = await scrape(server)
    advice = [f for f in frames if f["type"] == "reconnect_advice"]
    assert advice and advice[0]["why"] == "restart" and code == 1012
    assert refused.value.response.status_code == 503
    assert metric_value(text, "ws_reconnect_advice_total", why="restart") == 1


@run_async
async def test_healthz_metrics_and_admin_switches():
    async with new_server(Timebase(), admin_key="k3y") as server:
        health = await scrape(server, "/healthz")
        forbidden = await scrape(server, "/admin/faults?internal_error_p=1")
        updated = await scrape(server, "/admin/faults?key=k3y&internal_error_p=0.25&reply_parts=3")
        bad = await scrape(server, "/admin/faults?key=k3y&bogus=1")
        bad_number = await scrape(server, "/admin/drop?key=k3y&fraction=lots")
        await scrape(server, "/admin/drain?key=k3y")
        draining = await scrape(server, "/healthz")
    assert health == (200, "ok\n")
    assert forbidden[0] == 403
    assert updated[0] == 200 and json.loads(updated[1])["internal_error_p"] == 0.25
    assert server.faults.reply_parts == 3
    assert bad[0] == 400 and "unknown fault" in bad[1]
    assert bad_number[0] == 400
    assert draining[0] == 503


@run_async
async def test_ttfb_is_observed_and_duplicates_are_dropped_by_the_client():
    """On a hand-driven clock the reply's 2 s wait is the only thing that moves time, so
    the observed TTFB is exactly 2 s, on the server and in the client's beacon."""
    clock = ManualClock()
    faults = Faults(ttfb_median=2.0, duplicate_p=1.0)
    async with new_server(clock, faults=faults) as server:
        client = make_client(server, clock)
        await client.start()
        await client.wait_status("open", 5)
        await client.send("t", "hi")
        await next_of_type(client, "assistant_message")
        await until(lambda: client.policy.counters.dedup_drops > 0)  # follows on the wire
        _, text = await scrape(server)
        await client.close()
    assert metric_value(text, "ws_assistant_ttfb_seconds_count") == 1
    assert metric_value(text, "ws_assistant_ttfb_seconds_sum") == 2.0
    (beacon,) = [b for b in client.sink.beacons if b["type"] == "ws.ttfb"]
    assert beacon["ttfb_ms"] == 2000.0
    assert metric_value(text, "ws_frames_sent_total", event="assistant_message") == 2
    assert client.policy.counters.dedup_drops == 1 and client.policy.counters.delivered == 1


def test_metrics_accounting_has_no_variant_label_and_takes_time_in():
    metrics = ServerMetrics()
    metrics.opened(100.0, "a")
    metrics.opened(100.0, "b")
    assert metrics.closed(3700.0, "a", 1012, "restart") == 3600.0
    text = metrics.render().decode()
    assert "variant" not in text
    assert metric_value(text, "ws_connections_active") == 1
    assert metric_value(text, "ws_connection_duration_seconds_bucket", le="3600.0") == 1
    assert metric_value(text, "ws_connection_duration_seconds_bucket", le="1800.0") == 0
    assert metric_value(text, "ws_connection_duration_seconds_bucket", le="43200.0") == 1
    assert metrics.closed(5.0, "unknown", 1006, "abnormal") is None


@run_async
async def test_replies_arrive_in_seq_order_without_gaps_and_resume_replays_the_rest():
    async with new_server(Timebase(), faults=Faults(ttfb_median=0.0, reply_parts=3)) as server:
        async with connect(authed(server)) as ws:
            for i in range(10):
                await ws.send(
                    json.dumps({"type": "user_message", "thread_id": "t", "trace": f"m{i}"})
                )
            seqs = []
            while len(seqs) < 30:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame["type"] == "assistant_message":
                    seqs.append(frame["seq"])
        async with connect(authed(server)) as ws:  # a new socket resumes from seq 12
            await ws.send(json.dumps({"type": "resume", "threads": {"t": 12}}))
            replayed = [json.loads(await asyncio.wait_for(ws.recv(), 5))["seq"] for _ in range(18)]
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)  # and nothing more
        async with connect(authed(server, user="mallory")) as ws:  # threads are per user
            await ws.send(json.dumps({"type": "resume", "threads": {"t": 0}}))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
    assert seqs == list(range(1, 31))
    assert replayed == list(range(13, 31))
