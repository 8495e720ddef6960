"""Result files written whole or not at all.

A pipeline reads `verdict.json` / `findings.json` after the command exits; a crash or a
full disk halfway through must not leave half a document that still parses, or an old
one that passes for this run's. The text goes to a temporary file beside the target,
is flushed to disk, then renamed over it (atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from wsanalysis.errors import DataError, UsageError


def write_text_atomic(path: str | Path, text: str, *, what: str = "the result") -> Path:
    """Write `text` to `path` atomically; a failure is a `DataError` naming the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise DataError(
            f"cannot write {what} to {path}: {error.strerror or error}",
            "give an output path in a folder you can write to",
        ) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the verdict from a reader
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise DataError(
            f"cannot write {what} to {path}: {error.strerror or error}",
            "give an output path in a folder you can write to, with space left",
        ) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def clear_stale(path: str | Path, option: str = "--out") -> None:
    """Remove a previous run's result first: if this run fails, none is left to misread."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder", "give the result file's path")
    with contextlib.suppress(OSError):  # an unwritable place: the write says so, at the end
        path.unlink(missing_ok=True)
