"""The OpenMetrics / Prometheus text grammar: the regexes and the label parser that the
reader (`openmetrics`) and the rule checker (`om_rules`) share.

One place for the line grammar, so the rules judge a line exactly as the reader reads it.
"""

from __future__ import annotations

import re
from typing import Literal

Format = Literal["openmetrics", "prometheus"]

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABELS = r'(?:[^"}]|"(?:[^"\\]|\\.)*")*'
SAMPLE = (
    rf"^(?P<name>{NAME})(?:\{{(?P<labels>{LABELS})\}})?[ \t]+(?P<value>[^ \t#]+)"
    r"(?:[ \t]+(?P<ts>[^ \t#]+))?[ \t]*(?:#.*)?$"
)
# The exemplar (or comment) after a sample: group 1, from the blank before its `#`.
SAMPLE_EXEMPLAR = rf"^{NAME}(?:\{{{LABELS}\}})?[ \t]+[^ \t#]+(?:[ \t]+[^ \t#]+)?([ \t]*#.*)$"
# A series alone, as the start of `SAMPLE` reads it.
SERIES = rf"^(?P<name>{NAME})(?:\{{(?P<labels>{LABELS})\}})?$"
# Something other than white space, and not a `#`, first: `strip() != ""` and not
# `strip().startswith("#")`, as one cheap regex (`\s` is Unicode White_Space, like strip).
SAMPLE_START = r"^\s*[^\s#]"
_LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
_UNESCAPE = re.compile(r'\\[\\"n]')


def parse_labels(text: str) -> dict[str, str]:
    """The label pairs inside `{...}` (without the braces), unescaped; a ValueError says
    where the text cannot be read."""
    labels: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _LABEL_PAIR.match(text, position)
        if not match:
            raise ValueError(f"cannot read labels near {text[position:][:40]!r}")
        name, value = match.group(1), _UNESCAPE.sub(lambda m: _ESCAPES[m.group(0)], match.group(2))
        if name in labels:
            raise ValueError(f"label {name!r} appears twice")
        labels[name] = value
        position = match.end()
        if match.group(3) == "" and position < len(text):
            raise ValueError(f"missing comma before {text[position:][:40]!r}")
    return labels
