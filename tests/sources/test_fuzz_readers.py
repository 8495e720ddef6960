"""Never another exception: any bytes given to any reader end as a frame or a DataError.

Hypothesis mutates valid files — truncation, byte flips, duplicated lines, huge
numbers, NaN and Inf, other encodings, deep JSON nesting — and feeds them to the
OpenMetrics and Prometheus text readers, the NDJSON beacon reader, the Datadog
export reader, and the Parquet reader (columns of the wrong types). Example counts
stay moderate so the whole file runs in well under a minute in CI.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsanalysis.errors import DataError
from wsanalysis.sources.openmetrics import MetricsLoad, load_openmetrics, read_openmetrics
from wsanalysis.sources.rum import RumLoad, read_rum
from wsanalysis.sources.schema import RUM_SCHEMA

#: CI runs 40 examples per reader; `WSANALYSIS_FUZZ_EXAMPLES=2000` hunts longer locally.
FUZZ = settings(
    max_examples=int(os.environ.get("WSANALYSIS_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SCRAPE = datetime(2026, 1, 1, tzinfo=UTC)

OPENMETRICS = b"""\
# TYPE ws_closes counter
# HELP ws_closes Closes by code.
ws_closes_total{code="1000",variant="canary"} 1 1700000000
ws_closes_total{code="1000",variant="canary"} 3 1700000015 # {trace_id="x"} 1.0 1700000010
# TYPE ws_ttfb_seconds histogram
# UNIT ws_ttfb_seconds seconds
ws_ttfb_seconds_bucket{le="0.5",variant="control"} 1 1700000000
ws_ttfb_seconds_bucket{le="1.0",variant="control"} 3 1700000000
ws_ttfb_seconds_bucket{le="+Inf",variant="control"} 4 1700000000
ws_ttfb_seconds_count{variant="control"} 4 1700000000
ws_ttfb_seconds_sum{variant="control"} 2.5 1700000000
# TYPE ws_connections_active gauge
ws_connections_active{variant="canary"} 12 1700000000
ws_connections_active{variant="canary"} NaN 1700000015
# EOF
"""
PROMETHEUS = b"""\
# HELP up Whether the target is up.
# TYPE up gauge
up{job="a b"} 1 1700000000000
up{job="c"}\t1\t1700000030000
# TYPE http_requests_total counter
http_requests_total{code="200"} 1027 1700000000000
# TYPE rpc summary
rpc{quantile="0.5"} 4773
rpc_sum 1.7560473e+07
rpc_count 2693
"""


def _beacon(i: int) -> dict:
    base = {"v": 1, "ts": 1_764_028_800_000 + i * 1000, "type": "ws.close", "session_id": f"s{i}"}
    return base | {"variant": "canary" if i % 2 else "control", "code": 1006, "reason": "gone"}


NDJSON = b"".join(
    json.dumps(_beacon(i) | ({"extra_field": {"a": [1, 2]}} if i % 3 == 0 else {})).encode() + b"\n"
    for i in range(12)
)
DATADOG = json.dumps(
    {
        "data": [
            {
                "id": f"e{i}",
                "type": "rum",
                "attributes": {
                    "timestamp": "2026-11-25T00:00:00Z",
                    "tags": ["variant:canary"],
                    "attributes": {
                        "date": 1_764_028_800_000 + i,
                        "action": {"target": {"name": "ws.close"}},
                        "session": {"id": f"dd-{i}"},
                        "context": {"code": 4401, "reason": "token expired"},
                    },
                },
            }
            for i in range(4)
        ],
        "links": {},
    }
).encode()

HUGE = [b"1e400", b"-1e400", b"99999999999999999999999999", b"NaN", b"Infinity", b"-Inf", b"+Inf"]


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, json_like: bool = False) -> bytes:
    """The seed after one to three mutations."""
    data = seed
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(
                ["truncate", "flip", "duplicate", "number", "encode", "insert", "drop"]
                + (["nest"] if json_like else [])
            )
        )
        if kind == "truncate" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif kind == "duplicate":
            lines = data.split(b"\n")
            at = draw(st.integers(0, len(lines) - 1))
            data = b"\n".join(lines[: at + 1] + lines[at:])
        elif kind == "drop":
            lines = data.split(b"\n")
            at = draw(st.integers(0, len(lines) - 1))
            data = b"\n".join(lines[:at] + lines[at + 1 :])
        elif kind == "number":
            digits = [i for i, byte in enumerate(data) if chr(byte).isdigit()]
            if digits:
                at = draw(st.sampled_from(digits))
                data = data[:at] + draw(st.sampled_from(HUGE)) + data[at + 1 :]
        elif kind == "encode":
            text = data.decode("utf-8", errors="replace")
            codec = draw(st.sampled_from(["utf-16", "latin-1", "utf-8-sig", "cp1252"]))
            data = text.encode(codec, errors="replace")
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(max_size=12)) + data[at:]
        elif kind == "nest":
            depth = draw(st.sampled_from([50, 2000, 20000]))
            at = data.find(b'"reason"')
            if at >= 0:
                nested = b"[" * depth + b"]" * depth
                data = data[:at] + b'"deep":' + nested + b"," + data[at:]
    if draw(st.booleans()) and draw(st.integers(0, 4)) == 0:
        data = gzip.compress(data, mtime=0)
    return data


def _frame_or_data_error(read) -> None:
    try:
        result = read()
    except DataError:
        return
    frame = result.frame if isinstance(result, RumLoad | MetricsLoad) else result
    assert isinstance(frame, pl.DataFrame)


@FUZZ
@given(mutated(OPENMETRICS), st.sampled_from([None, "openmetrics", "prometheus"]), st.booleans())
def test_openmetrics_reader_never_raises_anything_else(data: bytes, format, lenient) -> None:
    _frame_or_data_error(lambda: read_openmetrics(data, format=format, lenient=lenient))
    _frame_or_data_error(
        lambda: load_openmetrics(data, format=format, timestamp=SCRAPE, lenient=lenient)
    )


@FUZZ
@given(mutated(PROMETHEUS), st.booleans())
def test_prometheus_reader_never_raises_anything_else(data: bytes, lenient: bool) -> None:
    _frame_or_data_error(
        lambda: read_openmetrics(data, format="prometheus", timestamp=SCRAPE, lenient=lenient)
    )


def _read_file(data: bytes, name: str, **options):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return read_rum(path, **options)


@FUZZ
@given(mutated(NDJSON, json_like=True))
def test_ndjson_beacon_reader_never_raises_anything_else(data: bytes) -> None:
    _frame_or_data_error(lambda: _read_file(data, "rum.ndjson"))


@FUZZ
@given(mutated(DATADOG, json_like=True))
def test_datadog_reader_never_raises_anything_else(data: bytes) -> None:
    _frame_or_data_error(lambda: _read_file(data, "export.json", format="datadog"))


def _column(dtype_name: str, n: int) -> pl.Series:
    values = {
        "str": pl.Series([f"x{i}" for i in range(n)]),
        "int": pl.Series(list(range(n)), dtype=pl.Int64),
        "uint": pl.Series([2**63 + i for i in range(n)], dtype=pl.UInt64),
        "float": pl.Series([1.5e300, float("nan"), float("inf")] * n)[:n],
        "bool": pl.Series([True, False] * n)[:n],
        "list": pl.Series([[1, 2]] * n),
        "struct": pl.Series([{"a": 1}] * n),
        "null": pl.Series([None] * n),
        "datetime": pl.Series([datetime(2026, 1, 1)] * n),
    }
    return values[dtype_name]


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from([*RUM_SCHEMA, "unknown_col"]),
        st.sampled_from(
            ["str", "int", "uint", "float", "bool", "list", "struct", "null", "datetime"]
        ),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_parquet_with_wrong_column_types_is_a_data_error_or_a_frame(columns, truncate) -> None:
    frame = pl.DataFrame([_column(kind, 3).alias(name) for name, kind in columns.items()])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rum.parquet"
        frame.write_parquet(path)
        if truncate:
            path.write_bytes(path.read_bytes()[:-20])
        _frame_or_data_error(lambda: read_rum(path))
