"""The result every detector returns: what happened, when, to whom, how bad, and why.

A finding is one bounded episode (`start`..`end`) of one `kind` on one `variant`, with
the numbers behind it and one plain sentence an analyst can paste into a postmortem.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Severity = Literal["low", "medium", "high"]
SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class Finding:
    """One detected episode; `numbers` holds the evidence (counts, ratios, shares)."""

    kind: str
    start: datetime
    end: datetime
    variant: str
    severity: Severity
    sentence: str
    numbers: dict[str, Any] = field(default_factory=dict)
    detector: str = ""

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start <= end and start <= self.end

    # -- rich display in notebooks (rendering lives in wsanalysis.display) --------------
    def __repr__(self) -> str:
        from wsanalysis.display import finding_text

        return finding_text(self)

    def _repr_html_(self) -> str:
        from wsanalysis.display import finding_html

        return finding_html(self)

    def to_polars(self):
        from wsanalysis.display import findings_frame

        return findings_frame([self])

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "variant": self.variant,
            "severity": self.severity,
            "sentence": self.sentence,
            "numbers": {k: _plain(v) for k, v in self.numbers.items()},
            "detector": self.detector,
        }


@dataclass(frozen=True)
class NotRun:
    """A detector that could not run on this data, and why (so silence is never ambiguous)."""

    detector: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"detector": self.detector, "reason": self.reason}


def severity_at_least(finding: Finding, level: Severity) -> bool:
    return SEVERITY_ORDER[finding.severity] >= SEVERITY_ORDER[level]


def is_shift(finding: Finding) -> bool:
    """A level shift (one variant worse than the other all along, or since a point: its
    `numbers` say `since`), not a span in time."""
    return "since" in finding.numbers


def severity_from(value: float, medium: float, high: float) -> Severity:
    """`high` at or above `high`, `medium` at or above `medium`, else `low`."""
    if value >= high:
        return "high"
    return "medium" if value >= medium else "low"


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if value == value and abs(value) != float("inf") else None
    if hasattr(value, "item"):
        return _plain(value.item())
    return value


def dumps(
    findings: list[Finding],
    not_run: list[NotRun],
    meta: dict[str, Any],
    episodes: Sequence[Any] = (),
) -> str:
    """findings.json: the episodes (ranked, each with its findings and scope), the
    findings in time order, and the detectors that did not run."""
    document = {
        **meta,
        "episodes": [e.to_json() for e in episodes],
        "findings": [f.to_json() for f in sorted(findings, key=lambda f: (f.start, f.kind))],
        "not_run": [n.to_json() for n in not_run],
    }
    return json.dumps(document, indent=2, default=str) + "\n"
