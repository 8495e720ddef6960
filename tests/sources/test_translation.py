"""A telemetry mapping applied by the sources: queries in the user's names, answers in the
contract's (`sources/translation.py`, `sources/promql_text.py`)."""

from __future__ import annotations

import polars as pl
import pytest

from wsanalysis.errors import UsageError
from wsanalysis.sources.promql_text import translate_promql, translate_template
from wsanalysis.sources.schema import TIMESTAMP
from wsanalysis.sources.telemetry import parse_telemetry
from wsanalysis.sources.translation import (
    literal_alternatives,
    samples_to_reference,
    user_matchers,
    user_selector,
)
from wsanalysis.sources.variants import Matcher, parse_matchers

MAPPING = parse_telemetry(
    {
        "version": 1,
        "variants": {"label": "track", "values": {"canary": "canäry", "control": "stable"}},
        "metrics": {
            "ws_closes_total": "chat_closed_total",
            "ws_assistant_ttfb_seconds": "chat_reply_seconds",
        },
        "labels": {"code": "close_code"},
        "label_values": {"code": {"4401": "4003", "1011": "1500"}},
    }
)


def test_selector_in_the_users_names():
    closes = user_selector(MAPPING, "ws_closes_total", parse_matchers('code="4401"'))
    assert closes == 'chat_closed_total{close_code="4003"}'
    assert user_selector(MAPPING, "ws_assistant_ttfb_seconds_bucket") == "chat_reply_seconds_bucket"
    assert user_selector(MAPPING, "ws_connections_total") == "ws_connections_total"  # unmapped


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        ('code!="1011"', ['close_code!="1500"']),
        ('code=~"1006|1011|4401"', ['close_code=~"1006|1500|4003"']),
        ('code!~"4401"', ['close_code!~"4003"']),
        # a pattern: renamed values whose reference matches are added, and renamed values
        # that match as spelled but stand for another value are excluded
        ('code=~"44.*"', ['close_code=~"4003|(?:44.*)"']),
        ('code=~"15.*"', ['close_code=~"15.*"', 'close_code!~"1500"']),
        ('__name__=~"ws_closes_total|ws_connections_total"', [
            '__name__=~"chat_closed_total|ws_connections_total"'
        ]),
    ],
)  # fmt: skip
def test_matchers_select_what_the_reference_names_would(matcher: str, expected: list[str]):
    assert [m.promql() for m in user_matchers(MAPPING, parse_matchers(matcher))] == expected


def test_a_pattern_the_renames_cannot_keep_is_an_error():
    mapping = parse_telemetry({"label_values": {"code": {"4401": "1400"}}})
    # 1400 matches 1.* as spelled but stands for 4401, which does not: `!~` cannot say it
    assert [m.promql() for m in user_matchers(mapping, [Matcher("code", "=~", "1.*")])] == [
        'code=~"1.*"',
        'code!~"1400"',
    ]
    with pytest.raises(UsageError, match="1400 match it as spelled"):
        user_matchers(mapping, [Matcher("code", "!~", "1.*")])


def test_literal_alternatives():
    assert literal_alternatives(r"1006|ws\.open") == ["1006", "ws.open"]
    assert literal_alternatives("a.*") is None
    assert literal_alternatives(r"\d+") is None


def test_samples_come_back_in_the_contracts_names():
    frame = pl.DataFrame(
        {
            "timestamp": [0, 0, 0],
            "metric": ["chat_closed_total", "chat_reply_seconds_bucket", "other_total"],
            "variant": ["canary"] * 3,
            "value": [1.0, 2.0, 3.0],
            "close_code": ["4003", None, None],
            "code": ["shadowed", None, None],  # the user's own `code` label is not the contract's
            "le": [None, "0.5", None],
        }
    ).with_columns(pl.col("timestamp").cast(TIMESTAMP))
    back = samples_to_reference(frame, MAPPING)
    assert back["metric"].to_list() == [
        "other_total",
        "ws_assistant_ttfb_seconds_bucket",
        "ws_closes_total",
    ]
    assert back.filter(pl.col("metric") == "ws_closes_total")["code"].to_list() == ["4401"]
    assert "close_code" not in back.columns


def test_promql_text_in_the_users_names():
    text = (
        'sum by (variant, code) (rate(ws_closes_total{code="4401", variant="canary"}[5m])) '
        "/ on (variant) group_left () variant:ws_closes_4401_per_ws_connections:ratio_rate5m"
    )
    assert translate_promql(text, MAPPING) == (
        'sum by (track, close_code) (rate(chat_closed_total{close_code="4003",track="canäry"}'
        "[5m])) / on (track) group_left () "
        "track:chat_closed_4003_per_ws_connections:ratio_rate5m"
    )
    restrict = 'x and on (variant) label_replace(vector(1), "variant", "control", "", "")'
    assert translate_promql(restrict, MAPPING) == (
        'x and on (track) label_replace(vector(1), "track", "stable", "", "")'
    )
    assert translate_template("{{ $labels.variant }} {{code}}", MAPPING) == (
        "{{ $labels.track }} {{close_code}}"
    )


def test_promql_text_with_variant_selectors():
    mapping = parse_telemetry(
        {"variants": {"selectors": {"canary": 'hash="7d9f", app="chat"', "control": 'hash="5b2c"'}}}
    )
    assert translate_promql('sum by (variant) (x{variant="canary"})', mapping) == (
        'sum by (app, hash) (x{hash="7d9f",app="chat"})'
    )
    with pytest.raises(UsageError, match="one variant label"):
        translate_promql('x{variant=~"$variant"}', mapping)


def test_non_ascii_selector_values_stay_intact():
    (matcher,) = parse_matchers('track="canäry"')
    assert matcher.value == "canäry"
    assert parse_matchers('a="x\\u00e4\\"y"')[0].value == 'xä"y'
