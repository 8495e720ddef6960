"""The reference chat protocol: JSON text frames, their validation and size bounds.

Client → server: `user_message` (a message in a thread, with a client trace id) and
`resume` (the last `seq` the client saw per thread, sent after every reconnect).
Server → client: `typing`, `assistant_message` (per-thread `seq`, `in_reply_to` the
user trace, `meta.trace` unique per assistant frame), `error`, `reconnect_advice`.

Frames are plain dicts on the wire; `decode` validates one and returns a frozen
dataclass, `encode` turns a dataclass back into compact JSON. Anything that does not
fit raises `FrameError`, whose `reason` is a short machine-readable word.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

#: Largest text frame either side accepts, in bytes of UTF-8 (server closes 1008 above it).
MAX_FRAME_BYTES = 64 * 1024
#: Largest message text, in characters.
MAX_TEXT_CHARS = 16 * 1024
#: Largest number of threads one resume frame may name.
MAX_RESUME_THREADS = 1_000
#: Ids (thread ids, traces, reasons) are short printable tokens.
ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


class FrameError(ValueError):
    """A frame that is not valid JSON of the protocol; `reason` is one short word."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class UserMessage:
    thread_id: str
    trace: str
    text: str = ""
    type: str = field(default="user_message", init=False)


@dataclass(frozen=True)
class Resume:
    """Last `seq` the client saw per thread; 0 means "nothing yet, send everything"."""

    threads: dict[str, int]
    type: str = field(default="resume", init=False)


@dataclass(frozen=True)
class Typing:
    thread_id: str
    in_reply_to: str
    type: str = field(default="typing", init=False)


@dataclass(frozen=True)
class AssistantMessage:
    thread_id: str
    seq: int
    in_reply_to: str
    trace: str  # meta.trace on the wire
    text: str = ""
    final: bool = True
    type: str = field(default="assistant_message", init=False)


@dataclass(frozen=True)
class ErrorFrame:
    code: str
    message: str
    thread_id: str | None = None
    type: str = field(default="error", init=False)


@dataclass(frozen=True)
class ReconnectAdvice:
    """The server asks clients to come back after `retry_after_ms` (restart, drain...)."""

    why: str
    retry_after_ms: int
    type: str = field(default="reconnect_advice", init=False)


Frame = UserMessage | Resume | Typing | AssistantMessage | ErrorFrame | ReconnectAdvice


def to_wire(frame: Frame) -> dict[str, Any]:
    """The JSON-ready dict of a frame (what `encode` serialises)."""
    if isinstance(frame, UserMessage):
        return {
            "type": frame.type,
            "thread_id": frame.thread_id,
            "trace": frame.trace,
            "text": frame.text,
        }
    if isinstance(frame, Resume):
        return {"type": frame.type, "threads": dict(frame.threads)}
    if isinstance(frame, Typing):
        return {"type": frame.type, "thread_id": frame.thread_id, "in_reply_to": frame.in_reply_to}
    if isinstance(frame, AssistantMessage):
        return {
            "type": frame.type,
            "thread_id": frame.thread_id,
            "seq": frame.seq,
            "in_reply_to": frame.in_reply_to,
            "text": frame.text,
            "final": frame.final,
            "meta": {"trace": frame.trace},
        }
    if isinstance(frame, ErrorFrame):
        wire: dict[str, Any] = {"type": frame.type, "code": frame.code, "message": frame.message}
        if frame.thread_id is not None:
            wire["thread_id"] = frame.thread_id
        return wire
    if isinstance(frame, ReconnectAdvice):
        return {"type": frame.type, "why": frame.why, "retry_after_ms": frame.retry_after_ms}
    raise TypeError(f"not a protocol frame: {frame!r}")


def encode(frame: Frame) -> str:
    """Compact JSON text of a frame; refuses frames above MAX_FRAME_BYTES."""
    text = json.dumps(to_wire(frame), separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > MAX_FRAME_BYTES:
        raise FrameError("too_big", f"frame of {len(text.encode())} bytes > {MAX_FRAME_BYTES}")
    return text


def decode(data: str | bytes) -> Frame:
    """Parse and validate one text frame; raise FrameError saying what is wrong."""
    if isinstance(data, bytes):
        raise FrameError("binary", "binary frames are not part of the protocol")
    if len(data) > MAX_FRAME_BYTES or len(data.encode()) > MAX_FRAME_BYTES:
        raise FrameError("too_big", f"frame larger than {MAX_FRAME_BYTES} bytes")
    try:
        wire = json.loads(data)
    except ValueError as error:
        raise FrameError("bad_json", str(error)) from None
    if not isinstance(wire, dict):
        raise FrameError("bad_frame", "a frame is a JSON object")
    return from_wire(wire)


def from_wire(wire: dict[str, Any]) -> Frame:
    """Validate a decoded JSON object as a frame."""
    kind = wire.get("type")
    if kind == "user_message":
        return UserMessage(_id(wire, "thread_id"), _id(wire, "trace"), _text(wire, "text"))
    if kind == "resume":
        threads = wire.get("threads")
        if not isinstance(threads, dict) or len(threads) > MAX_RESUME_THREADS:
            raise FrameError("bad_field", f"threads must map ≤ {MAX_RESUME_THREADS} ids to seq")
        for thread_id, seq in threads.items():
            _check_id("threads key", thread_id)
            _check_seq(f"threads[{thread_id}]", seq)
        return Resume({str(k): int(v) for k, v in threads.items()})
    if kind == "typing":
        return Typing(_id(wire, "thread_id"), _id(wire, "in_reply_to"))
    if kind == "assistant_message":
        meta = wire.get("meta")
        if not isinstance(meta, dict):
            raise FrameError("bad_field", "assistant_message needs meta.trace")
        final = wire.get("final", True)
        if not isinstance(final, bool):
            raise FrameError("bad_field", "final must be a boolean")
        seq = wire.get("seq")
        _check_seq("seq", seq)
        return AssistantMessage(
            thread_id=_id(wire, "thread_id"),
            seq=int(seq),
            in_reply_to=_id(wire, "in_reply_to"),
            trace=_id(meta, "trace"),
            text=_text(wire, "text"),
            final=final,
        )
    if kind == "error":
        thread_id = wire.get("thread_id")
        return ErrorFrame(
            code=_id(wire, "code"),
            message=_text(wire, "message"),
            thread_id=None if thread_id is None else _id(wire, "thread_id"),
        )
    if kind == "reconnect_advice":
        retry = wire.get("retry_after_ms")
        if isinstance(retry, bool) or not isinstance(retry, int) or not 0 <= retry <= 3_600_000:
            raise FrameError("bad_field", "retry_after_ms must be an integer in [0, 3600000]")
        return ReconnectAdvice(_id(wire, "why"), retry)
    raise FrameError("unknown_type", f"unknown frame type {kind!r}")


def dedup_key(frame: AssistantMessage) -> str:
    """The client's dedup key: `thread_id:meta.trace`, else `thread_id:in_reply_to`."""
    return f"{frame.thread_id}:{frame.trace or frame.in_reply_to}"


def _id(wire: dict[str, Any], name: str) -> str:
    value = wire.get(name)
    _check_id(name, value)
    return value


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise FrameError("bad_field", f"{name} must be 1-128 characters of [A-Za-z0-9._:@/+=-]")


def _check_seq(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise FrameError("bad_field", f"{name} must be a non-negative integer")


def _text(wire: dict[str, Any], name: str) -> str:
    value = wire.get(name, "")
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise FrameError("bad_field", f"{name} must be a string of ≤ {MAX_TEXT_CHARS} characters")
    return value
