"""The production checklist on real sockets (127.0.0.1) with scaled time."""

from __future__ import annotations

import asyncio

import pytest
from refkit import (
    SECRET,
    beacon_types,
    make_client,
    next_of_type,
    run_async,
    token_provider,
    until,
)

from wsanalysis.reference.client import ClientGaveUp
from wsanalysis.reference.clock import ManualClock, Timebase
from wsanalysis.reference.server import ChatServer, Faults
from wsanalysis.reference.tokens import issue_token, validate_token

SCALE = 50.0  # 1 s of policy time = 20 ms real


def new_server(timebase: Timebase, **kwargs) -> ChatServer:
    logs: list[dict] = []
    server = ChatServer(
        SECRET, timebase=timebase, log_event=logs.append, ping_interval=None, **kwargs
    )
    server.logs = logs  # type: ignore[attr-defined]
    return server


@run_async
async def test_token_refreshed_before_every_attempt_and_fresh_token_on_the_wire():
    tb = Timebase(SCALE)
    async with new_server(tb) as server:
        calls = []

        async def provide() -> str:
            calls.append(len(calls) + 1)
            return issue_token(SECRET, f"user-{len(calls)}", tb.epoch_now(), 3600)

        client = make_client(server, tb, provider=provide, jitter="none")
        await client.start()
        await client.wait_status("open", 5)
        for _ in range(2):
            server.drop()
            await client.wait_status("reconnecting", 5)
            await client.wait_status("open", 5)
        await client.close()
    connects = [e["user"] for e in server.logs if e["event"] == "connect"]
    assert connects == ["user-1", "user-2", "user-3"]
    assert calls == [1, 2, 3]
    assert [validate_token(t, SECRET, tb.epoch_now()).user for t in client.tokens_used] == connects


@run_async
async def test_unauthenticated_gets_4401_no_retry_and_the_error_is_surfaced():
    tb = Timebase(SCALE)
    async with new_server(tb) as server:

        async def expired() -> str:
            return issue_token(SECRET, "alice", tb.epoch_now() - 7200, ttl=60)

        client = make_client(server, tb, provider=expired)
        await client.start()
        give_up = await client.wait_given_up(5)
        assert give_up.code == 4401 and "authentication failed" in give_up.error
        await asyncio.sleep(tb.real(5.0))  # no retry follows
        with pytest.raises(ClientGaveUp, match="4401"):
            await client.send("t1", "hello")
        await client.close()
    assert [e["event"] for e in server.logs] == ["connect", "disconnect"]
    assert server.logs[1]["code"] == 4401 and server.logs[1]["reason"] == "unauthenticated"
    assert "ws.reconnect_scheduled" not in beacon_types(client)
    assert "ws.give_up" in beacon_types(client)


@pytest.mark.parametrize("fault", ["drain", "drop"])
@run_async
async def test_1013_and_1006_schedule_a_retry_with_backoff(fault):
    tb = Timebase(SCALE)
    async with new_server(tb, advice_after={"drain": 3.0}) as server:
        client = make_client(server, tb, jitter="none")
        await client.start()
        await client.wait_status("open", 5)
        if fault == "drain":
            await server.drain()
            server.undrain()
        else:
            server.drop()
        await client.wait_status("reconnecting", 5)
        await client.wait_status("open", 5)
        await client.close()
    scheduled = [b for b in client.sink.beacons if b["type"] == "ws.reconnect_scheduled"][0]
    expected_code, expected_backoff = (1013, 3000.0) if fault == "drain" else (1006, 1000.0)
    assert scheduled["code"] == expected_code
    assert scheduled["backoff_ms"] == pytest.approx(expected_backoff)
    closes = [b["code"] for b in client.sink.beacons if b["type"] == "ws.close"]
    assert closes[0] == expected_code


@run_async
async def test_offline_disconnects_and_online_reconnects_at_once():
    """On a hand-driven clock: a timer fires only when the test moves time past it, so
    "at once" is exact (a backoff of any length would leave the client waiting)."""
    clock = ManualClock()
    async with new_server(clock) as server:
        client = make_client(server, clock)
        await client.start()
        await client.wait_status("open", 5)
        client.set_online(False)
        await client.wait_status("disconnected", 5)
        for _ in range(30):  # 30 virtual seconds: timers are off, nothing reconnects
            clock.advance(1.0)
            await asyncio.sleep(0)
        assert client.status == "disconnected"
        assert len([e for e in server.logs if e["event"] == "connect"]) == 1
        went_online = clock.now()
        client.set_online(True)
        await client.wait_status("open", 5)  # real seconds: only a guard against a hang
        reconnect_took = clock.now() - went_online
        await client.close()
    assert reconnect_took == 0.0  # virtual seconds: no backoff after `online`
    types = beacon_types(client)
    assert "ws.offline" in types and "ws.online" in types
    assert "ws.reconnect_scheduled" not in types


@run_async
async def test_shutdown_leaves_no_timers_tasks_or_sockets():
    tb = Timebase(SCALE)
    baseline = asyncio.all_tasks()  # the test itself and its timeout wrapper
    async with new_server(tb) as server:
        client = make_client(server, tb)
        await client.start()
        await client.wait_status("open", 5)
        await client.send("t1", "hello")
        server.drop()
        await client.wait_status("reconnecting", 5)  # a backoff timer is pending
        await client.close()
        client_tasks = [
            t for t in asyncio.all_tasks() if "ReferenceClient" in t.get_coro().__qualname__
        ]
        assert client_tasks == []
        assert client._socket_tasks == {} and client._sockets == {}
        assert client.policy.next_deadline() is None
        assert await until(lambda: server.connection_count == 0)
    assert asyncio.all_tasks() == baseline
    assert client.sink.beacons[-1]["type"] == "ws.summary"


@run_async
async def test_mid_message_reconnection_delivers_the_reply_exactly_once():
    tb = Timebase(SCALE)
    async with new_server(tb, faults=Faults(ttfb_median=3.0)) as server:
        client = make_client(server, tb, jitter="none")
        await client.start()
        await client.wait_status("open", 5)
        trace = await client.send("t1", "question")
        await next_of_type(client, "typing")
        server.drop()  # between the user message and the reply
        reply = await next_of_type(client, "assistant_message")
        await asyncio.sleep(tb.real(5.0))
        await client.close()
    assert reply.in_reply_to == trace and reply.seq == 1
    assert client.inbox.empty()
    assert client.policy.counters.delivered == 1
    assert client.policy.counters.dedup_drops == 0
    assert client.policy.metrics.connections == 2  # it did arrive on the second socket


@run_async
async def test_network_toggle_reconnects_within_16s_without_duplicates():
    tb = Timebase(SCALE)
    faults = Faults(ttfb_median=0.5, ttfb_sigma=0.5, duplicate_p=0.8, reply_parts=2)
    async with new_server(tb, faults=faults) as server:
        client = make_client(server, tb)
        await client.start()
        await client.wait_status("open", 5)
        traces, gaps = [], []
        for i in range(4):
            traces.append(await client.send(f"t{i % 2}", f"m{i}"))
            await asyncio.sleep(tb.real(0.2))
            client.set_online(False)
            await client.wait_status("disconnected", 5)
            await asyncio.sleep(tb.real(2.0))
            back = tb.now()
            client.set_online(True)
            await client.wait_status("open", 5)
            gaps.append(tb.now() - back)
        await asyncio.sleep(tb.real(4.0))
        await client.close()
    frames = []
    while not client.inbox.empty():
        frame = client.inbox.get_nowait()
        if frame.type == "assistant_message":
            frames.append(frame)
    keys = [(f.thread_id, f.trace) for f in frames]
    assert len(keys) == len(set(keys)) == 2 * len(traces)  # every part, once
    assert {f.in_reply_to for f in frames} == set(traces)
    assert max(gaps) <= 16.0
    assert client.policy.counters.dedup_drops >= 1  # the duplicate fault did fire


@run_async
async def test_auth_expiry_ends_in_4401_and_a_user_facing_error():
    tb = Timebase(SCALE)
    async with new_server(tb) as server:
        issued = issue_token(SECRET, "alice", tb.epoch_now(), ttl=20)

        async def stale_refresh() -> str:  # the refresh endpoint keeps returning the old token
            return issued

        client = make_client(server, tb, provider=stale_refresh)
        await client.start()
        await client.wait_status("open", 5)
        await asyncio.sleep(tb.real(25.0))
        await server.restart()
        give_up = await client.wait_given_up(5)
        await client.close()
    assert give_up.code == 4401
    assert give_up.error.startswith("authentication failed")
    codes = [b["code"] for b in client.sink.beacons if b["type"] == "ws.close"]
    assert codes == [1012, 4401]


@run_async
async def test_token_skew_fault_and_header_token():
    tb = Timebase(SCALE)
    async with new_server(tb) as server:
        client = make_client(server, tb, provider=token_provider(tb, ttl=600))
        client.token_in = "header"
        await client.start()
        await client.wait_status("open", 5)
        server.faults.update(token_skew=3600)  # the server's clock jumps an hour ahead
        server.drop()
        give_up = await client.wait_given_up(5)
        await client.close()
    assert give_up.code == 4401
    assert [e["code"] for e in server.logs if e["event"] == "disconnect"] == [1006, 4401]
