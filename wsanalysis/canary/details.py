"""What each statistic found besides its estimate and interval: typed, one class each.

A gate's evidence carries one of these (`GateEvidence.details`) and, in sequential mode,
what the looks added (`GateEvidence.sequence`); the sentences and the report read their
attributes, and verdict.json writes them (`to_json`) under the evidence's `details`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Details:
    """Base: every field, in order, is written to verdict.json."""

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RateDetails(Details):
    """A rate against control: the dispersion the interval used (overdispersion and
    autocorrelation measured by batch means), over how many time buckets."""

    dispersion: float
    buckets: int


@dataclass(frozen=True)
class BoundDetails(Details):
    """One rate against an absolute bound: the dispersion the interval used."""

    dispersion: float


@dataclass(frozen=True)
class SpikeDetails(Details):
    """The worst time bucket (its counts, ratio and start) and the window-wide claim."""

    worst_bucket: str
    worst_bucket_ratio: float | None
    worst_bucket_events: float
    worst_bucket_exposure: float
    worst_bucket_control_events: float
    worst_bucket_control_exposure: float
    buckets_failing: int
    buckets: int
    dispersion: float
    p_excess: float | None
    excess_high: float | None


@dataclass(frozen=True)
class SurvivalDetails(Details):
    """Connections that closed, and those still open (censored), on the canary."""

    events: int
    censored: int


@dataclass(frozen=True)
class SprtDetails(Details):
    """Sequential rates: the e-values of both claims and the first look that rejected."""

    e_value_harm: float
    e_value_safe: float
    first_rejecting_look: str | None
    looks: int


@dataclass(frozen=True)
class QuantileSequenceDetails(Details):
    """Sequential quantiles: each variant's session design effect, and the looks."""

    design_effect: list[float]
    looks: int


@dataclass(frozen=True)
class SeriesDetails(Details):
    """A series gate's PromQL: the steps at which both variants had a value."""

    steps: int
