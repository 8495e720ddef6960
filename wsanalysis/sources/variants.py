"""How series and beacons are mapped to variants (canary, control, ...).

Two ways, as deployments label things differently:
- by a label: the value of `label` names the variant, optionally renamed
  (`{"stable": "control"}`); the default is the `variant` label as is;
- by selectors: each variant is a set of label matchers (`track="canary"`), the
  same text one would put inside `{...}` in PromQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from wsanalysis.errors import UsageError

_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
# PromQL strings take Go's escapes; anything else (non-ASCII included) is itself
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.DOTALL)
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def unescape(text: str) -> str:
    """A PromQL string's value from its text between quotes (`\\"` is `"`, `\\u00e4` is
    `ä`); characters outside ASCII stay as they are (`canäry` is `canäry`)."""

    def one(match: re.Match[str]) -> str:
        body = match.group(0)[1:]
        if body[0] in "xuU":
            return chr(int(body[1:], 16))
        if body[0].isdigit() and len(body) == 3:
            return chr(int(body, 8))
        return _SIMPLE.get(body, body)

    return _ESCAPE.sub(one, text)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def expr(self, columns: list[str] | None = None) -> pl.Expr:
        """A polars predicate equivalent to this PromQL label matcher.

        As in PromQL, a label that is absent (no column, or null) reads as "".
        """
        present = columns is None or self.label in columns
        column = pl.col(self.label).fill_null("") if present else pl.lit("")
        if self.op == "=":
            return column == self.value
        if self.op == "!=":
            return column != self.value
        anchored = f"^(?:{self.value})$"  # PromQL regex matchers are fully anchored
        return column.str.contains(anchored) if self.op == "=~" else ~column.str.contains(anchored)

    def promql(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.label}{self.op}"{escaped}"'


def parse_matchers(text: str) -> list[Matcher]:
    """Parse `a="x", b=~"y.*"` (braces optional) into matchers."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers: list[Matcher] = []
    position = 0
    while position < len(body.rstrip()):
        match = _MATCHER.match(body, position)
        if not match:
            raise UsageError(
                f"cannot read the label matchers {text!r} near {body[position:]!r}",
                'write them as in PromQL, e.g. track="canary" or {track=~"canary|beta"}',
            )
        value = unescape(match.group(3))
        matchers.append(Matcher(match.group(1), match.group(2), value))
        position = match.end()
    return matchers


@dataclass(frozen=True)
class VariantMapping:
    """Which series belong to which variant; see the module docstring."""

    label: str = "variant"
    rename: dict[str, str] = field(default_factory=dict)
    selectors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def by_selectors(cls, selectors: dict[str, str]) -> VariantMapping:
        for text in selectors.values():
            parse_matchers(text)  # fail early, with the selector named
        return cls(selectors=dict(selectors))

    def matchers_of(self, role: str) -> list[Matcher]:
        """The label matchers picking one variant's series (`track="stable"` for control)."""
        if self.selectors:
            return parse_matchers(self.selectors[role])
        value = next((value for value, name in self.rename.items() if name == role), role)
        return [Matcher(self.label, "=", value)]

    def matchers(self) -> dict[str, list[Matcher]]:
        return {name: parse_matchers(text) for name, text in self.selectors.items()}

    def variant_expr(self, columns: list[str]) -> pl.Expr:
        """An expression giving each row's variant (null when no variant matches)."""
        if not self.selectors:
            if self.label not in columns:
                return pl.lit(None, dtype=pl.Utf8)
            column = pl.col(self.label).cast(pl.Utf8)
            return column.replace(self.rename) if self.rename else column
        expr = pl.lit(None, dtype=pl.Utf8)
        for name, matchers in reversed(list(self.matchers().items())):
            condition = pl.lit(True)
            for matcher in matchers:
                condition = condition & matcher.expr(columns)
            expr = pl.when(condition).then(pl.lit(name)).otherwise(expr)
        return expr

    def describe(self) -> str:
        """How variants are picked, for messages: `label 'track' (stable -> control)`."""
        if self.selectors:
            return "selectors " + ", ".join(f"{k}: {v}" for k, v in self.selectors.items())
        renames = ", ".join(f"{k} -> {v}" for k, v in self.rename.items() if k != v)
        return f"label {self.label!r}" + (f" ({renames})" if renames else "")

    def consumed_labels(self) -> set[str]:
        """Labels that only serve to pick the variant and are not label columns."""
        if self.selectors:
            return set()
        return {self.label}


DEFAULT_VARIANTS = VariantMapping()
