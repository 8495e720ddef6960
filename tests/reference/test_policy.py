"""The sans-I/O client policy, driven by hand with a virtual clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsanalysis.reference.policy import (
    JITTER_STRATEGIES,
    TRANSITIONS,
    Backoff,
    Cancel,
    ClientMetrics,
    ClientPolicy,
    CloseSocket,
    Connect,
    Deliver,
    Drop,
    Emit,
    GiveUp,
    PolicyError,
    SendResume,
    State,
)
from wsanalysis.reference.protocol import AssistantMessage, ReconnectAdvice, Typing
from wsanalysis.sources.schema import RUM_REQUIRED, RUM_TYPES


def only(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def beacons(actions):
    return [a.beacon for a in actions if isinstance(a, Emit)]


def reply(thread="t1", seq=1, trace="m1", meta="m1.a1"):
    return AssistantMessage(thread_id=thread, seq=seq, in_reply_to=trace, trace=meta, text="hi")


def open_policy(**kwargs) -> tuple[ClientPolicy, str]:
    policy = ClientPolicy(session_id="s", rng=random.Random(7), **kwargs)
    (connect,) = only(policy.start(0.0), Connect)
    policy.opened(0.1, connect.socket_id)
    return policy, connect.socket_id


def test_start_connects_at_once_and_open_emits_beacon():
    policy = ClientPolicy(session_id="s", variant="canary", user="alice")
    (connect,) = only(policy.start(5.0), Connect)
    assert connect.at == 5.0 and connect.attempt == 0
    (beacon,) = beacons(policy.opened(5.2, connect.socket_id))
    assert beacon["type"] == "ws.open" and beacon["variant"] == "canary"
    assert beacon["user"] != "alice" and len(beacon["user"]) == 16  # hashed
    assert policy.status == "open"


@pytest.mark.parametrize("code", [1006, 1012, 1013, 1011, 1001])
def test_retryable_codes_schedule_backoff(code):
    policy, sid = open_policy(jitter="none")
    actions = policy.closed(3.0, sid, code)
    (connect,) = only(actions, Connect)
    assert connect.at == pytest.approx(4.0) and connect.attempt == 1
    scheduled = [b for b in beacons(actions) if b["type"] == "ws.reconnect_scheduled"]
    assert scheduled[0]["backoff_ms"] == pytest.approx(1000.0)
    assert scheduled[0]["code"] == code
    assert policy.status == "reconnecting"


@pytest.mark.parametrize("code", [4401, 1008, 1003])
def test_terminal_codes_give_up_without_retry(code):
    policy, sid = open_policy()
    actions = policy.closed(3.0, sid, code)
    assert not only(actions, Connect)
    (give_up,) = only(actions, GiveUp)
    assert give_up.code == code and str(code) in give_up.error
    assert policy.status == "failed" and policy.error is give_up
    assert "ws.give_up" in [b["type"] for b in beacons(actions)]
    assert policy.online(4.0) == []  # a terminal failure is not undone by the network


def test_backoff_sequence_is_capped_and_gives_up_after_ten_attempts():
    policy = ClientPolicy(session_id="s", jitter="none")
    (connect,) = only(policy.start(0.0), Connect)
    now, delays = 0.0, []
    for _ in range(10):
        now = connect.at
        (connect,) = only(policy.closed(now, connect.socket_id, 1006), Connect)
        delays.append(connect.at - now)
    assert delays == [1, 2, 4, 8, 16, 16, 16, 16, 16, 16]
    actions = policy.closed(connect.at, connect.socket_id, 1006)
    (give_up,) = only(actions, GiveUp)
    assert give_up.attempts == 10 and "10 attempts" in give_up.error
    assert not only(actions, Connect)


def test_backoff_resets_only_after_a_stable_connection():
    policy = ClientPolicy(session_id="s", jitter="none", stable_after=10.0)
    (c,) = only(policy.start(0.0), Connect)
    (c,) = only(policy.closed(0.0, c.socket_id, 1006), Connect)  # attempt 1
    policy.opened(c.at, c.socket_id)
    (c2,) = only(policy.closed(c.at + 0.5, c.socket_id, 1013), Connect)  # flapping
    assert c2.attempt == 2 and c2.backoff == 2.0
    policy.opened(c2.at, c2.socket_id)
    (c3,) = only(policy.closed(c2.at + 60.0, c2.socket_id, 1012), Connect)  # stable
    assert c3.attempt == 1 and c3.backoff == 1.0


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), attempt=st.integers(1, 12))
def test_production_jitter_stays_within_twenty_percent(seed, attempt):
    backoff = Backoff("production", rng=random.Random(seed))
    base = backoff.base_delay(attempt)
    for _ in range(20):
        delay = backoff.delay(attempt)
        assert 0.8 * base <= delay <= 1.2 * base


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), strategy=st.sampled_from(JITTER_STRATEGIES))
def test_every_strategy_stays_within_its_bounds(seed, strategy):
    backoff = Backoff(strategy, rng=random.Random(seed))
    for attempt in range(1, 12):
        base = backoff.base_delay(attempt)
        delay = backoff.delay(attempt)
        low, high = {
            "production": (0.8 * base, 1.2 * base),
            "full": (0.0, base),
            "equal": (base / 2, base),
            "decorrelated": (1.0, 16.0),
            "none": (base, base),
        }[strategy]
        assert low <= delay <= high


def test_production_jitter_is_spread_not_constant():
    backoff = Backoff("production", rng=random.Random(1))
    delays = [backoff.delay(1) for _ in range(2000)]
    assert min(delays) < 0.82 and max(delays) > 1.18
    assert sum(delays) / len(delays) == pytest.approx(1.0, abs=0.02)


def test_unknown_jitter_is_refused():
    with pytest.raises(ValueError, match="jitter must be one of"):
        Backoff("bogus")


def test_offline_disconnects_and_cancels_then_online_reconnects_at_once():
    policy, sid = open_policy()
    (c,) = only(policy.closed(1.0, sid, 1006), Connect)
    actions = policy.offline(1.5)
    assert policy.status == "disconnected"
    assert only(actions, Cancel)
    assert policy.tick(100.0) and not only(policy.tick(200.0), Connect)
    assert policy.closed(c.at, c.socket_id, 1006)[0] == Drop("stale_socket", c.socket_id)
    actions = policy.online(300.0)
    (connect,) = only(actions, Connect)
    assert connect.at == 300.0 and connect.attempt == 0
    assert policy.attempts == 0


def test_offline_while_open_closes_the_socket_and_records_the_close():
    policy, sid = open_policy()
    actions = policy.offline(20.0)
    assert CloseSocket(sid, 1000, "offline") in actions
    close = [b for b in beacons(actions) if b["type"] == "ws.close"][0]
    assert close["code"] == 1006 and close["duration_ms"] == pytest.approx(19_900.0)
    assert policy.metrics.close_codes[1006] == 1


def test_events_from_a_stale_socket_are_dropped_and_counted():
    policy, sid = open_policy()
    (c,) = only(policy.closed(1.0, sid, 1006), Connect)
    actions = policy.message(1.1, sid, reply())
    assert actions[0] == Drop("stale_socket", sid)
    assert not only(actions, Deliver)
    policy.opened(c.at, c.socket_id)
    assert only(policy.opened(c.at, sid), CloseSocket)  # a late open of an old socket
    assert policy.counters.stale_drops == 2
    assert policy.summary_beacon(3.0)["stale_drops"] == 2


def test_same_dedup_key_twice_second_is_dropped():
    policy, sid = open_policy()
    first = policy.message(1.0, sid, reply())
    second = policy.message(1.1, sid, reply())
    assert only(first, Deliver) and not only(second, Deliver)
    (drop,) = only(second, Drop)
    assert drop.reason == "duplicate" and drop.key == "t1:m1.a1"
    assert policy.counters.dedup_drops == 1
    assert [b["type"] for b in beacons(second)] == ["ws.dedup_drop"]


def test_dedup_falls_back_to_in_reply_to_and_forgets_after_200_keys():
    policy, sid = open_policy()
    policy.message(1.0, sid, reply(meta="", trace="x"))
    for i in range(200):
        policy.message(1.0, sid, reply(trace=f"m{i}", meta=f"k{i}"))
    # "t1:x" was evicted by 200 newer keys, so it is delivered again
    assert only(policy.message(2.0, sid, reply(meta="", trace="x")), Deliver)
    assert only(policy.message(2.0, sid, reply(trace="m199", meta="k199")), Drop)


def test_resume_after_reconnect_carries_the_last_seq_per_thread():
    policy, sid = open_policy()
    policy.sent(0.5, "t2", "q2")  # a thread with no reply yet resumes from 0
    policy.message(1.0, sid, reply(thread="t1", seq=3, meta="a"))
    policy.message(1.0, sid, reply(thread="t1", seq=2, meta="b"))
    (c,) = only(policy.closed(2.0, sid, 1006), Connect)
    (resume,) = only(policy.opened(c.at, c.socket_id), SendResume)
    assert resume == SendResume(c.socket_id, {"t1": 3, "t2": 0})


def test_ttfb_beacon_from_send_to_first_reply():
    policy, sid = open_policy()
    policy.sent(10.0, "t1", "m1")
    types = {b["type"]: b for b in beacons(policy.message(10.75, sid, reply()))}
    assert types["ws.ttfb"]["ttfb_ms"] == pytest.approx(750.0)
    assert types["ws.message"]["thread_id"] == "t1"


def test_reconnect_advice_raises_the_next_delay():
    policy, sid = open_policy(jitter="none")
    policy.message(1.0, sid, ReconnectAdvice("drain", 5000))
    (c,) = only(policy.closed(1.0, sid, 1013), Connect)
    assert c.backoff == 5.0
    policy.opened(c.at, c.socket_id)
    (c2,) = only(policy.closed(c.at + 1, c.socket_id, 1013), Connect)
    assert c2.backoff == 2.0  # advice applies to one attempt only


def test_non_reply_frames_are_delivered_untouched():
    policy, sid = open_policy()
    frame = Typing("t1", "m1")
    assert policy.message(1.0, sid, frame) == [Deliver(frame)]


def test_shutdown_cancels_and_later_events_are_stale():
    policy, sid = open_policy()
    policy.closed(1.0, sid, 1006)
    actions = policy.shutdown(1.2)
    assert only(actions, Cancel) and policy.status == "closed"
    assert beacons(actions)[-1]["type"] == "ws.summary"
    assert policy.next_deadline() is None
    assert policy.tick(1000.0) == []
    assert policy.online(1000.0) == []  # the browser still fires it: ignored
    assert only(policy.closed(1000.0, sid, 1006), Drop)  # a socket's late event: stale


def test_an_event_the_state_does_not_allow_raises():
    policy, _ = open_policy()
    with pytest.raises(PolicyError, match="start is not allowed when the client is open"):
        policy.start(2.0)
    policy.shutdown(3.0)
    for event in (policy.shutdown, policy.start):
        with pytest.raises(PolicyError, match="when the client is closed"):
            event(4.0)
    with pytest.raises(PolicyError, match="sent is not allowed"):
        policy.sent(4.0, "t1", "m1")


def test_the_transition_table_names_every_state_and_what_each_event_may_lead_to():
    assert set(TRANSITIONS) == set(State)
    for state, row in TRANSITIONS.items():
        for event in ("opened", "closed", "message", "advice"):  # stale: state stays
            assert state in row[event]
        assert ("start" in row) == (state is State.IDLE)
    assert TRANSITIONS[State.OPEN]["closed"] == {State.OPEN, State.RECONNECTING, State.FAILED}
    policy, sid = open_policy()
    assert policy.status == State.OPEN == "open"
    policy.closed(1.0, sid, 4401)
    assert policy.state is State.FAILED
    assert policy.summary_beacon(2.0)["status"] == "failed"


def test_summary_is_periodic_and_carries_the_tracker():
    policy, sid = open_policy(jitter="none", summary_every=60.0)
    assert policy.tick(59.0) == []
    (c,) = only(policy.closed(30.1, sid, 1012), Connect)
    policy.opened(c.at, c.socket_id)
    (beacon,) = beacons(policy.tick(61.0))
    assert beacon["type"] == "ws.summary"
    assert beacon["close_codes"] == {"1012": 1}
    assert beacon["avg_backoff_ms"] == pytest.approx(1000.0)
    assert beacon["avg_duration_ms"] == pytest.approx(30_000.0)
    assert beacon["current_duration_ms"] == pytest.approx((61.0 - c.at) * 1000)
    assert policy.tick(62.0) == []


def test_every_beacon_satisfies_the_rum_contract():
    policy, sid = open_policy(epoch=1_700_000_000.0)
    produced = []
    produced += beacons(policy.message(1.0, sid, reply()))
    produced += beacons(policy.message(1.0, sid, reply()))
    produced += beacons(policy.closed(2.0, sid, 1006))
    produced += beacons(policy.offline(2.5)) + beacons(policy.online(3.0))
    produced += beacons(policy.shutdown(4.0))
    assert {b["type"] for b in produced} <= set(RUM_TYPES)
    for beacon in produced:
        assert all(field in beacon for field in RUM_REQUIRED)
        assert beacon["v"] == 1 and beacon["ts"] >= 1_700_000_000_000


def test_metrics_tracker_p95_and_average():
    metrics = ClientMetrics()
    for i in range(1, 101):
        metrics.opened(0.0)
        metrics.closed(float(i), 1006)
    assert metrics.average_duration == pytest.approx(50.5)
    assert metrics.p95_duration == 95.0
    assert metrics.current_duration(5.0) is None
    metrics.opened(10.0)
    assert metrics.current_duration(12.5) == 2.5


def restart_herd(strategy: str, n: int = 1000) -> list[float]:
    """Reconnect times of n stable clients after a 1012 at t=0 (virtual clock)."""
    times = []
    for i in range(n):
        policy = ClientPolicy(session_id=f"c{i}", jitter=strategy, rng=random.Random(i))
        (c,) = only(policy.start(-600.0), Connect)
        policy.opened(-600.0, c.socket_id)
        (c,) = only(policy.closed(0.0, c.socket_id, 1012), Connect)
        times.append(c.at)
    return times


def peak_per_second(times: list[float], width: float = 0.1) -> float:
    bins: dict[int, int] = {}
    for t in times:
        bins[int(t // width)] = bins.get(int(t // width), 0) + 1
    return max(bins.values()) / width


def test_herd_after_restart_spreads_as_each_jitter_predicts():
    n = 1000
    production = restart_herd("production", n)
    assert min(production) >= 0.8 and max(production) <= 1.2
    # uniform over 0.4 s: 2.5 N/s on average, the busiest 100 ms bin a little above
    assert 2.3 * n <= peak_per_second(production) <= 3.0 * n
    full, decorrelated = restart_herd("full", n), restart_herd("decorrelated", n)
    assert peak_per_second(full) < peak_per_second(production)
    assert peak_per_second(decorrelated) < peak_per_second(full)
    assert peak_per_second(restart_herd("none", n)) == 10 * n  # everyone in one bin


def test_network_events_before_start_do_not_connect():
    policy = ClientPolicy(session_id="s")
    assert not only(policy.online(1.0), Connect)
    assert not only(policy.offline(2.0), Connect) and policy.status == "idle"
    assert only(policy.start(3.0), Connect)
