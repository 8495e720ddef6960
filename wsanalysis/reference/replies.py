"""The server's reply store, sans-I/O: replies per thread, and where each reader is.

Replies are stored per (owner, thread) — the owner is a user on the real server, a
session in the simulator — with a per-thread `seq` that counts from 1 without gaps. A
reader (a server connection, a simulated session) keeps a high-water mark per thread: the
last `seq` it was sent. `take` hands a reader the next stored reply above its mark and
moves the mark, so a reply stored while the reader was away is sent once, in order,
when it comes back; a `resume` frame sets the marks from what the client saw (`follow`).

Nothing here sends, sleeps or reads a clock: `server.ChatServer` drives it from asyncio,
`fleet.FleetSimulation` from its event loop (as `policy.ClientPolicy` is shared by the
real client and the simulator).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from wsanalysis.reference.protocol import AssistantMessage

Key = tuple[Hashable, str]


@dataclass(frozen=True)
class StoredReply:
    """One stored reply: the frame, its encoded text when the driver caches it, and its
    place in the store's overall order (replies of different threads interleave)."""

    frame: AssistantMessage
    text: str | None
    order: int


class ReplyReader:
    """One reader's place in each thread it follows: `marks[thread]` is the last seq it
    was sent. Subclass it or hold one; readers compare by identity."""

    def __init__(self) -> None:
        self.marks: dict[str, int] = {}


class ReplyStore:
    """Replies per (owner, thread), each thread's history bounded by `max_history`
    (None: unbounded), and the readers following each thread."""

    def __init__(self, max_history: int | None = 1000) -> None:
        self.max_history = max_history
        self._history: dict[Key, list[StoredReply]] = defaultdict(list)
        self._seq: dict[Key, int] = defaultdict(int)
        self._readers: dict[Key, set[ReplyReader]] = {}
        self._threads: dict[Hashable, dict[str, None]] = defaultdict(dict)
        self._order = itertools.count()

    # -- writing ---------------------------------------------------------------------

    def last_seq(self, owner: Hashable, thread: str) -> int:
        return self._seq.get((owner, thread), 0)

    def add(
        self,
        owner: Hashable,
        thread: str,
        build: Callable[[int], AssistantMessage],
        encode: Callable[[AssistantMessage], str] | None = None,
    ) -> StoredReply:
        """Store the thread's next reply: `build(seq)` makes the frame for the next seq;
        `encode` (optional) caches its text for drivers that send it many times."""
        key = (owner, thread)
        self._seq[key] += 1
        frame = build(self._seq[key])
        reply = StoredReply(frame, encode(frame) if encode else None, next(self._order))
        history = self._history[key]
        history.append(reply)
        if self.max_history is not None and len(history) > self.max_history:
            del history[: -self.max_history]
        self._threads[owner][thread] = None
        return reply

    def forget(self, owner: Hashable) -> None:
        """Drop everything an owner has (a simulated session that ended)."""
        for thread in self._threads.pop(owner, {}):
            key = (owner, thread)
            self._history.pop(key, None)
            self._seq.pop(key, None)
            self._readers.pop(key, None)

    # -- readers ---------------------------------------------------------------------

    def follow(
        self, reader: ReplyReader, owner: Hashable, thread: str, mark: int | None = None
    ) -> None:
        """`reader` follows the thread from `mark` (the last seq it has: a resume), or,
        without one, from where it is already, else from the thread's latest reply."""
        if mark is None:
            reader.marks.setdefault(thread, self.last_seq(owner, thread))
        else:
            reader.marks[thread] = mark
        self._readers.setdefault((owner, thread), set()).add(reader)

    def unfollow(self, reader: ReplyReader, owner: Hashable) -> None:
        """The reader is gone (its connection closed): it follows nothing any more."""
        for thread in reader.marks:
            readers = self._readers.get((owner, thread))
            if readers is not None:
                readers.discard(reader)
                if not readers:
                    del self._readers[(owner, thread)]

    def readers(self, owner: Hashable, thread: str) -> list[ReplyReader]:
        return list(self._readers.get((owner, thread), ()))

    def in_step(self, reader: ReplyReader, reply: StoredReply) -> bool:
        """True when `reply` is the very next one the reader needs (nothing missed)."""
        return reader.marks.get(reply.frame.thread_id) == reply.frame.seq - 1

    def has(self, owner: Hashable, thread: str) -> bool:
        return bool(self._history.get((owner, thread)))

    def take(self, reader: ReplyReader, owner: Hashable, thread: str) -> StoredReply | None:
        """The next stored reply above the reader's mark (None when it has them all);
        the mark moves to it. A reply trimmed from the history is skipped."""
        history = self._history.get((owner, thread))
        if not history:
            return None
        index = max(0, reader.marks.get(thread, 0) - history[0].frame.seq + 1)
        if index >= len(history):
            return None
        reply = history[index]
        reader.marks[thread] = reply.frame.seq
        return reply

    def sent(self, reader: ReplyReader, reply: StoredReply) -> None:
        """The reader was sent `reply` (outside `take`): its mark moves up to it."""
        thread = reply.frame.thread_id
        reader.marks[thread] = max(reader.marks.get(thread, 0), reply.frame.seq)

    def unsent(self, reader: ReplyReader, owner: Hashable) -> list[StoredReply]:
        """Every stored reply of the owner above the reader's marks, in the order they
        were stored (threads interleaved); marks do not move."""
        out: list[StoredReply] = []
        for thread in self._threads.get(owner, ()):
            mark = reader.marks.get(thread, 0)
            out += [r for r in self._history[(owner, thread)] if r.frame.seq > mark]
        return sorted(out, key=lambda r: r.order)
