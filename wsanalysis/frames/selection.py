"""What a figure reads: server series selectors, beacon filters, and the variant mapping.

These are the shared vocabulary of the gate file (canary) and the incident detectors:
both select per variant from the same tidy frames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from wsanalysis.sources.variants import Matcher, parse_matchers

_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?$")


@dataclass(frozen=True)
class Series:
    """One server series selector: a metric name and label matchers."""

    metric: str
    matchers: tuple[Matcher, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Series:
        match = _SERIES.match(text.strip())
        if not match:
            raise ValueError(f'{text!r} is not a series selector like name{{label="v"}}')
        matchers = tuple(parse_matchers(match.group(2))) if match.group(2) else ()
        return cls(match.group(1), matchers)

    def promql(self) -> str:
        inner = ",".join(m.promql() for m in self.matchers)
        return f"{self.metric}{{{inner}}}" if inner else self.metric


@dataclass(frozen=True)
class RumFilter:
    """Which beacons count (by `type`, optional field equalities) and which column to read.

    `column` is the YAML `field`: the RUM frame column holding the value (e.g. `ttfb_ms`),
    multiplied by `scale` to reach the gate's unit.
    """

    type: str
    column: str | None = None
    scale: float = 1.0
    where: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSource:
    """A figure read from server series, RUM beacons, or both."""

    prometheus: tuple[Series, ...] = ()
    rum: RumFilter | None = None
    histogram: str | None = None  # histogram family name (…_bucket series)
