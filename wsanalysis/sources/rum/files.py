"""Bytes of a RUM input and what format they hold (content decides, names can lie)."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from wsanalysis.errors import DataError

try:  # ISA-L inflates gzip about twice as fast as zlib; optional
    from isal import isal_zlib as _inflate
    from isal.igzip import decompress as _gunzip
except ImportError:  # pragma: no cover - depends on the environment
    _gunzip = gzip.decompress
    _inflate = zlib

#: Compressed bytes inflated per step when a file is streamed (about 5 MB of text).
STREAM_BLOCK = 1 << 20


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when its first bytes say gzip (whatever its name)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return _gunzip(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path} looks gzip-compressed but cannot be decompressed: {exc}",
                "check the file was copied whole (gzip -t FILE)",
            ) from exc
    return data


def _blocks(path: Path) -> Iterator[bytes]:
    """A file's bytes in blocks, gunzipped on the way when its first bytes say gzip.

    Inflating releases the GIL, so the slices already read are parsed meanwhile
    (`_read_bytes` would inflate the whole file first). Members of a multi-member
    gzip file follow each other; a damaged or truncated file is a DataError.
    """
    with path.open("rb") as handle:
        pending = handle.read(STREAM_BLOCK)
        if pending[:2] != b"\x1f\x8b":
            while pending:
                yield pending
                pending = handle.read(STREAM_BLOCK)
            return
        inflater = _inflate.decompressobj(wbits=31)
        try:
            while True:
                if not pending:
                    pending = handle.read(STREAM_BLOCK)
                    if not pending:
                        break
                text = inflater.decompress(pending)
                if text:
                    yield text
                pending = b""
                if inflater.eof:  # a member ends: another may follow (zero padding may too)
                    pending = inflater.unused_data.lstrip(b"\x00")
                    if pending or (pending := handle.read(STREAM_BLOCK).lstrip(b"\x00")):
                        inflater = _inflate.decompressobj(wbits=31)
                    else:
                        return
            if not inflater.eof:
                raise EOFError("compressed file ended before the end-of-stream marker")
        except (OSError, EOFError, zlib.error, _inflate.error) as exc:
            raise DataError(
                f"{path} looks gzip-compressed but cannot be decompressed: {exc}",
                "check the file was copied whole (gzip -t FILE)",
            ) from exc


def rum_format(path: Path) -> str:
    """ndjson, parquet or datadog, from the content (names can lie)."""
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
        if any(p.suffix == ".parquet" for p in files):
            return "parquet"
        if any(p.suffix in (".json", ".gz") for p in files):
            return "datadog"
        raise DataError(
            f"{path} holds no .parquet files nor Datadog export pages",
            "pass an NDJSON file, a Parquet file or folder, or a Datadog RUM export",
        )
    with path.open("rb") as handle:
        head = handle.read(4)
    if head == b"PAR1":
        return "parquet"
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as handle:
            try:
                head = handle.read(4096)
            except (OSError, EOFError, zlib.error):
                return "ndjson"
    else:
        with path.open("rb") as handle:
            head = handle.read(4096)
    return "datadog" if _looks_like_datadog(head) else "ndjson"


def rum_files(path: Path) -> tuple[str, list[str]]:
    """(format, files) of a RUM input, the format from the content: a Parquet file or
    (partitioned) folder lists its Parquet files only (a partitioned set's folder is itself
    named *.parquet, and listed again it would be read twice); anything else is itself."""
    kind = rum_format(path)
    if kind == "parquet" and path.is_dir():
        return kind, sorted(str(p) for p in path.rglob("*.parquet") if p.is_file())
    return kind, [str(path)]


_DATADOG_HINT = re.compile(rb'"data"\s*:\s*\[')


def _looks_like_datadog(head: bytes) -> bool:
    """A page of the RUM events API: an object whose `data` is a list of events."""
    first = next((x for x in head.split(b"\n") if x.strip()), b"")
    try:
        doc = json.loads(first)
    except (
        ValueError,
        RecursionError,
    ):  # a long or pretty-printed page: look for `"data": [` early on
        hint = _DATADOG_HINT.search(head)
        return hint is not None and b'"v"' not in head[: hint.start()]
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]
    return isinstance(doc, dict) and isinstance(doc.get("data"), list)
