"""A telemetry mapping applied: queries written in the user's names, answers read back in
the contract's.

The sources call these on the way out (a series selector, label matchers, a `by` list
become the user's metric, label and value names) and on the way in (a samples frame's
metric names, label columns and label values become the contract's), so nothing above
`sources/` ever spells a user's name. With the reference mapping every function hands
its input back unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import polars as pl

from wsanalysis.errors import UsageError
from wsanalysis.sources.metric_names import HISTOGRAMS
from wsanalysis.sources.schema import normalize_samples
from wsanalysis.sources.telemetry import Telemetry
from wsanalysis.sources.variants import Matcher

HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
_META = set(".^$*+?()[]{}|\\")


def sample_names(telemetry: Telemetry) -> dict[str, str]:
    """Reference sample name -> the user's, for every mapped metric (a histogram's
    `_bucket`, `_count` and `_sum` series by its family's mapping)."""
    names: dict[str, str] = {}
    for reference, user in telemetry.metrics.items():
        if reference in HISTOGRAMS:
            names.update({reference + s: user + s for s in HISTOGRAM_SUFFIXES})
        else:
            names[reference] = user
    return names


def user_sample_name(telemetry: Telemetry, reference: str) -> str:
    return sample_names(telemetry).get(reference, reference)


def reference_sample_names(telemetry: Telemetry) -> dict[str, str]:
    """The user's sample name -> the reference's (the mapping read backwards)."""
    return {user: reference for reference, user in sample_names(telemetry).items()}


def user_labels(telemetry: Telemetry, labels: Iterable[str]) -> list[str]:
    return [telemetry.label(label) for label in labels]


def regex_escape(text: str) -> str:
    """A literal as an RE2 (PromQL) regular expression."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def literal_alternatives(pattern: str) -> list[str] | None:
    """The literals of a regex that is only an alternation of them (`1006|1011`,
    `ws\\.open`), or None when it holds any other regex syntax."""
    pieces, current, i = [], "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 < len(pattern) and not pattern[i + 1].isalnum():
                current += pattern[i + 1]
                i += 2
                continue
            return None  # \d, \w, \pL: a class, not a literal
        if char == "|":
            pieces.append(current)
            current = ""
        elif char in _META:
            return None
        else:
            current += char
        i += 1
    return [*pieces, current]


def _user_values(
    matcher: Matcher, label: str, mapping: Mapping[str, str], what: str
) -> list[Matcher]:
    """One reference matcher as the user's matchers on `label`: a value the mapping renames
    is asked by the user's name, any other by itself (so the user's series match exactly
    when their reference names would)."""
    op, value = matcher.op, matcher.value
    if not mapping:
        return [Matcher(label, op, value)]
    if op in ("=", "!="):
        return [Matcher(label, op, mapping.get(value, value))]
    literals = literal_alternatives(value)
    if literals is not None:
        return [Matcher(label, op, "|".join(regex_escape(mapping.get(v, v)) for v in literals))]
    try:
        pattern = re.compile(f"(?:{value})")
    except re.error as error:
        raise UsageError(
            f"cannot translate the matcher {matcher.promql()} into your {what} names: {error}",
            "write the matcher as a list of values (a|b|c) or map the values it selects",
        ) from None
    # user values whose reference name matches, and user values that match as spelled
    # although their reference name does not
    inside = sorted(
        u for r, u in mapping.items() if pattern.fullmatch(r) and not pattern.fullmatch(u)
    )
    outside = sorted(
        u for r, u in mapping.items() if pattern.fullmatch(u) and not pattern.fullmatch(r)
    )
    widened = "|".join([*map(regex_escape, inside), f"(?:{value})"]) if inside else value
    if op == "=~":
        exclude = [Matcher(label, "!~", "|".join(map(regex_escape, outside)))] if outside else []
        return [Matcher(label, "=~", widened), *exclude]
    if outside:
        raise UsageError(
            f"cannot translate {matcher.promql()} into your {what} names: "
            f"{', '.join(outside)} match it as spelled but stand for other values",
            "write the matcher as a list of values (a|b|c)",
        )
    return [Matcher(label, "!~", widened)]


def user_matchers(telemetry: Telemetry, matchers: Iterable[Matcher]) -> list[Matcher]:
    """Reference label matchers (`code="4401"`, `__name__=~"ws_a|ws_b"`) as the user's."""
    out: list[Matcher] = []
    for matcher in matchers:
        if matcher.label == "__name__":
            out += _user_values(matcher, "__name__", sample_names(telemetry), "metric")
        else:
            values = telemetry.label_values.get(matcher.label, {})
            out += _user_values(matcher, telemetry.label(matcher.label), values, "label value")
    return out


def user_selector(telemetry: Telemetry, metric: str, matchers: Iterable[Matcher] = ()) -> str:
    """A series selector in the user's names: `ws_closes_total{code="4401"}` ->
    `chat_socket_closed_total{close_code="4003"}`."""
    name = user_sample_name(telemetry, metric) if metric else ""
    inner = ",".join(m.promql() for m in user_matchers(telemetry, matchers))
    return f"{name}{{{inner}}}" if inner or not name else name


def renames_series(telemetry: Telemetry) -> bool:
    """Whether the mapping renames any metric, label or label value."""
    return bool(telemetry.metrics or telemetry.labels or telemetry.label_values)


def samples_to_reference(frame: pl.DataFrame, telemetry: Telemetry) -> pl.DataFrame:
    """A samples frame read in the user's names, in the contract's: metric names, label
    columns (a user label that would shadow a renamed one is dropped) and label values."""
    if not renames_series(telemetry):
        return frame
    names = reference_sample_names(telemetry)
    if names:
        frame = frame.with_columns(pl.col("metric").replace(names))
    renames = {
        user: reference
        for reference, user in telemetry.labels.items()
        if user in frame.columns and user != reference
    }
    shadowed = [r for r in renames.values() if r in frame.columns and r not in renames]
    frame = frame.drop(shadowed).rename(renames)
    for label, values in telemetry.label_values.items():
        if label in frame.columns and values:
            backwards = {user: reference for reference, user in values.items()}
            frame = frame.with_columns(pl.col(label).replace(backwards))
    return normalize_samples(frame) if renames or shadowed else frame


def reference_name(telemetry: Telemetry, name: str) -> str:
    """One user sample name as the contract's (unmapped names as they are)."""
    return reference_sample_names(telemetry).get(name, name)
