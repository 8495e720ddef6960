"""Gate files: what a canary must satisfy, validated before anything is computed.

A gate file (YAML) holds profiles (`canary`, `staging`, ...) of gates; each gate names
a metric (server series and/or RUM beacons), a statistic, a comparison (against
control with a margin, or an absolute bound: where harm starts), the direction that is
bad, a tolerance (the smallest harm that must never be waved through), a minimum
exposure and whether it is critical. The decision rule is written in the
default file's comments (`default_gates.yaml`) and in docs/architecture.md.

Every validation error names the file, the gate and the field.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from wsanalysis import times
from wsanalysis.canary.gate_spec import DEFAULT_GATE_FILE, CompareSpec, Gate, GateFile, Profile
from wsanalysis.canary.kinds import KINDS, GateKind, kind_for, statistics
from wsanalysis.errors import UsageError
from wsanalysis.frames.selection import MetricSource, RumFilter, Series
from wsanalysis.pushdown.series import VARIANT_PLACEHOLDER
from wsanalysis.sources.promtool import check_expressions

__all__ = [  # the types are `gate_spec`'s; named here too, where a gate file is read
    "DEFAULT_GATE_FILE",
    "CompareSpec",
    "Gate",
    "GateFile",
    "MetricSource",
    "Profile",
    "Series",
    "load_gate_file",
]

#: libyaml's safe loader when PyYAML has it (ten times faster: the service reads the file
#: at every look), else the pure-Python one; both build the same document
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Reader:
    """Reads one gate's mapping and reports errors with the gate and field named."""

    def __init__(self, path: Path, where: str, data: Any) -> None:
        self.path, self.where = path, where
        if not isinstance(data, dict):
            self.fail("", f"must be a mapping, got {type(data).__name__}")
        self.data: dict[str, Any] = data

    def fail(self, name: str, problem: str, fix: str = "") -> None:
        field_name = f", field {name!r}" if name else ""
        raise UsageError(
            f"gate file {self.path}: {self.where}{field_name} {problem}",
            fix or "see the comments of wsanalysis/canary/default_gates.yaml for the format",
        )

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ..., choices=None):
        if name not in self.data:
            if default is ...:
                self.fail(name, "is missing")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            expected = (
                kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            )
            self.fail(name, f"must be {expected}, got {value!r}")
        if choices is not None and value not in choices:
            self.fail(name, f"is {value!r}; choose one of {', '.join(map(str, choices))}")
        return value

    def unknown(self, known: set[str]) -> None:
        extra = sorted(set(self.data) - known)
        if extra:
            self.fail(extra[0], "is not a known field", f"known fields: {', '.join(sorted(known))}")


def _source(reader: _Reader, name: str) -> MetricSource | None:
    if name not in reader.data:
        return None
    sub = _Reader(reader.path, f"{reader.where}, {name}", reader.data[name])
    sub.unknown({"prometheus", "rum", "histogram"})
    series: list[Series] = []
    for text in sub.get("prometheus", list, []):
        try:
            series.append(Series.parse(str(text)))
        except (ValueError, UsageError) as error:
            sub.fail("prometheus", f"has a bad selector: {error}")
    rum = None
    if "rum" in sub.data:
        spec = _Reader(reader.path, f"{reader.where}, {name}.rum", sub.data["rum"])
        spec.unknown({"type", "field", "scale", "where"})
        rum = RumFilter(
            type=spec.get("type", str),
            column=spec.get("field", str, None),
            scale=spec.get("scale", float, 1.0),
            where=spec.get("where", dict, {}),
        )
    histogram = sub.get("histogram", str, None)
    if not series and rum is None and histogram is None:
        sub.fail("", "names no data: give prometheus series, a rum filter or a histogram")
    return MetricSource(tuple(series), rum, histogram)


def _gate(path: Path, index: int, data: Any, defaults: dict[str, Any]) -> Gate:
    name = data.get("name") if isinstance(data, dict) else None
    reader = _Reader(path, f"gate {name!r}" if name else f"gate #{index + 1}", data)
    reader.unknown(
        {
            "name", "title", "description", "critical", "statistic", "quantile", "bucket",
            "unit", "events", "exposure", "samples", "prefer", "promql", "compare", "worse",
            "tolerance", "detectable", "confidence", "power", "min_events", "min_exposure",
            "tolerance_excess", "step",
        }
    )  # fmt: skip
    name = reader.get("name", str)
    if not re.match(r"^[a-z][a-z0-9_]*$", name):
        reader.fail("name", "must be lower_snake_case (it is used as an identifier)")
    statistic = reader.get("statistic", str, choices=statistics())
    compare_reader = _Reader(path, f"gate {name!r}, compare", reader.get("compare", dict))
    compare_reader.unknown({"against", "margin", "margin_type", "bound"})
    against = compare_reader.get("against", str, choices=("control", "bound"))
    compare = CompareSpec(
        against=against,
        margin=compare_reader.get("margin", float, 0.0),
        margin_type=compare_reader.get("margin_type", str, "relative", ("relative", "absolute")),
        bound=compare_reader.get("bound", float) if against == "bound" else None,
    )
    if compare.margin < 0:
        compare_reader.fail("margin", "must not be negative (the direction is set by `worse`)")
    kind = kind_for(statistic, against)  # what a gate of this statistic must give
    unsuited = kind.check_compare(statistic, compare)
    if unsuited is not None:
        compare_reader.fail(*unsuited)
    quantile = reader.get("quantile", float, None)
    if kind.quantile and (quantile is None or not 0 < quantile < 1):
        reader.fail("quantile", "must be a number strictly between 0 and 1 for this statistic")
    bucket = None
    if kind.bucketed:
        try:
            bucket = times.parse_duration(reader.get("bucket", str))
        except ValueError as error:
            reader.fail("bucket", str(error))
    found = {name: _source(reader, name) for name in ("events", "exposure", "samples")}
    for needed in kind.sources:
        if found[needed] is None:
            reader.fail(needed, f"is required for a {statistic}")
    confidence = reader.get("confidence", float, defaults.get("confidence", 0.95))
    power = reader.get("power", float, defaults.get("power", 0.80))
    for field_name, value in (("confidence", confidence), ("power", power)):
        if not 0.5 <= value < 1:
            reader.fail(field_name, f"is {value}; it must lie in [0.5, 1)")
    tolerance = _tolerance(reader, compare, statistic)
    worse = reader.get("worse", str, choices=("increase", "decrease"))
    _check_tolerance(reader, compare, worse, tolerance)
    tolerance_excess = reader.get("tolerance_excess", float, None)
    if tolerance_excess is not None and not (
        kind.excess and compare.against == "control" and tolerance_excess > 0
    ):
        reader.fail(
            "tolerance_excess",
            "is for a spike gate against control, and must be positive",
            "give it as events per unit exposure (e.g. 0.005: half a percent of connections)",
        )
    # a kind whose exposure is not connections does not take the file's default
    inherited = float(defaults.get("min_exposure", 0.0)) if kind.connection_exposure else 0.0
    min_exposure = reader.get("min_exposure", float, inherited)
    if min_exposure < 0:
        reader.fail("min_exposure", "must not be negative")
    unfit = kind.check_fields(statistic, reader.data)
    if unfit is not None:
        reader.fail(*unfit)
    return Gate(
        name=name,
        title=reader.get("title", str, name.replace("_", " ")),
        description=" ".join(reader.get("description", str, "").split()),
        critical=reader.get("critical", bool, False),
        statistic=statistic,
        compare=compare,
        worse=worse,
        tolerance=tolerance,
        confidence=confidence,
        power=power,
        min_events=reader.get("min_events", int, defaults.get("min_events", 20)),
        min_exposure=min_exposure,
        tolerance_excess=tolerance_excess,
        unit=reader.get("unit", str, ""),
        quantile=quantile,
        bucket=bucket,
        events=found["events"],
        exposure=found["exposure"],
        samples=found["samples"],
        prefer=reader.get("prefer", str, None, ("prometheus", "rum")),
        promql=" ".join(reader.get("promql", str, "").split()) or None,
        step=_step(reader, kind),
    )


def _step(reader: _Reader, kind: GateKind) -> timedelta | None:
    """The query step of a kind that asks a server per step (default 1m); None otherwise."""
    if not kind.stepped:
        if "step" in reader.data:
            stepped = sorted({w for k in KINDS if k.stepped for w in k.statistics})
            reader.fail("step", f"is for a gate of statistic {' or '.join(stepped)}")
        return None
    try:
        step = times.parse_duration(reader.get("step", str, "1m"))
    except ValueError as error:
        reader.fail("step", str(error))
    if step.total_seconds() <= 0:
        reader.fail("step", "must be a positive duration, e.g. 1m")
    return step


def _promql_checked(path: Path, profiles: dict[str, Profile]) -> None:
    """Every gate's `promql:` parses (promtool), `{variant}` read as one variant's matcher."""
    expressions = {
        f"gate {gate.name!r} (profile {name!r})": gate.promql.replace(
            VARIANT_PLACEHOLDER, 'variant="canary"'
        )
        for name, profile in profiles.items()
        for gate in profile.gates
        if gate.promql
    }
    check_expressions(expressions, f"gate file {path}")


def _tolerance(reader: _Reader, compare: CompareSpec, statistic: str) -> float:
    """`tolerance`, or `detectable` from a gate file written before decision rule v2.

    The old name is mapped (same figure, same scale): it was "the harm a pass must have
    been able to see"; it is now "the harm a pass must rule out", a stricter reading of
    the same line.
    """
    if "tolerance" in reader.data and "detectable" in reader.data:
        reader.fail(
            "detectable",
            "and 'tolerance' are both given; 'detectable' is the old name of 'tolerance'",
            "keep only 'tolerance' (decision rule v2)",
        )
    name = "tolerance" if "tolerance" in reader.data else "detectable"
    if name not in reader.data:
        reader.fail(
            "tolerance",
            "is missing: the smallest harm that must never be waved through, on the "
            "gate's scale (e.g. 1.5 for a rate ratio, 0.150 for +150 ms)",
        )
    return reader.get(name, float)


def _check_tolerance(reader: _Reader, compare: CompareSpec, worse: str, tolerance: float) -> None:
    """The tolerance lies at or beyond the bound, on the bad side: harm starts at the
    bound, and the tolerance is harm that must never pass."""
    bound = (
        compare.bound
        if compare.against == "bound"
        else (compare.limit(1.0) if compare.margin_type == "relative" else compare.margin)
    )
    assert bound is not None
    if compare.against == "control" and compare.margin_type == "relative" and tolerance <= 0:
        reader.fail("tolerance", f"is {tolerance}; a ratio to control must be positive")
    beyond = tolerance >= bound if worse == "increase" else tolerance <= bound
    if compare.against == "control" and compare.margin_type == "absolute":
        beyond = tolerance >= bound  # a difference: `margin` and `tolerance` are magnitudes
    if not beyond:
        side = "at or above" if worse == "increase" else "at or below"
        reader.fail(
            "tolerance",
            f"is {tolerance:g}, inside the bound {bound:g}; it must lie {side} the bound "
            "(harm starts at the bound; the tolerance is harm that must never pass)",
        )


def load_gate_file(path: str | Path | None = None) -> GateFile:
    """Read and validate a gate file (the default production gates when `path` is None)."""
    path = Path(path) if path is not None else DEFAULT_GATE_FILE
    if not path.is_file():
        raise UsageError(
            f"gate file {path} does not exist",
            f"pass an existing YAML file, or omit --gates for {DEFAULT_GATE_FILE.name}",
        )
    try:
        document = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UsageError(
            f"gate file {path} is not valid YAML{where}: {error}", "fix the syntax"
        ) from None
    top = _Reader(path, "top level", document)
    top.unknown({"version", "defaults", "profiles"})
    if top.get("version", int, 1) != 1:
        top.fail("version", "is not supported; this wsanalysis reads version 1")
    defaults = top.get("defaults", dict, {})
    profiles: dict[str, Profile] = {}
    for profile_name, profile_data in top.get("profiles", dict).items():
        profile = _Reader(path, f"profile {profile_name!r}", profile_data)
        profile.unknown({"description", "gates", "srm"})
        gate_list = profile.get("gates", list)
        if not gate_list:
            profile.fail("gates", "is empty; a profile needs at least one gate")
        gates = tuple(_gate(path, i, g, defaults) for i, g in enumerate(gate_list))
        names = [g.name for g in gates]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            profile.fail("gates", f"has two gates named {duplicate!r}")
        srm = _Reader(path, f"profile {profile_name!r}, srm", profile.get("srm", dict, {}))
        srm.unknown({"unit", "alpha"})
        profiles[profile_name] = Profile(
            name=profile_name,
            description=" ".join(profile.get("description", str, "").split()),
            gates=gates,
            srm_unit=srm.get("unit", str, "sessions", ("sessions", "connections")),
            srm_alpha=srm.get("alpha", float, 0.001),
        )
    _promql_checked(path, profiles)
    return GateFile(path, profiles)
