"""How a pipeline watches a canary: a look every `look` through a canary of `horizon`.

A plain value, apart from the statistics that use it (`anytime`), so a judge's input can
name its plan without importing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from wsanalysis.errors import UsageError
from wsanalysis.times import parse_duration


@dataclass(frozen=True)
class SequentialPlan:
    """Looks every `look` through a canary of `horizon`: how a pipeline asks repeatedly.

    GO as soon as every gate has passed, NO_GO as soon as a gate has failed, and
    INCONCLUSIVE ("keep watching") until the horizon, then INCONCLUSIVE for good.
    """

    look: timedelta = timedelta(minutes=5)
    horizon: timedelta = timedelta(hours=48)

    @property
    def planned_looks(self) -> int:
        return max(1, math.ceil(self.horizon / self.look))


def sequential_plan(look: str = "5m", horizon: str = "48h") -> SequentialPlan:
    """Sequential mode's plan from durations as a person writes them."""
    try:
        return SequentialPlan(parse_duration(look), parse_duration(horizon))
    except ValueError as error:
        raise UsageError(f"look/horizon: {error}", "use durations like 5m and 48h") from None
