"""Each canary's state, in SQLite: its settings, the samples fetched so far, its decision.

A look appends only the samples that are new since the last one (one Parquet chunk per
look), so the next look fetches from where this one stopped. A decision (GO or NO_GO)
is final once taken and stored with the answer that gave it. Everything a look needs
is committed in one transaction: a restart, at any moment, loses nothing and gives the
same answers. The accumulated frame of recently judged canaries stays in memory, so an
incremental look does not re-read its history from disk.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.errors import UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS canaries (
    id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,      -- JSON: what may not change between looks
    start_ms INTEGER NOT NULL,   -- the canary's window start
    fetched_ms INTEGER,          -- samples are stored up to here (inclusive)
    looks INTEGER NOT NULL DEFAULT 0,
    final TEXT,                  -- JSON answer of the decision, once taken
    last TEXT,                   -- JSON answer of the latest look
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    canary TEXT NOT NULL REFERENCES canaries(id),
    seq INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    parquet BLOB NOT NULL,
    PRIMARY KEY (canary, seq)
);
"""
MEMORY_CANARIES = 32  # accumulated frames kept in memory (least recently judged dropped)


@dataclass(frozen=True)
class Canary:
    id: str
    settings: dict[str, Any]
    start_ms: int
    fetched_ms: int | None
    looks: int
    final: dict[str, Any] | None
    last: dict[str, Any] | None


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


class StateStore:
    """The SQLite file behind the service (`--state FILE`); safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._memory: OrderedDict[str, tuple[int, pl.DataFrame]] = OrderedDict()
        self._memory_lock = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # id -> (lock, looks holding it)
        self._locks_lock = threading.Lock()
        try:
            _private(Path(path))
            with self._connect() as db:
                db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise UsageError(f"cannot open the state file {self.path}: {error}",
                             "give --state a writable path") from None  # fmt: skip

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with db:  # one transaction: committed whole, or rolled back
                yield db

    @contextmanager
    def lock(self, canary_id: str) -> Iterator[None]:
        """Looks at one canary run one at a time; different canaries run side by side.

        The table holds only canaries with a look in flight (an entry leaves with its last
        holder), so it is bounded by the requests being served, not by the ids ever seen.
        """
        with self._locks_lock:
            lock, holders = self._locks.get(canary_id, (threading.Lock(), 0))
            self._locks[canary_id] = (lock, holders + 1)
        try:
            with lock:
                yield
        finally:
            with self._locks_lock:
                lock, holders = self._locks[canary_id]
                if holders == 1:
                    del self._locks[canary_id]
                else:
                    self._locks[canary_id] = (lock, holders - 1)

    def get(self, canary_id: str) -> Canary | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id, settings, start_ms, fetched_ms, looks, final, last "
                "FROM canaries WHERE id = ?",
                (canary_id,),
            ).fetchone()
        if row is None:
            return None
        return Canary(
            row[0],
            json.loads(row[1]),
            row[2],
            row[3],
            row[4],
            json.loads(row[5]) if row[5] else None,
            json.loads(row[6]) if row[6] else None,
        )

    def create(self, canary_id: str, settings: dict[str, Any], start_ms: int) -> Canary:
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO canaries (id, settings, start_ms, updated) VALUES (?,?,?,?)",
                (canary_id, json.dumps(settings, sort_keys=True), start_ms, _now()),
            )
        found = self.get(canary_id)
        assert found is not None
        return found

    def samples(self, canary: Canary) -> pl.DataFrame | None:
        """Every sample fetched for the canary so far (from memory when it is there)."""
        with self._memory_lock:
            cached = self._memory.get(canary.id)
            if cached is not None and cached[0] == canary.fetched_ms:
                self._memory.move_to_end(canary.id)
                return cached[1]
        with self._connect() as db:
            blobs = [
                row[0]
                for row in db.execute(
                    "SELECT parquet FROM chunks WHERE canary = ? ORDER BY seq", (canary.id,)
                )
            ]
        if not blobs:
            return None
        frame = pl.concat([pl.read_parquet(io.BytesIO(b)) for b in blobs], how="diagonal_relaxed")
        self._remember(canary.id, canary.fetched_ms, frame)
        return frame

    def append(
        self,
        canary: Canary,
        new: pl.DataFrame,
        until_ms: int,
        answer: dict[str, Any],
        final: bool,
        accumulated: pl.DataFrame | None,
    ) -> None:
        """Store one look: its new samples, how far they reach, its answer (in one go)."""
        with self._connect() as db:
            if not new.is_empty():
                seq = db.execute(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM chunks WHERE canary = ?", (canary.id,)
                ).fetchone()[0]
                db.execute(
                    "INSERT INTO chunks (canary, seq, until_ms, rows, parquet) VALUES (?,?,?,?,?)",
                    (canary.id, seq, until_ms, new.height, _parquet(new)),
                )
            db.execute(
                "UPDATE canaries SET fetched_ms = ?, looks = looks + 1, last = ?, "
                "final = COALESCE(final, ?), updated = ? WHERE id = ?",
                (
                    until_ms,
                    json.dumps(answer),
                    json.dumps(answer) if final else None,
                    _now(),
                    canary.id,
                ),
            )
        if accumulated is not None:
            self._remember(canary.id, until_ms, accumulated)

    def count(self) -> dict[str, int]:
        with self._connect() as db:
            total, final = db.execute("SELECT COUNT(*), COUNT(final) FROM canaries").fetchone()
        return {"canaries": total, "decided": final}

    def _remember(self, canary_id: str, fetched_ms: int | None, frame: pl.DataFrame) -> None:
        with self._memory_lock:
            self._memory[canary_id] = (fetched_ms, frame)
            self._memory.move_to_end(canary_id)
            while len(self._memory) > MEMORY_CANARIES:
                self._memory.popitem(last=False)


def _private(path: Path) -> None:
    """The state file readable by its owner only (0600), in a folder created 0700.

    SQLite gives the `-wal` and `-shm` files the database file's mode. An existing file
    is narrowed to 0600; an existing folder is left as it is (it may be shared).
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
