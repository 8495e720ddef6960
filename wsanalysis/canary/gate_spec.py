"""A gate file's content as values: gates, their comparison spec, profiles, the file.

The types alone (the parser is `gates.load_gate_file`), so the statistics and the gate
kinds can name a gate without importing the parser that asks them to check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from wsanalysis.errors import UsageError
from wsanalysis.frames.selection import MetricSource

DEFAULT_GATE_FILE = Path(__file__).with_name("default_gates.yaml")


@dataclass(frozen=True)
class CompareSpec:
    """How a gate compares: against control (with a margin) or an absolute bound."""

    against: Literal["control", "bound"]
    margin: float = 0.0
    margin_type: Literal["relative", "absolute"] = "relative"
    bound: float | None = None

    def limit(self, control: float | None = None) -> float:
        """The bound on the canary's figure, given control's (for `against: control`)."""
        if self.against == "bound":
            assert self.bound is not None
            return self.bound
        if control is None:
            raise ValueError("a comparison against control needs control's figure")
        return (
            control * (1 + self.margin) if self.margin_type == "relative" else control + self.margin
        )


@dataclass(frozen=True)
class Gate:
    name: str
    title: str
    description: str
    critical: bool
    statistic: str  # the gate kind's word (canary.kinds): rate, share, spike, quantile, ...
    compare: CompareSpec
    worse: Literal["increase", "decrease"]
    tolerance: float
    confidence: float
    power: float  # planning information only: no decision uses it
    min_events: int
    min_exposure: float = 0.0
    tolerance_excess: float | None = None  # spike against control: excess per unit exposure
    unit: str = ""
    quantile: float | None = None
    bucket: timedelta | None = None
    events: MetricSource | None = None
    exposure: MetricSource | None = None
    samples: MetricSource | None = None
    prefer: Literal["prometheus", "rum"] | None = None
    promql: str | None = None
    step: timedelta | None = None  # a kind that asks a server per step (`series`)

    @property
    def detectable(self) -> float:
        """The tolerance's name before decision rule v2 (read-only alias)."""
        return self.tolerance

    @property
    def relative(self) -> bool:
        """A ratio to control (the effect, bound and tolerance are ratios)."""
        return self.compare.against == "control" and self.compare.margin_type == "relative"

    @property
    def server_series(self) -> frozenset[str]:
        """The server series the gate reads (a histogram by its `_bucket` series)."""
        names: set[str] = set()
        for source in (self.events, self.exposure, self.samples):
            if source is None:
                continue
            names.update(series.metric for series in source.prometheus)
            if source.histogram:
                names.add(f"{source.histogram}_bucket")
        return frozenset(names)

    @property
    def bound_line(self) -> float:
        """Where harm starts, on the effect's scale (ratio, difference or the figure)."""
        if self.compare.against == "bound":
            assert self.compare.bound is not None
            return self.compare.bound
        return self.compare.limit(1.0) if self.relative else self.compare.margin


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    gates: tuple[Gate, ...]
    srm_unit: Literal["sessions", "connections"] = "sessions"
    srm_alpha: float = 0.001

    def gate(self, name: str) -> Gate:
        for gate in self.gates:
            if gate.name == name:
                return gate
        raise KeyError(name)


@dataclass(frozen=True)
class GateFile:
    path: Path
    profiles: dict[str, Profile]

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise UsageError(
                f"{self.path} has no profile {name!r}",
                f"choose one of: {', '.join(sorted(self.profiles))}",
            )
        return self.profiles[name]
