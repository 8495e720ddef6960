"""Variant mapping: PromQL matcher semantics applied to frames."""

from __future__ import annotations

import polars as pl
import pytest

from wsanalysis.errors import UsageError
from wsanalysis.sources.variants import VariantMapping, overlap, parse_matchers


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
    """Built directly (by_selectors refuses overlapping selectors): the order decides."""
    frame = pl.DataFrame({"track": ["canary"]})
    mapping = VariantMapping(selectors={"first": 'track=~".+"', "second": 'track="canary"'})
    assert frame.select(mapping.variant_expr(frame.columns)).item() == "first"


def test_selector_on_a_label_the_frame_lacks():
    frame = pl.DataFrame({"other": ["x"]})
    mapping = VariantMapping.by_selectors({"canary": 'track="canary"', "control": 'track=""'})
    assert frame.select(mapping.variant_expr(frame.columns)).item() == "control"


@pytest.mark.parametrize(
    ("canary", "control", "both"),
    [
        ('dataset="aa"', 'dataset="aa",variant="control"', 'dataset="aa", variant="control"'),
        ('variant=~"canary|control"', 'variant="control"', 'variant="control"'),
        ('pod=~"checkout-.*"', 'pod=~"checkout-primary-.*"', 'pod="checkout-primary-"'),
        ('track="canary"', 'version="v2"', 'track="canary", version="v2"'),
        ('h=~"[0-9a-f]{6}"', 'h="5b6c7d"', 'h="5b6c7d"'),
        ('track="canary"', 'track="canary"', 'track="canary"'),
    ],
)
def test_overlapping_selectors_are_refused_with_a_series_both_match(canary, control, both):
    with pytest.raises(UsageError, match="both match a series with") as raised:
        VariantMapping.by_selectors({"canary": canary, "control": control})
    assert both in raised.value.problem and canary in raised.value.problem
    assert "exclusive" in raised.value.fix


@pytest.mark.parametrize(
    ("canary", "control"),
    [
        ('app="checkout"', 'app="checkout-primary"'),  # Flagger's pod labels
        ('rollouts_pod_template_hash="7d9f8c"', 'rollouts_pod_template_hash="5b6c7d"'),
        ('track="canary"', 'track!="canary"'),
        ('track=~"canary.*"', 'track=~"stable.*"'),
        ('track=~"canary"', 'track!~"canary.*"'),
        ('track="canary"', 'track=""'),
    ],
)
def test_exclusive_selectors_are_accepted(canary, control):
    assert VariantMapping.by_selectors({"canary": canary, "control": control}).selectors


def test_overlapping_selectors_agree_with_the_frames():
    """Every overlap named is real: the label set shown matches both selectors in polars."""
    canary, control = parse_matchers('pod=~"checkout-.*"'), parse_matchers('pod=~"checkout-p.+"')
    both = overlap(canary, control)
    assert both is not None
    frame = pl.DataFrame({k: [v] for k, v in both.items()})
    for matchers in (canary, control):
        assert frame.select(pl.all_horizontal(m.expr(frame.columns) for m in matchers)).item()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('a="x\\ny"', "control character"),
        ('a="tab\\there"', "control character"),
        ('a="\\x00"', "control character"),
        ('a=~"a\\.b"', "escape \\."),
        ('a="\\U0011ffff"', "escape"),
        ('a=~"("', "does not compile (unclosed group)"),
        ('a=~"[z-a]"', "does not compile"),
    ],
)
def test_escapes_and_regexes_are_checked_before_any_query(text, problem):
    with pytest.raises(UsageError, match="label matchers|regular expression") as raised:
        parse_matchers(text)
    assert problem in raised.value.problem


def test_promql_escapes_are_read_as_promql_reads_them():
    matchers = parse_matchers('a="caf\\u00e9", b="café", c=~"a\\\\.b", d="\\x41\\101"')
    assert [m.value for m in matchers] == ["café", "café", "a\\.b", "AA"]
    assert matchers[2].promql() == 'c=~"a\\\\.b"'


def test_the_cli_names_overlapping_selectors(capsys: pytest.CaptureFixture[str], tmp_path):
    from wsanalysis.cli import main

    code = main(["judge", "--data", "data/aa_baseline", "--out", str(tmp_path / "v.json"),
                 "--canary-selector", 'variant=~".+"', "--control-selector", 'variant="control"'])  # fmt: skip
    assert code == 3 and not (tmp_path / "v.json").exists()
    assert 'both match a series with variant="control"' in capsys.readouterr().err
