"""A/A splits of a service's own history: control made into a canary and a control.

A replay needs a canary that is known to be healthy. Control is: its pods run one
release and its users one client. So each window of control's history is split twice,
independently, as a real canary is split:

- server series by pod: the pods (the `pod` label, else `instance`) present in the
  window are dealt into two groups, about the declared share of them to the canary
  (at least one pod each side). A pod split has the share its pods carry, k of n.
- RUM beacons by session: a session is the canary when a stable 64-bit hash of its
  id, mixed with the split seed, falls below the declared share (every beacon of a
  session goes the same way, as a real traffic split keeps a user on one variant).

The data of the history's own canary (if it had one) is left out. Nothing here
decides: `replay` hands each split to the judge.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass

import numpy as np
import polars as pl

from wsanalysis.canary.evidence import CANARY, CONTROL
from wsanalysis.canary.judge import JudgeInput
from wsanalysis.errors import DataError
from wsanalysis.frames.measures import Window
from wsanalysis.loading import NO_WARNINGS, Inputs, SourceWarnings
from wsanalysis.sources.schema import empty_samples

#: Labels that name a server's pod, in order of preference (Kubernetes service
#: discovery's `pod`, then the scrape target Prometheus adds to every series).
POD_LABELS = ("pod", "instance")
#: Above this many ways to pick the canary's pods, seeds draw them at random instead.
ENUMERATED_SPLITS = 10_000
_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment


@dataclass(frozen=True)
class History:
    """Control's history, ready to split: its samples and beacons (time-sorted), the
    label naming its pods (None when its series carry none), what was left out, and the
    loader's warnings and provenance (each replay carries the warnings)."""

    samples: pl.DataFrame
    beacons: pl.DataFrame | None
    pod_label: str | None
    window: Window
    notes: tuple[str, ...] = ()
    warnings: SourceWarnings = NO_WARNINGS
    inputs: Inputs | None = None


def control_history(data: JudgeInput) -> History:
    """Control's rows of a loaded history; an error naming what was found when the
    history has no control."""
    samples, beacons = data.samples, data.beacons
    notes: list[str] = []
    found = sorted({v for v in samples["variant"].unique().to_list() if v is not None})
    if beacons is not None:
        found = sorted(set(found) | set(beacons["variant"].drop_nulls().unique().to_list()))
    if CONTROL not in found and found:
        raise DataError(
            f"the history holds no control: its variants are {', '.join(found)}",
            "name control's series with --variant-label (its values must include control) "
            'or --control-selector/--canary-selector (e.g. track="stable" / track="canary")',
        )
    unmapped = int(samples["variant"].is_null().sum())
    if not found and unmapped:
        notes.append(
            "The history's series carry no variant label: all of them are read as control."
        )
        samples = samples.with_columns(variant=pl.lit(CONTROL))
    elif unmapped:
        notes.append(f"{unmapped:,} samples map to no variant and are left out.")
    samples = samples.filter(pl.col("variant") == CONTROL).sort("timestamp")
    if beacons is not None:
        named = sorted(beacons["variant"].drop_nulls().unique().to_list())
        beacons = beacons.filter(pl.col("variant") == CONTROL).sort("ts")
        if beacons.is_empty() and named:
            notes.append(
                f"The RUM beacons name no control (their variants: {', '.join(named)}), so "
                "no RUM gate is replayed: the beacons' variant field must say control."
            )
        beacons = beacons if not beacons.is_empty() else None
    if CANARY in found:
        notes.append("The history's own canary is left out: only control is split.")
    pod_label, samples = _pods(samples, notes)
    window = Window.of(samples, beacons)
    if window is None:
        raise DataError(
            "the history holds no control data in its window",
            "check --start/--end, or the dataset folder (metrics.om, rum.ndjson.gz)",
        )
    return History(samples, beacons, pod_label, window, tuple(notes), data.warnings, data.inputs)


def _pods(samples: pl.DataFrame, notes: list[str]) -> tuple[str | None, pl.DataFrame]:
    """The label naming control's pods, and the samples that carry it."""
    if samples.is_empty():
        return None, empty_samples()
    for label in POD_LABELS:
        if label not in samples.columns or samples[label].is_null().all():
            continue
        unlabelled = samples[label].is_null().sum()
        if unlabelled:
            notes.append(
                f"{unlabelled:,} control samples carry no {label} label and are left out of "
                "the pod splits."
            )
        return label, samples.filter(pl.col(label).is_not_null())
    return None, samples


def pod_groups(pods: list[str], share: float, seeds: int, start: int = 0) -> list[tuple[str, ...]]:
    """The canary's pods for each seed: about `share` of them (at least one, and one
    left for control). The distinct choices are taken in a fixed shuffled order from
    position `start` (the replays before this window), so successive windows go on
    where the last one stopped and few seeds over few pods still try every split."""
    pods = sorted(pods)
    k = min(len(pods) - 1, max(1, round(share * len(pods))))
    if math.comb(len(pods), k) <= ENUMERATED_SPLITS:
        choices = list(itertools.combinations(pods, k))
        random.Random(0).shuffle(choices)
        return [choices[(start + seed) % len(choices)] for seed in range(seeds)]
    return [tuple(sorted(random.Random(start + seed).sample(pods, k))) for seed in range(seeds)]


def distinct_pod_splits(pods: int, share: float) -> int:
    """How many different canary groups `pod_groups` can choose among `pods` pods."""
    k = min(pods - 1, max(1, round(share * pods)))
    return math.comb(pods, k)


def session_flags(beacons: pl.DataFrame, share: float, seeds: int) -> pl.DataFrame:
    """The beacons with one boolean column per seed (`_canary_<seed>`): is the
    session in the canary. The hash is blake2b (stable across versions and machines),
    mixed per seed with splitmix64, so seeds split independently."""
    sessions = beacons["session_id"].unique().sort()
    hashes = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
            for s in sessions.to_list()
        ),
        dtype=np.uint64,
        count=len(sessions),
    )
    flags = {
        f"_canary_{seed}": _uniform(hashes, seed) < share for seed in range(seeds)
    }  # fmt: skip
    table = pl.DataFrame({"session_id": sessions, **flags})
    return beacons.join(table, on="session_id", how="left")


def _uniform(hashes: np.ndarray, seed: int) -> np.ndarray:
    """Uniform [0, 1) values from 64-bit hashes, independent across seeds (splitmix64)."""
    with np.errstate(over="ignore"):
        z = hashes + np.uint64(((seed + 1) * _GOLDEN) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def split_samples(
    samples: pl.DataFrame, pod_label: str, canary_pods: tuple[str, ...]
) -> pl.DataFrame:
    """Control's server samples with the canary group's pods relabelled `canary`."""
    in_canary = pl.col(pod_label).is_in(list(canary_pods))
    return samples.with_columns(
        variant=pl.when(in_canary).then(pl.lit(CANARY)).otherwise(pl.lit(CONTROL))
    )


def split_beacons(beacons: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Control's beacons with the seed's canary sessions relabelled `canary`."""
    flag = pl.col(f"_canary_{seed}")
    return beacons.with_columns(
        variant=pl.when(flag).then(pl.lit(CANARY)).otherwise(pl.lit(CONTROL))
    ).select(pl.exclude("^_canary_.*$"))
