"""A notebook's `parameters` cell as a typed spec, and validation before execution.

Papermill injects whatever it is given, untyped and unchecked; a typo or a wrong type
would surface as a failed cell halfway through a report, or worse as a report run on
the defaults. The cell itself is the spec: one annotated literal per line,

    canary_share: float | None = None  # declared canary share, e.g. 0.1

and `ParameterSpec.validate` rejects unknown names, coerces and checks types against
the annotations, and names the parameter in every message.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from wsanalysis.errors import UsageError

TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}
NONE_WORDS = {"", "none", "null"}


@dataclass(frozen=True)
class Parameter:
    """One line of the parameters cell: name, type, whether None is allowed, default, help."""

    name: str
    type: type
    optional: bool
    default: Any
    help: str

    @property
    def annotation(self) -> str:
        return f"{self.type.__name__} | None" if self.optional else self.type.__name__

    def coerce(self, value: Any) -> Any:
        """The value as this parameter's type; text (from `--param k=v`) is parsed."""
        if value is None or (
            isinstance(value, str) and self.optional and value.strip().lower() in NONE_WORDS
        ):
            if self.optional:
                return None
            raise UsageError(
                f"parameter {self.name!r} ({self.annotation}) cannot be empty",
                f"give a {self.type.__name__} value: {self.help}",
            )
        coerced = _coerce(self.type, value)
        if coerced is _INVALID:
            raise UsageError(
                f"parameter {self.name!r} expects {self.annotation}, got {value!r}",
                f"{self.name}: {self.help}",
            )
        return coerced


_INVALID = object()


def _coerce(kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        return _INVALID
    if kind is int:
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _INVALID
        return _INVALID
    if kind is float:
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                return _INVALID
        return _INVALID
    # str: YAML may have read a time or an epoch as a datetime or a number
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _INVALID


@dataclass(frozen=True)
class ParameterSpec:
    """The parameters of one notebook, in the cell's order."""

    parameters: tuple[Parameter, ...]

    def __getitem__(self, name: str) -> Parameter:
        return self.by_name()[name]

    def by_name(self) -> dict[str, Parameter]:
        return {p.name: p for p in self.parameters}

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}

    def validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value: defaults, overridden by `values` (checked, coerced)."""
        known = self.by_name()
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise UsageError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                + ", ".join(repr(n) for n in unknown),
                "known parameters: " + ", ".join(known),
            )
        result = self.defaults()
        for name, value in values.items():
            result[name] = known[name].coerce(value)
        return result

    def describe(self) -> str:
        """One line per parameter, for `--help`-style listings."""
        return "\n".join(
            f"  {p.name}: {p.annotation} = {p.default!r}  — {p.help}" for p in self.parameters
        )


def _comments(source: str) -> dict[int, str]:
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    return comments


def _annotation(node: ast.expr, name: str) -> tuple[type, bool]:
    optional = False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        sides = [node.left, node.right]
        nones = [s for s in sides if isinstance(s, ast.Constant) and s.value is None]
        if len(nones) != 1:
            raise ValueError(f"parameter {name}: only `T | None` unions are supported")
        node = sides[0] if sides[1] in nones else sides[1]
        optional = True
    if not isinstance(node, ast.Name) or node.id not in TYPES:
        raise ValueError(f"parameter {name}: annotation must be one of {', '.join(TYPES)}")
    return TYPES[node.id], optional


def parse_parameters_cell(source: str) -> ParameterSpec:
    """The spec written in a `parameters` cell (annotated literals, a help comment each)."""
    tree = ast.parse(source)
    comments = _comments(source)
    parameters = []
    for node in tree.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            raise ValueError(
                f"line {node.lineno}: the parameters cell holds only `name: type = literal`"
            )
        name = node.target.id
        kind, optional = _annotation(node.annotation, name)
        if node.value is None:
            raise ValueError(f"parameter {name}: needs a default literal")
        default = ast.literal_eval(node.value)
        if default is None and not optional:
            raise ValueError(f"parameter {name}: default None needs `{kind.__name__} | None`")
        if default is not None and _coerce(kind, default) is _INVALID:
            raise ValueError(f"parameter {name}: default {default!r} is not a {kind.__name__}")
        help_text = comments.get(node.lineno, "")
        if not help_text:
            raise ValueError(f"parameter {name}: needs a help comment on its line")
        parameters.append(Parameter(name, kind, optional, default, help_text))
    return ParameterSpec(tuple(parameters))


def parameters_cell(notebook: dict[str, Any]) -> str:
    """The source of the notebook's cell tagged `parameters` (there must be one)."""
    cells = [
        c
        for c in notebook.get("cells", [])
        if "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    if len(cells) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(cells)}")
    source = cells[0]["source"]
    return "".join(source) if isinstance(source, list) else source


def read_spec(notebook_path: str | Path) -> ParameterSpec:
    """The parameter spec of an `.ipynb` file."""
    notebook = json.loads(Path(notebook_path).read_text())
    return parse_parameters_cell(parameters_cell(notebook))


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`--param k=v` pairs as a dict of text values (coerced later against the spec)."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param {pair!r} is not name=value", "write e.g. canary_share=0.1")
        values[name.strip()] = value
    return values
