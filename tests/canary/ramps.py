"""Synthetic ramps: canary cases run back to back, as a rollout moves the canary's share.

Each case is one stage (its own `canary_share`, and whatever else moves with the hour);
the server's counters run on across a change (no reset), as a Deployment's pods keep
theirs when the traffic split moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl

from wsanalysis.canary.stages import Stage
from wsanalysis.canary.synthetic import CanaryCase, synthesize


def ramp_cases(start: datetime, stages: Sequence[tuple[float, CanaryCase]]) -> list[CanaryCase]:
    """(hours, case) per stage -> the cases, each starting where the last one ended."""
    cases = []
    for hours, case in stages:
        cases.append(replace(case, hours=hours, start=start))
        start += timedelta(hours=hours)
    return cases


def ramp_samples(cases: Sequence[CanaryCase], seed: int = 0) -> pl.DataFrame:
    """The stages' server counters, continued from one stage to the next."""
    frames: list[pl.DataFrame] = []
    for number, case in enumerate(cases):
        frame, _ = synthesize(case, seed + number, False)
        if frames:  # the previous stage's last scrape is this one's first: continue from it
            keys = [c for c in frame.columns if c not in ("timestamp", "value")]
            done = pl.concat(frames, how="diagonal_relaxed")
            last = done.group_by(keys).agg(carried=pl.col("value").sort_by("timestamp").last())
            frame = (
                frame.filter(pl.col("timestamp") > case.start)
                .join(last, on=keys, how="left", nulls_equal=True)
                .with_columns(value=pl.col("value") - 1000.0 + pl.col("carried"))
                .drop("carried")
            )
        frames.append(frame)
    return pl.concat(frames, how="diagonal_relaxed")


def declared(
    cases: Sequence[CanaryCase], shares: Sequence[float | None] | None = None
) -> tuple[Stage, ...]:
    """The stages a controller declares for the cases (their own shares unless given)."""
    shares = shares if shares is not None else [c.canary_share for c in cases]
    return tuple(
        Stage(share, c.start, c.start + timedelta(hours=c.hours))
        for c, share in zip(cases, shares, strict=True)
    )
