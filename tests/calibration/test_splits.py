"""The A/A splits: sessions by a stable seeded hash at the declared share, pods into
groups of about the share, and each window read as the judge reads it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from scipy import stats

from wsanalysis.calibration.replay import _in_window, history_windows
from wsanalysis.calibration.splits import (
    control_history,
    pod_groups,
    session_flags,
    split_beacons,
    split_samples,
)
from wsanalysis.canary.judge import JudgeInput
from wsanalysis.errors import DataError
from wsanalysis.frames.measures import Window
from wsanalysis.loading import DataSource, load
from wsanalysis.sources.schema import TIMESTAMP

from .conftest import DATA


def _beacons(sessions: int, per_session: int = 3) -> pl.DataFrame:
    ids = [f"s-{i:07d}" for i in range(sessions) for _ in range(per_session)]
    return pl.DataFrame({"session_id": ids, "ts": list(range(len(ids))), "variant": "control"})


def test_sessions_split_at_the_declared_share_whole_and_independently_per_seed() -> None:
    beacons = _beacons(40_000)
    flagged = session_flags(beacons, 0.1, seeds=3)
    per_session = flagged.group_by("session_id").agg(
        pl.col("_canary_0").n_unique().alias("ways"), pl.col("_canary_0").first(),
        pl.col("_canary_1").first(), pl.col("_canary_2").first(),
    )  # fmt: skip
    assert per_session["ways"].max() == 1  # a session's beacons all go the same way
    n = per_session.height
    for seed in range(3):
        canary = int(per_session[f"_canary_{seed}"].sum())
        assert stats.binomtest(canary, n, 0.1).pvalue > 1e-3, (seed, canary)
    both = int((per_session["_canary_0"] & per_session["_canary_1"]).sum())
    assert stats.binomtest(both, n, 0.01).pvalue > 1e-3  # seeds split independently
    split = split_beacons(flagged, 1)
    assert set(split["variant"].unique()) == {"canary", "control"}
    assert not any(c.startswith("_canary_") for c in split.columns)


def test_the_session_hash_is_stable_across_runs_and_frames() -> None:
    # the same session id is canary or not whatever else the frame holds
    small = session_flags(_beacons(50), 0.3, seeds=2)
    large = session_flags(_beacons(5_000), 0.3, seeds=2)
    joined = small.join(large, on=["session_id", "ts"], suffix="_large")
    assert joined["_canary_0"].equals(joined["_canary_0_large"], check_names=False)
    # pinned to blake2b and splitmix64 written out in plain integers: no library's own
    # hash, whose values may change between versions, decides who is the canary
    for session, flag in small.select("session_id", "_canary_1").unique().iter_rows():
        assert flag == (_reference_uniform(session, seed=1) < 0.3), session


def _reference_uniform(session: str, seed: int) -> float:
    mask = 2**64 - 1
    z = int.from_bytes(hashlib.blake2b(session.encode(), digest_size=8).digest(), "little")
    z = (z + (seed + 1) * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return (z >> 11) / 2**53


def test_pod_groups_take_about_the_share_and_try_every_split_first() -> None:
    pods = [f"control-{i}" for i in range(4)]
    groups = pod_groups(pods, 0.1, seeds=6)
    assert all(len(g) == 1 for g in groups)  # at least one pod, about 10% of four
    assert len(set(groups[:4])) == 4 and groups[4] == groups[0]
    # the next window goes on where the last stopped: 3 seeds a window still try all 4
    assert pod_groups(pods, 0.1, 3) + pod_groups(pods, 0.1, 3, start=3) == groups
    ten = [f"p{i:02d}" for i in range(10)]
    assert all(len(g) == 3 for g in pod_groups(ten, 0.3, seeds=5))
    assert all(len(g) == 1 for g in pod_groups(["a", "b"], 0.9, seeds=3))  # one left for control
    many = [f"p{i:03d}" for i in range(60)]
    drawn = pod_groups(many, 0.2, seeds=5)  # C(60, 12) is too many to list: drawn per seed
    assert len(set(drawn)) == 5 and all(len(g) == 12 for g in drawn)
    assert drawn == pod_groups(many, 0.2, seeds=5)


def _everything(**window: str) -> JudgeInput:
    """Every series and beacon of aa_baseline (in a window), as the one loader reads it."""
    return JudgeInput.of(load(DataSource.of(data=DATA / "aa_baseline", **window)))


def test_split_samples_relabels_the_canary_groups_pods() -> None:
    history = control_history(_everything())
    split = split_samples(history.samples, "pod", ("control-2",))
    canary = split.filter(pl.col("variant") == "canary")
    assert canary["pod"].unique().to_list() == ["control-2"]
    assert split.height == history.samples.height


def test_each_window_reads_what_the_judge_reads_for_that_window() -> None:
    whole = _everything()
    history = control_history(whole)
    span = history_windows(history.window, timedelta(hours=1))[3]
    direct = _everything(start=span.start.isoformat(), end=span.end.isoformat())
    control = direct.samples.filter(pl.col("variant") == "control")
    mine = _in_window(history.samples, "timestamp", span, closed="both")
    assert mine.sort(mine.columns).equals(control.sort(control.columns))
    beacons = direct.beacons.filter(pl.col("variant") == "control")
    replayed = _in_window(history.beacons, "ts", span, closed="left")
    assert replayed.sort("ts", "session_id", "type").equals(
        beacons.sort("ts", "session_id", "type")
    )


def _frame(variants: list[str | None]) -> pl.DataFrame:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "timestamp": [start + timedelta(minutes=i) for i in range(len(variants))],
            "metric": "ws_connections_total",
            "variant": variants,
            "value": [float(i) for i in range(len(variants))],
        },
        schema_overrides={"variant": pl.Utf8},
    ).with_columns(pl.col("timestamp").cast(TIMESTAMP))


def test_a_history_without_control_names_what_it_holds() -> None:
    data = JudgeInput(_frame(["stable", "canary", "stable"]), None)
    with pytest.raises(DataError, match="its variants are canary, stable") as caught:
        control_history(data)
    assert "--variant-label" in caught.value.fix


def test_a_history_without_any_variant_is_read_as_control_and_says_so() -> None:
    history = control_history(JudgeInput(_frame([None, None, None]), None))
    assert history.samples["variant"].unique().to_list() == ["control"]
    assert any("no variant label" in note for note in history.notes)
    assert history.window == Window(
        history.samples["timestamp"][0], history.samples["timestamp"][-1]
    )
