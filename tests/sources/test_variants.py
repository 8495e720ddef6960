"""Variant mapping: PromQL matcher semantics applied to frames."""

from __future__ import annotations

import polars as pl
import pytest

from wsanalysis.errors import UsageError
from wsanalysis.sources.variants import VariantMapping, parse_matchers


def test_parse_matchers_all_operators_and_escapes():
    matchers = parse_matchers('{a="x", b!="y",c=~"z.*" ,d!~"w|v", e="q\\"uote"}')
    assert [(m.label, m.op, m.value) for m in matchers] == [
        ("a", "=", "x"),
        ("b", "!=", "y"),
        ("c", "=~", "z.*"),
        ("d", "!~", "w|v"),
        ("e", "=", 'q"uote'),
    ]
    assert matchers[4].promql() == 'e="q\\"uote"'


def test_bad_selector_is_a_usage_error_naming_it():
    with pytest.raises(UsageError, match="track=canary"):
        VariantMapping.by_selectors({"canary": "track=canary"})


def test_regex_matchers_are_anchored_and_absent_labels_read_as_empty():
    frame = pl.DataFrame({"track": ["canary", "canary-2", None, "stable"]})
    mapping = VariantMapping.by_selectors(
        {"canary": 'track=~"canary"', "control": 'track!~"canary.*"'}
    )
    variants = frame.select(mapping.variant_expr(frame.columns)).to_series().to_list()
    assert variants == ["canary", None, "control", "control"]


def test_first_matching_selector_wins():
    frame = pl.DataFrame({"track": ["canary"]})
    mapping = VariantMapping.by_selectors({"first": 'track=~".+"', "second": 'track="canary"'})
    assert frame.select(mapping.variant_expr(frame.columns)).item() == "first"


def test_selector_on_a_label_the_frame_lacks():
    frame = pl.DataFrame({"other": ["x"]})
    mapping = VariantMapping.by_selectors({"canary": 'track="canary"', "control": 'track=""'})
    assert frame.select(mapping.variant_expr(frame.columns)).item() == "control"
