"""What the judge is given: frames from any source, how to read them, and the declared split.

Its own module (no statistics in it), so a verdict can name the input it was judged on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from wsanalysis.canary.plan import SequentialPlan
from wsanalysis.frames.measures import FRAME_MEASURES, GateMeasures, Window
from wsanalysis.loading import NO_WARNINGS, Inputs, Loaded, SourceWarnings


@dataclass(frozen=True)
class JudgeInput:
    """The data a verdict is about: frames from any source, and the declared split.

    `measures` computes each gate's inputs (from the frames, or an engine's sums for
    RUM); `warnings` names the metric families whose figures may be incomplete (their
    gates are not decided); `inputs` is the provenance the verdict names.
    """

    samples: pl.DataFrame
    beacons: pl.DataFrame | None
    window: Window | None = None
    canary_share: float | None = None
    sequential: SequentialPlan | None = None
    measures: GateMeasures = FRAME_MEASURES
    warnings: SourceWarnings = NO_WARNINGS
    inputs: Inputs | None = None

    @classmethod
    def of(
        cls,
        loaded: Loaded,
        canary_share: float | None = None,
        sequential: SequentialPlan | None = None,
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
        )

    def resolved_window(self) -> Window | None:
        return self.window or Window.of(self.samples, self.beacons)

    @property
    def metadata(self) -> dict[str, Any]:
        """The provenance a verdict carries (verdict.json's `inputs`, `source_warnings`)."""
        found: dict[str, Any] = {"inputs": self.inputs.to_json()} if self.inputs else {}
        return {**found, "source_warnings": self.warnings.to_json()}
