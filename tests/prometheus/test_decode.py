"""Pure parts of the Prometheus source: answer decoding, times, settings (no server)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from wsanalysis.errors import UsageError
from wsanalysis.sources.prometheus import (
    ENV_URL,
    PrometheusSettings,
    _Series,
    _to_ms_span,
    decode_matrix,
    to_epoch_ms,
)

TRICKY = {
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"__name__": "ws_x", "reason": 'said "values":[[1,"2"]] ]} ok'},
                "values": [[1700000000, "1"], [1700000015.25, "NaN"], [1700000030, "+Inf"]],
            },
            {"metric": {"__name__": "ws_x", "reason": "ünïcode\n"}, "values": []},
            {"metric": {"__name__": "ws_y"}, "values": [[1700000000.001, "-1.5e-07"]]},
        ],
    },
    "warnings": ["partial response"],
}


def frames_equal(text: str):
    matrix = decode_matrix(text)
    assert matrix is not None
    series = _Series()
    series.add(matrix, 0)
    return matrix, series.frame().sort("__name__", "timestamp_ms")


def test_fast_path_reads_tricky_labels_special_values_and_warnings():
    compact = json.dumps(TRICKY, separators=(",", ":"), ensure_ascii=False)
    matrix, frame = frames_equal(compact)
    assert matrix.labels[0]["reason"] == 'said "values":[[1,"2"]] ]} ok'
    assert matrix.warnings == ["partial response"]
    assert frame["timestamp_ms"].to_list() == [
        1700000000000,
        1700000015250,
        1700000030000,
        1700000000001,
    ]
    values = frame["value"].to_list()
    assert values[0] == 1 and math.isnan(values[1]) and values[2] == math.inf
    assert values[3] == -1.5e-07


def test_other_encodings_fall_back_to_json_and_agree():
    compact = json.dumps(TRICKY, separators=(",", ":"))
    spaced = json.dumps(TRICKY, indent=2)  # e.g. a proxy that re-encodes
    fast, slow = frames_equal(compact), frames_equal(spaced)
    assert fast[0].labels == slow[0].labels and fast[0].warnings == slow[0].warnings
    assert fast[1].equals(slow[1])


def test_non_matrix_answers_are_not_decoded():
    assert decode_matrix('{"status":"error","errorType":"bad_data","error":"x"}') is None
    assert decode_matrix("<html>proxy error</html>") is None
    vector = {"status": "success", "data": {"resultType": "vector", "result": []}}
    assert decode_matrix(json.dumps(vector)) is None


def test_empty_result_decodes_to_nothing():
    empty = '{"status":"success","data":{"resultType":"matrix","result":[]}}'
    matrix = decode_matrix(empty)
    assert matrix is not None and matrix.labels == [] and matrix.warnings == []


def test_times_and_durations_in_the_forms_people_write():
    moment = datetime(2024, 3, 1, tzinfo=UTC)
    assert to_epoch_ms(moment) == 1709251200000
    assert to_epoch_ms(moment.replace(tzinfo=None)) == 1709251200000  # naive = UTC
    assert to_epoch_ms(moment.astimezone(timezone(timedelta(hours=2)))) == 1709251200000
    assert to_epoch_ms("2024-03-01T00:00:00.250Z") == 1709251200250
    assert to_epoch_ms(1709251200.25) == 1709251200250
    assert _to_ms_span("1h30m") == 5_400_000 and _to_ms_span("15s") == 15_000
    assert _to_ms_span(timedelta(minutes=1)) == 60_000 and _to_ms_span("0.5") == 500
    with pytest.raises(UsageError, match="as a duration"):
        _to_ms_span("15 parsecs")
    with pytest.raises(UsageError, match="as a time"):
        to_epoch_ms(float("nan"))


def test_url_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_URL, "https://prom.example:9090")
    assert PrometheusSettings.from_env().url == "https://prom.example:9090"
    assert PrometheusSettings.from_env(url="http://127.0.0.1:1").url == "http://127.0.0.1:1"


def test_to_epoch_ms_reads_every_form_a_user_types():
    from datetime import UTC, datetime

    import pytest

    from wsanalysis.errors import UsageError
    from wsanalysis.sources.prometheus import to_epoch_ms

    expected = 1_793_599_200_000
    assert to_epoch_ms("1793599200") == expected
    assert to_epoch_ms(" 1793599200.0 ") == expected
    assert to_epoch_ms("2026-11-02T06:00:00Z") == expected
    assert to_epoch_ms(datetime(2026, 11, 2, 6, 0, tzinfo=UTC)) == expected
    with pytest.raises(UsageError, match="cannot read 'soon'"):
        to_epoch_ms("soon")
