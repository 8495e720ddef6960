"""How series and beacons are mapped to variants (canary, control, ...).

Two ways, as deployments label things differently:
- by a label: the value of `label` names the variant, optionally renamed
  (`{"stable": "control"}`); the default is the `variant` label as is;
- by selectors: each variant is a set of label matchers (`track="canary"`), the
  same text one would put inside `{...}` in PromQL. Values are PromQL strings (Go escapes
  such as `\\` and `\"`; no control characters), regular expressions must compile, and
  two variants' selectors may not both match one series: an overlap is refused with the
  label set that both would match (a series in two variants is judged against itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations

import polars as pl

from wsanalysis.errors import UsageError

_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


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
        label, op = match.group(1), match.group(2)
        value = unescape(match.group(3), text)
        if _CONTROL.search(value):
            raise UsageError(
                f"the label matchers {text!r} hold a control character (e.g. a newline)",
                "label values hold no control characters; remove the escape",
            )
        if op in ("=~", "!~"):
            _check_regex(value, text)
        matchers.append(Matcher(label, op, value))
        position = match.end()
    return matchers


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"'}  # fmt: skip
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.?)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unescape(raw: str, text: str, where: str = "the label matchers") -> str:
    """A PromQL string's value from its body between quotes (Go's escapes: `\\"` is `"`,
    `\\u00e4` is `ä`; characters outside ASCII stay as they are). `text` is what the user
    wrote, named (as `where`) when an escape is one PromQL does not know."""

    def escape(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _ESCAPES:
            return _ESCAPES[code]
        try:
            if len(code) > 1:  # \xhh, \uhhhh, \Uhhhhhhhh or \ooo, as the pattern allows
                return chr(int(code[1:], 16) if code[0] in "xuU" else int(code, 8))
        except ValueError:  # beyond Unicode
            pass
        raise UsageError(
            f"{where} {text!r}: the escape \\{code} is one PromQL does not know",
            'write \\\\ for a backslash and \\" for a quote (a regex dot is "\\\\.")',
        )

    return _ESCAPE.sub(escape, raw)


def _check_regex(value: str, text: str) -> None:
    """A regex matcher must compile (checked with the regex engine the frames use)."""
    try:
        pl.Series([""]).str.contains(f"^(?:{value})$")
    except pl.exceptions.PolarsError as error:
        lines = [line for line in str(error).splitlines() if line.startswith("error:")]
        why = f" ({lines[0][len('error:') :].strip()})" if lines else ""
        raise UsageError(
            f"the regular expression {value!r} in {text!r} does not compile{why}",
            "write an RE2 regular expression, as PromQL takes",
        ) from None


@dataclass(frozen=True)
class VariantMapping:
    """Which series belong to which variant; see the module docstring."""

    label: str = "variant"
    rename: dict[str, str] = field(default_factory=dict)
    selectors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def by_selectors(cls, selectors: dict[str, str]) -> VariantMapping:
        """Selectors checked early: each parses, and no series could match two of them."""
        parsed = {name: parse_matchers(text) for name, text in selectors.items()}
        for (a, matchers_a), (b, matchers_b) in combinations(parsed.items(), 2):
            both = overlap(matchers_a, matchers_b)
            if both is not None:
                shown = ", ".join(f'{k}="{v}"' for k, v in both.items() if v) or "no label"
                raise UsageError(
                    f"the {a} selector {selectors[a]!r} and the {b} selector {selectors[b]!r} "
                    f"both match a series with {shown}: it would be judged as both",
                    "make the selectors exclusive (a label value only one of them allows, "
                    'e.g. app="checkout" against app="checkout-primary")',
                )
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

#: Candidate values tried per regex (alternatives times repeat choices), to stay small.
MAX_SAMPLES = 64


def overlap(a: list[Matcher], b: list[Matcher]) -> dict[str, str] | None:
    """A label set matched by both matcher lists ("" for an absent label), or None.

    Each label is constrained on its own, so the lists overlap when every label has a
    value all matchers on it accept. Candidates are "", the `=` values, and strings
    each regex generates; an overlap found is certain (the label set is shown), while
    an overlap only exotic regexes allow may go unseen.
    """
    witness: dict[str, str] = {}
    for label in dict.fromkeys(m.label for m in (*a, *b)):
        on_label = [m for m in (*a, *b) if m.label == label]
        candidates = [""] + [m.value for m in on_label if m.op == "="]
        for m in on_label:
            if m.op == "=~":
                candidates += _regex_samples(m.value)
        found = next((v for v in candidates if all(_accepts(m, v) for m in on_label)), None)
        if found is None:
            return None
        witness[label] = found
    return witness


def _accepts(matcher: Matcher, value: str) -> bool:
    if matcher.op in ("=", "!="):
        return (value == matcher.value) == (matcher.op == "=")
    try:
        matched = re.fullmatch(matcher.value, value) is not None
    except re.error:  # RE2 syntax Python lacks: claim nothing
        return False
    return matched == (matcher.op == "=~")


def _regex_samples(pattern: str) -> list[str]:
    """A few strings the regex matches (shortest repeats and one more), [] when unsure."""
    from re import _constants as sre  # the parser of `re`, read-only use
    from re import _parser

    def expand(items: object) -> list[str] | None:
        results = [""]
        for op, arg in items:  # type: ignore[attr-defined]
            options = one(op, arg)
            if options is None:
                return None
            results = [r + o for r in results for o in options][:MAX_SAMPLES]
        return results

    def one(op: object, arg: object) -> list[str] | None:
        if op is sre.LITERAL:
            return [chr(arg)]  # type: ignore[arg-type]
        if op is sre.ANY:
            return ["x"]
        if op is sre.AT:
            return [""]
        if op is sre.IN and arg and arg[0][0] in (sre.LITERAL, sre.RANGE):  # type: ignore[index]
            first = arg[0]  # type: ignore[index]
            return [chr(first[1] if first[0] is sre.LITERAL else first[1][0])]
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, sub = arg  # type: ignore[misc]
            inner = expand(sub)
            if inner is None:
                return None
            counts = [low] + ([low + 1] if high > low else [])
            return [s * n for n in counts for s in inner]
        if op is sre.SUBPATTERN:
            return expand(arg[-1])  # type: ignore[index]
        if op is sre.BRANCH:
            branches = [expand(b) for b in arg[1]]  # type: ignore[index]
            return [s for b in branches if b is not None for s in b]
        return None  # lookarounds, back references, negated classes: no sample

    try:
        return (expand(_parser.parse(pattern)) or [])[:MAX_SAMPLES]
    except (re.error, RecursionError, ValueError, TypeError):
        return []
