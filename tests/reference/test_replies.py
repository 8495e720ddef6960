"""The sans-I/O reply store that ChatServer and the simulated fleet both drive."""

from __future__ import annotations

from wsanalysis.reference.protocol import AssistantMessage
from wsanalysis.reference.replies import ReplyReader, ReplyStore


def add(store: ReplyStore, owner: str, thread: str, trace: str):
    return store.add(owner, thread, lambda seq: AssistantMessage(thread, seq, trace, f"{trace}.a"))


def test_seq_counts_from_one_per_thread_and_owner() -> None:
    store = ReplyStore()
    seqs = [add(store, "u", "t1", "a").frame.seq, add(store, "u", "t1", "b").frame.seq]
    seqs += [add(store, "u", "t2", "c").frame.seq, add(store, "v", "t1", "d").frame.seq]
    assert seqs == [1, 2, 1, 1]
    assert store.last_seq("u", "t1") == 2 and store.last_seq("w", "t1") == 0


def test_a_reader_takes_what_it_missed_once_in_order() -> None:
    store, reader = ReplyStore(), ReplyReader()
    store.follow(reader, "u", "t")  # follows from the latest reply: none yet
    for trace in "abc":
        add(store, "u", "t", trace)
    taken = []
    while (reply := store.take(reader, "u", "t")) is not None:
        taken.append(reply.frame.in_reply_to)
    assert taken == ["a", "b", "c"]
    assert store.take(reader, "u", "t") is None
    assert reader.marks == {"t": 3}


def test_resume_sets_the_mark_from_what_the_client_saw() -> None:
    store, old, new = ReplyStore(), ReplyReader(), ReplyReader()
    store.follow(old, "u", "t")
    for trace in "abcd":
        add(store, "u", "t", trace)
    assert store.take(old, "u", "t").frame.seq == 1
    store.unfollow(old, "u")
    assert store.readers("u", "t") == []
    store.follow(new, "u", "t", mark=2)  # the client saw 1 and 2 (2 on another tab)
    assert [store.take(new, "u", "t").frame.seq for _ in range(2)] == [3, 4]
    assert store.readers("u", "t") == [new]


def test_fast_path_only_for_the_very_next_reply() -> None:
    store, reader = ReplyStore(), ReplyReader()
    store.follow(reader, "u", "t")
    first = add(store, "u", "t", "a")
    assert store.in_step(reader, first)
    second = add(store, "u", "t", "b")
    assert not store.in_step(reader, second)  # the first was never sent
    store.sent(reader, first)
    assert store.in_step(reader, second)


def test_history_bound_skips_what_was_trimmed() -> None:
    store, reader = ReplyStore(max_history=2), ReplyReader()
    for trace in "abcd":
        add(store, "u", "t", trace)
    assert [store.take(reader, "u", "t").frame.seq for _ in range(2)] == [3, 4]


def test_unsent_interleaves_threads_in_storage_order_and_forget_clears() -> None:
    store, reader = ReplyStore(max_history=None), ReplyReader()
    for thread, trace in (("t1", "a"), ("t2", "b"), ("t1", "c"), ("t2", "d")):
        add(store, "s", thread, trace)
    store.sent(reader, store.take(reader, "s", "t1"))  # "a" delivered
    assert [r.frame.in_reply_to for r in store.unsent(reader, "s")] == ["b", "c", "d"]
    store.forget("s")
    assert store.unsent(reader, "s") == [] and not store.has("s", "t1")
    assert add(store, "s", "t1", "e").frame.seq == 1
