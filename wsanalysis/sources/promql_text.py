"""PromQL written in the contract's names, rewritten in a user's (a telemetry mapping).

The exports (recording and alerting rules, the dashboard) and a gate's `promql:` text
are written in the contract's vocabulary; a service with other names needs them in its
own. PromQL is tokenised, and each token is rewritten by what it is where it stands:
a series name (a histogram's series by its family), a recording rule's name
(`level:metric:operations`, each part), a label in `{...}`, `by (...)` or `on (...)`, a
value in a matcher, the labels and value of `label_replace`. The variant label becomes
the user's variant label (or the labels its selectors name) and the role values
`canary` / `control` the user's values (or the selectors' matchers). Numbers, durations,
functions and operators are copied as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wsanalysis.errors import UsageError
from wsanalysis.sources.metric_names import COUNTERS, FAMILIES
from wsanalysis.sources.telemetry import Telemetry
from wsanalysis.sources.translation import (
    literal_alternatives,
    regex_escape,
    sample_names,
    user_matchers,
)
from wsanalysis.sources.variants import Matcher, parse_matchers, unescape

VARIANT = "variant"
ROLES = ("canary", "control")
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<number>(?:0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?:[a-zA-Z]+[0-9]*)*)
    |(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    |(?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@])""",
    re.VERBOSE,
)
#: Words after which `( ... )` lists labels.
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
#: Words that are never series names.
KEYWORDS = {"offset", "bool", "and", "or", "unless", "atan2", "inf", "nan", "Inf", "NaN"}
#: Functions whose string arguments at these positions are label names.
LABEL_ARGUMENTS = {"label_replace": (1, 3), "label_join": (1,), "count_values": ()}


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise UsageError(
                f"cannot read the PromQL {text!r} near {text[position:][:30]!r}",
                "check the expression (promtool check rules reads it too)",
            )
        tokens.append((match.lastgroup or "op", match.group(0)))
        position = match.end()
    return tokens


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@dataclass(frozen=True)
class Spelling:
    """How one telemetry mapping spells the contract's names in PromQL."""

    telemetry: Telemetry

    # -- the variant ------------------------------------------------------------------
    @property
    def variant_labels(self) -> tuple[str, ...]:
        mapping = self.telemetry.variant_mapping
        if not mapping.selectors:
            return (mapping.label,)
        return tuple(sorted({m.label for ms in mapping.matchers().values() for m in ms}))

    def role_value(self, role: str) -> str | None:
        """The user's value of the variant label for `canary` / `control` (None when
        selectors pick the role by more than one matcher or by a pattern)."""
        mapping = self.telemetry.variant_mapping
        if not mapping.selectors:
            return next((v for v, r in mapping.rename.items() if r == role), role)
        matchers = mapping.matchers().get(role, [])
        if len(matchers) == 1 and matchers[0].op == "=" and len(self.variant_labels) == 1:
            return matchers[0].value
        return None

    def role_matchers(self, role: str) -> list[Matcher]:
        value = self.role_value(role)
        if value is not None:
            return [Matcher(self.variant_labels[0], "=", value)]
        return list(self.telemetry.variant_mapping.matchers().get(role, []))

    def one_label(self, what: str) -> str:
        """The variant label, when the variants are given by one (else a UsageError)."""
        if len(self.variant_labels) != 1:
            raise UsageError(
                f"{what} needs one variant label, and the selectors name "
                f"{', '.join(self.variant_labels)}",
                "give variants by one label (variants.label, or selectors on one label)",
            )
        return self.variant_labels[0]

    def variant_matchers(self, matcher: Matcher) -> list[Matcher]:
        """A matcher on the contract's variant label, in the user's labels and values."""
        if matcher.op == "=" and matcher.value in ROLES:
            return self.role_matchers(matcher.value)
        label = self.one_label(f"the matcher {matcher.promql()}")
        roles = literal_alternatives(matcher.value) if matcher.op in ("=~", "!~") else None
        if roles is not None and all(r in ROLES for r in roles):
            values = [self.role_value(r) for r in roles]
            if None in values:
                raise UsageError(
                    f"cannot write {matcher.promql()} with these variant selectors",
                    "give variants by one label with one value per role",
                )
            return [Matcher(label, matcher.op, "|".join(regex_escape(v) for v in values))]
        if matcher.value in ROLES:  # != canary
            value = self.role_value(matcher.value)
            if value is None:
                raise UsageError(
                    f"cannot write {matcher.promql()} with these variant selectors",
                    "give variants by one label with one value per role",
                )
            return [Matcher(label, matcher.op, value)]
        return [Matcher(label, matcher.op, matcher.value)]  # e.g. Grafana's $variant

    # -- names ------------------------------------------------------------------------
    def label(self, name: str) -> list[str]:
        if name == VARIANT:
            return list(self.variant_labels)
        return [self.telemetry.label(name)]

    def matchers(self, matchers: list[Matcher]) -> list[Matcher]:
        out: list[Matcher] = []
        for matcher in matchers:
            if matcher.label == VARIANT:
                out += self.variant_matchers(matcher)
            else:
                out += user_matchers(self.telemetry, [matcher])
        return out

    def series(self, name: str) -> str:
        return sample_names(self.telemetry).get(name, name)

    def record(self, name: str) -> str:
        """A recording rule's name, `level:metric:operations`, part by part: the level's
        labels, the metric part's series stems and label values."""
        parts = name.split(":")
        if len(parts) != 3:
            return name
        level, metric, operations = parts
        labels = "_".join(user for label in level.split("_") for user in self.label(label))
        return f"{labels}:{self._stems(metric)}:{operations}"

    def _stems(self, text: str) -> str:
        """`ws_closes_4401_per_ws_connections` with each family stem and value renamed."""
        table: dict[str, str] = {}
        for family in FAMILIES:
            user = self.telemetry.metric(family)
            stem, user_stem = family, user
            if family in COUNTERS:
                stem, user_stem = family.removesuffix("_total"), user.removesuffix("_total")
            table[stem] = user_stem
            table[family] = user
        for values in self.telemetry.label_values.values():
            for reference, user in values.items():
                table.setdefault(re.sub(r"\W+", "_", reference), re.sub(r"\W+", "_", user))
        words, out, i = text.split("_"), [], 0
        while i < len(words):
            for j in range(len(words), i, -1):
                piece = "_".join(words[i:j])
                if piece in table:
                    out.append(table[piece])
                    i = j
                    break
            else:
                out.append(words[i])
                i += 1
        return "_".join(out)


def translate_promql(text: str, telemetry: Telemetry) -> str:
    """`text` (PromQL in the contract's names) in the names of `telemetry`."""
    spelling = Spelling(telemetry)
    tokens = _tokens(text)
    out: list[str] = []
    stack: list[tuple[str, int]] = []  # open parens: (kind, argument index)
    i = 0

    def next_op(k: int) -> str:
        while k < len(tokens) and tokens[k][0] in ("space", "comment"):
            k += 1
        return tokens[k][1] if k < len(tokens) else ""

    while i < len(tokens):
        kind, text_ = tokens[i]
        if kind == "op" and text_ == "{":
            end = i + 1
            while end < len(tokens) and tokens[end][1] != "}":
                end += 1
            body = "".join(t for _, t in tokens[i + 1 : end])
            matchers = _parse_matchers(body)
            out.append("{" + ",".join(m.promql() for m in spelling.matchers(matchers)) + "}")
            i = end + 1
            continue
        if kind == "ident":
            following = next_op(i + 1)
            if following == "(" and text_ in LABEL_LISTS:
                out.append(text_)
                stack.append(("labels", 0))
                i = _skip_to_paren(tokens, i + 1, out)
                continue
            if following == "(":
                out.append(text_)
                stack.append((f"call:{text_}", 0))
                i = _skip_to_paren(tokens, i + 1, out)
                continue
            if stack and stack[-1][0] == "labels":
                out.append(", ".join(spelling.label(text_)))
            elif text_ in KEYWORDS or text_ in LABEL_LISTS:
                out.append(text_)
            elif ":" in text_:
                out.append(spelling.record(text_))
            else:
                out.append(spelling.series(text_))
            i += 1
            continue
        if kind == "op" and text_ == "(":
            stack.append(("group", 0))
        elif kind == "op" and text_ == ")":
            if stack:
                stack.pop()
        elif kind == "op" and text_ == "," and stack:
            stack[-1] = (stack[-1][0], stack[-1][1] + 1)
        elif kind == "string" and stack and stack[-1][0].startswith("call:"):
            text_ = _call_string(spelling, tokens, i, stack[-1], text_)
        out.append(text_)
        i += 1
    return "".join(out)


def _skip_to_paren(tokens: list[tuple[str, str]], k: int, out: list[str]) -> int:
    """Copy the blanks up to and including the `(` that opens a call or a label list."""
    while tokens[k][1] != "(":
        out.append(tokens[k][1])
        k += 1
    out.append("(")
    return k + 1


def _parse_matchers(body: str) -> list[Matcher]:
    return parse_matchers(body) if body.strip() else []


def _call_string(
    spelling: Spelling, tokens: list[tuple[str, str]], i: int, frame: tuple[str, int], text: str
) -> str:
    """A string argument of `label_replace` / `label_join`: label names, and the value
    written into the variant label."""
    function, position = frame[0].removeprefix("call:"), frame[1]
    if function not in LABEL_ARGUMENTS or not text.startswith('"'):
        return text
    value = unescape(text[1:-1])
    if position in LABEL_ARGUMENTS[function] and value:
        return _quote(
            spelling.one_label("label_replace") if value == VARIANT else spelling.label(value)[0]
        )
    if function == "label_replace" and position == 2 and value in ROLES:
        destination = _argument(tokens, i, 1)
        if destination == VARIANT:
            role = spelling.role_value(value)
            if role is None:
                raise UsageError(
                    "cannot write one variant's series with these variant selectors",
                    "give variants by one label with one value per role",
                )
            return _quote(role)
    return text


def _argument(tokens: list[tuple[str, str]], i: int, index: int) -> str | None:
    """The string value of argument `index` of the call whose argument token `i` is."""
    depth, k = 0, i
    while k >= 0:  # back to the call's `(`
        text = tokens[k][1]
        if text == ")":
            depth += 1
        elif text == "(":
            if depth == 0:
                break
            depth -= 1
        k -= 1
    position, depth = 0, 0
    for kind, text in tokens[k + 1 :]:
        if text in "([{":
            depth += 1
        elif text in ")]}":
            if depth == 0:
                return None
            depth -= 1
        elif text == "," and depth == 0:
            position += 1
        elif kind == "string" and position == index and depth == 0:
            return unescape(text[1:-1])
    return None


_LABELS_TEMPLATE = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def translate_template(text: str, telemetry: Telemetry) -> str:
    """An alert annotation or a legend: `$labels.variant`, `{{code}}` in the user's labels."""
    spelling = Spelling(telemetry)

    def label(match: re.Match[str]) -> str:
        return match.group(0).replace(match.group(1), "_".join(spelling.label(match.group(1))))

    return _LEGEND.sub(label, _LABELS_TEMPLATE.sub(label, text))


_WORD = re.compile(r"`([^`]+)`|\b(ws[_.][a-z0-9_.]*[a-z0-9_])|\b(\d{4})\b")


def translate_prose(text: str, telemetry: Telemetry) -> str:
    """A description in the user's names: the contract's series and beacon types, fields in
    backticks and close codes (words and numbers elsewhere are left as they are)."""
    if telemetry.is_reference:
        return text
    series = sample_names(telemetry)
    families = {f: telemetry.metric(f) for f in FAMILIES}
    codes = telemetry.label_values.get("code", {})

    def word(name: str) -> str | None:
        return (
            series.get(name)
            or families.get(name)
            or telemetry.rum_types.get(name)
            or telemetry.rum_fields.get(name)
        )

    def one(match: re.Match[str]) -> str:
        quoted, bare, code = match.groups()
        if quoted is not None:
            return f"`{word(quoted) or quoted}`"
        if bare is not None:
            return word(bare) or bare
        return codes.get(code, code)

    return _WORD.sub(one, text)
