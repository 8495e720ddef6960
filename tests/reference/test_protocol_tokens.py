"""Chat frames round-trip and validate; tokens accept the good and refuse the rest."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from wsanalysis.reference import protocol
from wsanalysis.reference.protocol import (
    AssistantMessage,
    ErrorFrame,
    FrameError,
    ReconnectAdvice,
    Resume,
    Typing,
    UserMessage,
    decode,
    dedup_key,
    encode,
)
from wsanalysis.reference.tokens import TokenError, issue_token, validate_token

SECRET = "a-test-secret-that-is-long-enough-for-hs512-which-wants-64-bytes!"
NOW = 1_700_000_000.0

FRAMES = [
    UserMessage("t-1", "tr.1", "hello ☃"),
    Resume({"t-1": 4, "t-2": 0}),
    Typing("t-1", "tr.1"),
    AssistantMessage("t-1", 7, "tr.1", "tr.1.a1", "hi", final=False),
    ErrorFrame("internal", "boom", "t-1"),
    ErrorFrame("bad_json", "nope"),
    ReconnectAdvice("restart", 1000),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f.type)
def test_frames_round_trip(frame):
    assert decode(encode(frame)) == frame


def test_assistant_message_wire_shape_has_meta_trace():
    wire = json.loads(encode(AssistantMessage("t", 1, "u", "u.a1")))
    assert wire["meta"] == {"trace": "u.a1"} and wire["seq"] == 1 and wire["in_reply_to"] == "u"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "nope"}', "unknown_type"),
        ('{"type": "user_message", "thread_id": "", "trace": "x"}', "bad_field"),
        ('{"type": "user_message", "thread_id": "a b", "trace": "x"}', "bad_field"),
        ('{"type": "resume", "threads": {"t": -1}}', "bad_field"),
        ('{"type": "resume", "threads": {"t": true}}', "bad_field"),
        (
            '{"type": "assistant_message", "thread_id": "t", "seq": 1, "in_reply_to": "u"}',
            "bad_field",
        ),
        ('{"type": "reconnect_advice", "why": "x", "retry_after_ms": -5}', "bad_field"),
    ],
)
def test_invalid_frames_say_why(text, reason):
    with pytest.raises(FrameError) as info:
        decode(text)
    assert info.value.reason == reason


def test_size_bounds():
    with pytest.raises(FrameError, match="too_big"):
        decode("x" * (protocol.MAX_FRAME_BYTES + 1))
    with pytest.raises(FrameError, match="binary"):
        decode(b"{}")
    with pytest.raises(FrameError, match="bad_field"):
        decode(json.dumps({"type": "user_message", "thread_id": "t", "trace": "x",
                           "text": "y" * (protocol.MAX_TEXT_CHARS + 1)}))  # fmt: skip


def test_dedup_key_prefers_meta_trace():
    assert dedup_key(AssistantMessage("t", 1, "u", "u.a1")) == "t:u.a1"
    assert dedup_key(AssistantMessage("t", 1, "u", "")) == "t:u"


def test_valid_token_gives_the_user():
    token = issue_token(SECRET, "alice", NOW, ttl=60)
    claims = validate_token(token, SECRET, NOW + 30)
    assert claims.user == "alice" and claims.expires_at == NOW + 60


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: None, "missing"),
        (lambda: "", "missing"),
        (lambda: "garbage", "malformed"),
        (lambda: "a.b.c", "malformed"),
        (lambda: issue_token(SECRET, "a", NOW)[:-6] + "%%%%%%", "malformed"),
        (lambda: issue_token(SECRET, "a", NOW)[:-4], "bad_signature"),
        (
            lambda: issue_token("another-secret-of-sufficient-length-for-hs256-tokens", "a", NOW),
            "bad_signature",
        ),
        (lambda: jwt.encode({"sub": "a", "exp": NOW + 60}, None, algorithm="none"), "bad_alg"),
        (
            lambda: jwt.encode({"sub": "a", "exp": int(NOW + 60)}, SECRET, algorithm="HS512"),
            "bad_alg",
        ),
        (lambda: jwt.encode({"sub": "a"}, SECRET, algorithm="HS256"), "malformed"),
        (lambda: jwt.encode({"exp": int(NOW + 60)}, SECRET, algorithm="HS256"), "no_subject"),
    ],
)
def test_bad_tokens_are_refused(make, reason):
    with pytest.raises(TokenError) as info:
        validate_token(make(), SECRET, NOW)
    assert info.value.reason == reason


def test_forged_alg_none_with_valid_looking_payload_is_refused():
    good = issue_token(SECRET, "alice", NOW)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    forged = f"{header}.{good.split('.')[1]}."
    with pytest.raises(TokenError, match="bad_alg"):
        validate_token(forged, SECRET, NOW)


def test_tokens_from_pyjwt_with_extra_claims_validate():
    token = jwt.encode({"sub": "bob", "exp": int(NOW + 60), "aud": "chat"}, SECRET, "HS256")
    assert validate_token(token, SECRET, NOW).user == "bob"


def test_expiry_leeway_and_skew():
    token = issue_token(SECRET, "alice", NOW, ttl=60)
    with pytest.raises(TokenError, match="expired"):
        validate_token(token, SECRET, NOW + 60)
    assert validate_token(token, SECRET, NOW + 65, leeway=10).user == "alice"
    with pytest.raises(TokenError, match="expired"):
        validate_token(token, SECRET, NOW, skew=3600)  # the server clock runs an hour ahead
