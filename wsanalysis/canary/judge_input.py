"""What the judge is given: frames from any source, how to read them, and the declared split.

Its own module (no statistics in it), so a verdict can name the input it was judged on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from wsanalysis.canary.plan import SequentialPlan
from wsanalysis.frames.coverage import NOTHING_MISSING, Coverage
from wsanalysis.frames.measures import FRAME_MEASURES, GateMeasures, Window
from wsanalysis.loading import NO_WARNINGS, Inputs, Loaded, SourceWarnings


@dataclass(frozen=True)
class JudgeInput:
    """The data a verdict is about: frames from any source, and the declared split.

    `measures` computes each gate's inputs (from the frames, or an engine's sums for
    RUM); `warnings` names the metric families whose figures may be incomplete (their
    gates are not decided); `inputs` is the provenance the verdict names; `series` holds
    the per-step values of the gates whose figure a server computes (timestamp, query,
    variant, value); `coverage` what the checks of the data against the gates found.
    """

    samples: pl.DataFrame
    beacons: pl.DataFrame | None
    window: Window | None = None
    canary_share: float | None = None
    sequential: SequentialPlan | None = None
    measures: GateMeasures = FRAME_MEASURES
    warnings: SourceWarnings = NO_WARNINGS
    inputs: Inputs | None = None
    series: pl.DataFrame | None = None
    coverage: Coverage = NOTHING_MISSING

    @classmethod
    def of(
        cls,
        loaded: Loaded,
        canary_share: float | None = None,
        sequential: SequentialPlan | None = None,
        coverage: Coverage = NOTHING_MISSING,
    ) -> JudgeInput:
        """What the one loader read (`wsanalysis.loading.load`), as the judge's input."""
        return cls(
            loaded.samples,
            loaded.beacons,
            loaded.window,
            canary_share,
            sequential,
            loaded.measures,
            loaded.warnings,
            loaded.inputs,
            loaded.series,
            coverage,
        )

    def resolved_window(self) -> Window | None:
        """The window asked for, else the data's own (the series gates' values when the
        gates read nothing else: a profile of series gates on a dataset folder)."""
        own = self.window or Window.of(self.samples, self.beacons)
        if own is None and self.series is not None:
            return Window.of(self.series, None)
        return own

    @property
    def metadata(self) -> dict[str, Any]:
        """The provenance a verdict carries (verdict.json's `inputs`, `source_warnings`)."""
        found: dict[str, Any] = {"inputs": self.inputs.to_json()} if self.inputs else {}
        return {**found, "source_warnings": self.warnings.to_json()}
