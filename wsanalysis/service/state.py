"""Each canary's state, in SQLite: its settings, its sufficient statistics, its looks.

The statistics are what push-down returns, per bucket (`bucket_stats`): buckets no look
will read again are appended once (`settled`, one Parquet chunk each), the buckets the
next look re-reads (the late-arrival margin) are kept apart and replaced by every look
(`canaries.recent`). The server's warnings are kept with the span they cover, so a
re-read that comes back clean lifts them and one that does not keeps its gates
undecided. Each look is recorded (its end, its canary share, its verdict), and a
decision (GO or NO_GO) is final once taken. Everything a look changes is committed in
one transaction: a restart, at any moment, loses nothing and gives the same answers. The
statistics of recently judged canaries stay in memory.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from wsanalysis.errors import UsageError
from wsanalysis.service.bucket_stats import INDEX

FORMAT = 2  # PRAGMA user_version: 2 = sufficient statistics per bucket (1 kept samples)
SCHEMA = """
CREATE TABLE IF NOT EXISTS canaries (
    id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,      -- JSON: what may not change between looks
    start_ms INTEGER NOT NULL,   -- the canary's window start
    looked_ms INTEGER,           -- the last look's end
    looks INTEGER NOT NULL DEFAULT 0,
    settled_k INTEGER NOT NULL DEFAULT 0,  -- buckets below this are in `settled`
    recent BLOB,                 -- Parquet: buckets from settled_k on (the next look re-reads)
    warnings TEXT NOT NULL DEFAULT '[]',   -- JSON: [{family, text, from_ms, to_ms}]
    final TEXT,                  -- JSON answer of the decision, once taken
    last TEXT,                   -- JSON answer of the latest look
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settled (
    canary TEXT NOT NULL REFERENCES canaries(id),
    seq INTEGER NOT NULL,
    first_k INTEGER NOT NULL,
    last_k INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    parquet BLOB NOT NULL,
    PRIMARY KEY (canary, seq)
);
CREATE TABLE IF NOT EXISTS looks (
    canary TEXT NOT NULL REFERENCES canaries(id),
    seq INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    read_from_ms INTEGER NOT NULL,
    canary_share REAL,           -- the share this look declared (a ramp may change it)
    received_rows INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    PRIMARY KEY (canary, seq)
);
"""
MEMORY_CANARIES = 32  # statistics kept in memory (least recently judged dropped)


@dataclass(frozen=True)
class Canary:
    id: str
    settings: dict[str, Any]
    start_ms: int
    looked_ms: int | None
    looks: int
    settled_k: int
    warnings: list[dict[str, Any]]
    final: dict[str, Any] | None
    last: dict[str, Any] | None


@dataclass(frozen=True)
class LookRecord:
    """One look, as the state keeps it."""

    end_ms: int
    read_from_ms: int
    canary_share: float | None
    received_rows: int
    verdict: str
    answer: dict[str, Any] = field(default_factory=dict)
    final: bool = False


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


def _frame(blob: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(blob))


class StateStore:
    """The SQLite file behind the service (`--state FILE`); safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._memory: OrderedDict[str, tuple[int | None, pl.DataFrame]] = OrderedDict()
        self._memory_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        try:
            with self._connect() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                old = db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chunks'"
                ).fetchone()
                if version not in (0, FORMAT) or (version == 0 and old):
                    raise UsageError(
                        f"the state file {self.path} was written by another judge-server "
                        "version (it kept raw samples)",
                        "give --state a new file; the old one keeps its canaries' history",
                    )
                db.executescript(SCHEMA)
                db.execute(f"PRAGMA user_version = {FORMAT}")
        except sqlite3.Error as error:
            raise UsageError(f"cannot open the state file {self.path}: {error}",
                             "give --state a writable path") from None  # fmt: skip

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with db:  # one transaction: committed whole, or rolled back
                yield db

    def lock(self, canary_id: str) -> threading.Lock:
        """Looks at one canary run one at a time; different canaries run side by side."""
        with self._locks_lock:
            return self._locks.setdefault(canary_id, threading.Lock())

    def _rows(self, sql: str, *params: Any) -> list[tuple]:
        """One read-only query's rows (its own connection and transaction)."""
        with self._connect() as db:
            return db.execute(sql, params).fetchall()

    def get(self, canary_id: str) -> Canary | None:
        found = self._rows(
            "SELECT id, settings, start_ms, looked_ms, looks, settled_k, warnings, final, "
            "last FROM canaries WHERE id = ?",
            canary_id,
        )
        if not found:
            return None
        row = found[0]
        return Canary(
            row[0],
            json.loads(row[1]),
            row[2],
            row[3],
            row[4],
            row[5],
            json.loads(row[6]),
            json.loads(row[7]) if row[7] else None,
            json.loads(row[8]) if row[8] else None,
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

    def statistics(self, canary: Canary) -> pl.DataFrame | None:
        """The canary's per-bucket statistics so far (from memory when they are there)."""
        with self._memory_lock:
            cached = self._memory.get(canary.id)
            if cached is not None and cached[0] == canary.looked_ms:
                self._memory.move_to_end(canary.id)
                return cached[1]
        with self._connect() as db:
            blobs = [
                row[0]
                for row in db.execute(
                    "SELECT parquet FROM settled WHERE canary = ? ORDER BY seq", (canary.id,)
                )
            ]
            recent = db.execute("SELECT recent FROM canaries WHERE id = ?", (canary.id,))
            blobs += [b for (b,) in recent if b is not None]
        if not blobs:
            return None
        frame = pl.concat([_frame(b) for b in blobs], how="diagonal_relaxed")
        self._remember(canary.id, canary.looked_ms, frame)
        return frame

    def save(
        self,
        canary: Canary,
        statistics: pl.DataFrame,
        settled_k: int,
        warnings: list[dict[str, Any]],
        look: LookRecord,
    ) -> None:
        """Store one look: buckets no later look re-reads are appended to `settled`, the
        others replace `recent`; the warnings, the look's record, its answer (in one go)."""
        newly = statistics.filter((pl.col(INDEX) >= canary.settled_k) & (pl.col(INDEX) < settled_k))
        recent = statistics.filter(pl.col(INDEX) >= settled_k)
        with self._connect() as db:
            if not newly.is_empty():
                seq = db.execute(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM settled WHERE canary = ?",
                    (canary.id,),
                ).fetchone()[0]
                db.execute(
                    "INSERT INTO settled (canary, seq, first_k, last_k, rows, parquet) "
                    "VALUES (?,?,?,?,?,?)",
                    (canary.id, seq, canary.settled_k, settled_k - 1, newly.height,
                     _parquet(newly)),
                )  # fmt: skip
            db.execute(
                "INSERT INTO looks (canary, seq, end_ms, read_from_ms, canary_share, "
                "received_rows, verdict) VALUES (?,?,?,?,?,?,?)",
                (canary.id, canary.looks, look.end_ms, look.read_from_ms, look.canary_share,
                 look.received_rows, look.verdict),
            )  # fmt: skip
            answer = json.dumps(look.answer)
            db.execute(
                "UPDATE canaries SET looked_ms = ?, looks = looks + 1, settled_k = ?, "
                "recent = ?, warnings = ?, last = ?, final = COALESCE(final, ?), updated = ? "
                "WHERE id = ?",
                (look.end_ms, max(settled_k, canary.settled_k),
                 _parquet(recent) if not recent.is_empty() else None, json.dumps(warnings),
                 answer, answer if look.final else None, _now(), canary.id),
            )  # fmt: skip
        self._remember(canary.id, look.end_ms, statistics)

    def looks(self, canary_id: str) -> list[LookRecord]:
        """Every look at a canary, in order (what was read, the share, the verdict)."""
        rows = self._rows(
            "SELECT end_ms, read_from_ms, canary_share, received_rows, verdict FROM looks "
            "WHERE canary = ? ORDER BY seq",
            canary_id,
        )
        return [LookRecord(*row) for row in rows]

    def size_bytes(self, canary_id: str) -> int:
        """What the canary's statistics take in the state file (Parquet bytes)."""
        settled = self._rows(
            "SELECT COALESCE(SUM(LENGTH(parquet)), 0) FROM settled WHERE canary = ?", canary_id
        )
        recent = self._rows(
            "SELECT COALESCE(LENGTH(recent), 0) FROM canaries WHERE id = ?", canary_id
        )
        return int(settled[0][0]) + int(recent[0][0] if recent else 0)

    def count(self) -> dict[str, int]:
        total, final = self._rows("SELECT COUNT(*), COUNT(final) FROM canaries")[0]
        return {"canaries": total, "decided": final}

    def _remember(self, canary_id: str, looked_ms: int | None, frame: pl.DataFrame) -> None:
        with self._memory_lock:
            self._memory[canary_id] = (looked_ms, frame)
            self._memory.move_to_end(canary_id)
            while len(self._memory) > MEMORY_CANARIES:
                self._memory.popitem(last=False)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
