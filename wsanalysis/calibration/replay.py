"""The judge replayed on A/A splits of a service's own history (`wsanalysis calibrate`).

The history is read once (the one loader, raw: the splits need the pod labels a
push-down sums away), control is cut into consecutive
windows of the canary's length, and each window is split into an A/A pair several
times (`splits`: pods into two groups, sessions by a seeded hash). Each split is judged
by the library's `judge`, the gate-level path the CLI uses, never the CLI itself. The
tallies are the document `calibration.json` holds:

- `verdicts` and, per gate, its decisions, its median dispersion and what it was
  replayed on (pods or sessions), or why it could not be;
- `false_no_go`: the share of NO_GO (every replay is a healthy canary, so every NO_GO
  is false) with a 95% interval that counts windows, not seeds, as independent when the
  seeds of a window disagree too little to tell (`reading.effective_replays`);
- `plan`: per gate, how long a healthy canary at the declared share and this traffic
  needs to pass (the standard error the replays measured, projected to the gate's
  power, at the declared share);
- `pods`: NO_GO per pod when it was in the canary group (a pod unlike the others
  shows as NO_GO whenever it is);
- `sentences`: what the CLI prints and the report shows (`reading`).
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import polars as pl
from scipy import stats
from tqdm import tqdm

from wsanalysis.calibration import reading
from wsanalysis.calibration.splits import (
    History,
    control_history,
    distinct_pod_splits,
    pod_groups,
    session_flags,
    split_beacons,
    split_samples,
)
from wsanalysis.canary.details import SpikeDetails
from wsanalysis.canary.evidence import CANARY, one_sided_alpha
from wsanalysis.canary.gates import Gate, Profile
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.canary.reads import gate_metric_names, gate_rum_columns
from wsanalysis.canary.verdict import GateResult, Verdict
from wsanalysis.errors import DataError, UsageError
from wsanalysis.frames.counters import total_increase
from wsanalysis.frames.measures import Window
from wsanalysis.loading import DataSource, Reads, load
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL
from wsanalysis.sources.schema import empty_samples
from wsanalysis.version import __version__

DEFAULT_SEEDS = 5
WINDOW_SLACK = 0.01  # of a window: how short of it a history may fall and still fill it
DECISIONS = ("pass", "fail", "inconclusive", "no_data")
OVERALL = ("GO", "NO_GO", "INCONCLUSIVE")
LOW_EXPOSURE = "the canary's exposure was below the gate's minimum"


def load_history(profile: Profile, source: DataSource) -> JudgeInput:
    """The history the replays split, read by the one loader for the gates' series and
    RUM fields. From a server every raw sample is read (the pod labels the splits need
    are summed away by the push-down) and RUM beacons are read into memory (the splits
    relabel sessions), whatever engine the source named."""
    if source.server is not None and not source.server.raw:
        source = replace(source, metrics=replace(source.server, raw=True))
    source = replace(source, engine="polars")
    reads = Reads(
        metrics=tuple(gate_metric_names(profile)),
        rum_columns=tuple(gate_rum_columns(profile, source.variants.label)),
    )
    return JudgeInput.of(load(source, reads))


def history_windows(span: Window, length: timedelta) -> list[Window]:
    """Consecutive windows of `length` from the history's start (the rest left out).

    A history up to 1% short of a whole number of windows (a last scrape just before the
    hour) still fills the last one, as `judge --end` past the last scrape would."""
    if length.total_seconds() <= 0:
        raise UsageError(f"--window {length} is not positive", "give a duration such as 1h")
    count = int(span.duration / length + WINDOW_SLACK)
    if count == 0:
        raise DataError(
            f"the history holds {_spoken(span.duration)} of control data, less than one "
            f"window of {_spoken(length)}",
            f"give a longer history, or --window {_written(span.duration)} or shorter "
            "(the length of the canaries to calibrate for)",
        )
    return [Window(span.start + i * length, span.start + (i + 1) * length) for i in range(count)]


def _parts(length: timedelta) -> list[tuple[int, str]]:
    seconds = round(length.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return [(n, unit) for n, unit in ((hours, "h"), (minutes, "min"), (seconds, "s")) if n]


def _spoken(length: timedelta) -> str:
    """`2 h 5 min`, `59 min 45 s`: a length as a person reads it."""
    return " ".join(f"{n} {unit}" for n, unit in _parts(length)) or "0 s"


def _written(length: timedelta) -> str:
    """`2h5m`, `59m45s`: a length as --window reads it."""
    return "".join(f"{n}{unit[0]}" for n, unit in _parts(length)) or "1s"


@dataclass
class _GateTally:
    decisions: Counter = field(default_factory=Counter)
    dispersion: list[float] = field(default_factory=list)
    sources: Counter = field(default_factory=Counter)
    settle: list[float] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)


@dataclass
class _Tally:
    verdicts: Counter = field(default_factory=Counter)
    gates: dict[str, _GateTally] = field(default_factory=lambda: defaultdict(_GateTally))
    srm_trips: int = 0
    pods_in_canary: Counter = field(default_factory=Counter)
    pods_no_go: Counter = field(default_factory=Counter)
    pod_splits: set = field(default_factory=set)
    no_go_by_window: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    replays_by_window: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    pod_shares: list[float] = field(default_factory=list)


def gate_sources(gate: Gate) -> tuple[bool, bool]:
    """(reads server series, reads RUM beacons): what a split must provide for the gate."""
    if gate.samples is not None:
        return bool(gate.server_series), gate.samples.rum is not None
    rum = gate.events is not None and gate.exposure is not None
    rum = rum and gate.events.rum is not None and gate.exposure.rum is not None
    return bool(gate.server_series), rum


def calibrate(
    profile: Profile,
    data: JudgeInput,
    *,
    window: timedelta,
    share: float,
    seeds: int = DEFAULT_SEEDS,
    progress: bool = False,
) -> dict[str, Any]:
    """Replay `profile`'s judge on A/A splits of `data` (a loaded history): every
    window of `window` in it, `seeds` splits each. Returns the calibration document."""
    if not 0 < share < 1:
        raise UsageError(f"canary share {share} is not in (0, 1)", "give e.g. 0.1")
    if seeds < 1:
        raise UsageError(f"{seeds} split seeds", "give at least 1 (5 is the default)")
    history = control_history(data)
    windows = history_windows(history.window, window)
    notes = list(history.notes)
    left_out = history.window.duration - len(windows) * window
    if left_out.total_seconds() >= 1:  # (negative when the last window was filled)
        notes.append(
            f"The last {_spoken(left_out)} of the history, shorter than a window, is left out."
        )
    beacons = session_flags(history.beacons, share, seeds) if history.beacons is not None else None
    pods_everywhere = _pod_counts(history, windows)
    split_pods = max(pods_everywhere, default=0) >= 2
    replayable, not_replayable = _replayable(profile, split_pods, beacons is not None, history)
    if not replayable:
        reasons = "; ".join(f"{name}: {why}" for name, why in not_replayable.items())
        raise DataError(
            f"no gate of profile {profile.name} can be replayed on this history ({reasons})",
            "give a history whose server series carry a pod or instance label, or one with "
            "RUM beacons (--rum, or rum.ndjson.gz in the folder)",
        )
    replayed = replace(profile, gates=tuple(g for g in profile.gates if g.name in replayable))
    srm_on_sessions = profile.srm_unit == "sessions" and beacons is not None
    tally = _Tally()
    skipped = 0
    with tqdm(
        total=len(windows) * seeds,
        desc="A/A replays",
        unit="replay",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for index, span in enumerate(windows):
            samples_w = _in_window(history.samples, "timestamp", span, closed="both")
            beacons_w = (
                _in_window(beacons, "ts", span, closed="left") if beacons is not None else None
            )
            if samples_w.is_empty() and (beacons_w is None or beacons_w.is_empty()):
                skipped += 1
                bar.update(seeds)
                continue
            pods = _live_pods(samples_w, history.pod_label)
            groups = pod_groups(pods, share, seeds, index * seeds) if len(pods) >= 2 else None
            for seed in range(seeds):
                replay = _replay_input(
                    history, samples_w, beacons_w, span, groups, seed, share, srm_on_sessions
                )
                verdict = judge(replayed, replay)
                canary_pods = groups[seed] if groups else ()
                pod_share = _pod_share(replay.samples) if groups else None
                _count(tally, replayed, verdict, index, canary_pods, pod_share, share, span)
                bar.update(1)
    if skipped:
        notes.append(f"{skipped} window(s) held no control data and were not replayed.")
    if split_pods and min(pods_everywhere, default=0) < 2:
        short = sum(1 for n in pods_everywhere if n < 2)
        notes.append(
            f"{short} window(s) had fewer than two control pods: their server-series gates "
            "had no data to compare."
        )
    document = _document(
        profile, replayed, tally, windows, window, share, seeds, history, not_replayable,
        notes, srm_on_sessions, pods_everywhere,
    )  # fmt: skip
    document["sentences"] = reading.sentences(document)
    return document


def _live_pods(samples: pl.DataFrame, label: str | None) -> list[str]:
    """The pods scraped at least twice in a window's samples: one scrape (a pod gone at
    the window's first instant, or born at its last) shows no increase to split."""
    if label is None or samples.is_empty():
        return []
    scrapes = samples.group_by(label).agg(pl.col("timestamp").n_unique().alias("n"))
    return sorted(scrapes.filter(pl.col("n") >= 2)[label].to_list())


def _pod_counts(history: History, windows: list[Window]) -> list[int]:
    """Live control pods in each window."""
    return [
        len(
            _live_pods(
                _in_window(history.samples, "timestamp", w, closed="both"), history.pod_label
            )
        )
        for w in windows
    ]


def _replayable(
    profile: Profile, split_pods: bool, has_rum: bool, history: History
) -> tuple[list[str], dict[str, str]]:
    """The gates a split can feed, and for the others why not."""
    if history.samples.is_empty():
        server_why = "the history has no control server series"
    elif history.pod_label is None:
        server_why = (
            "control's server series carry no pod or instance label, so they cannot be split"
        )
    else:
        pods = history.samples[history.pod_label].unique().sort().to_list()
        server_why = (
            f"control runs on one pod ({pods[0]}) in every window: no pod split"
            if len(pods) == 1
            else f"control runs on one pod at a time ({len(pods)} over the history): no pod split"
        )
    rum_why = "the history holds no RUM beacons of control"
    replayable, why_not = [], {}
    for gate in profile.gates:
        server, rum = gate_sources(gate)
        if (server and split_pods) or (rum and has_rum):
            replayable.append(gate.name)
            continue
        reasons = ([server_why] if server else []) + ([rum_why] if rum else [])
        why_not[gate.name] = " and ".join(reasons) or "the gate reads no series"
    return replayable, why_not


def _in_window(frame: pl.DataFrame, column: str, span: Window, closed: str) -> pl.DataFrame:
    """The rows a judge of that window reads: metrics [start, end], beacons [start, end)."""
    return frame.filter(pl.col(column).is_between(span.start, span.end, closed=closed))


def _replay_input(
    history: History,
    samples: pl.DataFrame,
    beacons: pl.DataFrame | None,
    span: Window,
    groups: list[tuple[str, ...]] | None,
    seed: int,
    share: float,
    srm_on_sessions: bool,
) -> JudgeInput:
    """One A/A pair: the window's control, split by the seed's pod group and hash."""
    if groups is not None and history.pod_label is not None:
        server = split_samples(samples, history.pod_label, groups[seed])
    else:
        server = empty_samples()
    rum = split_beacons(beacons, seed) if beacons is not None and not beacons.is_empty() else None
    # the sample-ratio check is replayed on sessions, split at the declared share; a pod
    # split declares no share, so without RUM there is none to check
    declared = share if srm_on_sessions and rum is not None else None
    return JudgeInput(server, rum, span, declared, warnings=history.warnings)


def _pod_share(samples: pl.DataFrame) -> float | None:
    """The canary pod group's share of the connections opened in the window."""
    opened = samples.filter(pl.col("metric") == CONNECTIONS_TOTAL)
    if opened.is_empty():
        return None
    per = {r["variant"]: r["increase"] for r in total_increase(opened).iter_rows(named=True)}
    total = sum(per.values())
    return per.get(CANARY, 0.0) / total if total > 0 else None


def _count(
    tally: _Tally,
    profile: Profile,
    verdict: Verdict,
    window_index: int,
    canary_pods: tuple[str, ...],
    pod_share: float | None,
    share: float,
    span: Window,
) -> None:
    tally.verdicts[verdict.overall] += 1
    tally.replays_by_window[window_index] += 1
    if verdict.overall == "NO_GO":
        tally.no_go_by_window[window_index] += 1
    if verdict.metadata.get("srm"):
        tally.srm_trips += 1
    if canary_pods:
        tally.pod_splits.add(canary_pods)
        for pod in canary_pods:
            tally.pods_in_canary[pod] += 1
            tally.pods_no_go[pod] += verdict.overall == "NO_GO"
        if pod_share is not None:
            tally.pod_shares.append(pod_share)
    for gate, result in zip(profile.gates, verdict.gates, strict=True):
        found = tally.gates[gate.name]
        found.decisions[result.decision] += 1
        evidence = result.evidence
        if result.decision == "no_data":  # no evidence, or too little of it
            found.reasons[evidence.reason if evidence.missing else LOW_EXPOSURE] += 1
        if evidence.missing:
            continue
        found.sources[evidence.source] += 1
        dispersion = getattr(evidence.details, "dispersion", None)  # rate, bound, spike
        if dispersion is not None and math.isfinite(dispersion):
            found.dispersion.append(float(dispersion))
        split_share = pod_share if evidence.source != "rum" else share
        seconds = healthy_settle_seconds(gate, result, span.duration, split_share, share)
        if seconds is not None:
            found.settle.append(seconds)


def healthy_settle_seconds(
    gate: Gate, result: GateResult, elapsed: timedelta, split_share: float | None, share: float
) -> float | None:
    """How long a healthy canary at `share` of this traffic needs to pass `gate`, from
    one replay: the time at which the upper limit of a canary exactly as good as
    control (×1, +0, or control's own level against a bound) clears the tolerance with
    the gate's planning power, with the standard error this replay measured at the
    split's own share (`split_share`) rescaled to the declared one. A spike gate with an
    excess tolerance passes by either route (each at half the level): the sooner counts.

    Variance goes as 1/(s(1-s)) for a comparison with control and 1/s against a bound or
    for an excess (the canary's own counts dominate); the gate's minimum exposure scales
    with s. None when the replay has no standard error, or a healthy canary never passes
    (control's own level is beyond the tolerance).
    """
    e = result.evidence
    s = split_share if split_share is not None and 0 < split_share < 1 else share
    against_control = result.comparison == "control"
    two_routes = gate.tolerance_excess is not None and gate.statistic == "spike"
    alpha = one_sided_alpha(gate) / (2 if two_routes else 1)
    z = stats.norm.isf(alpha) + stats.norm.ppf(gate.power)
    multiples = []
    distance = _distance_to_tolerance(gate, result)
    if distance is not None and math.isfinite(e.se) and e.se > 0:
        variance = (s * (1 - s)) / (share * (1 - share)) if against_control else s / share
        multiples.append((z * e.se / distance) ** 2 * variance)
    excess_high = e.details.excess_high if isinstance(e.details, SpikeDetails) else None
    if two_routes and excess_high is not None and e.canary is not None and e.control is not None:
        se = (excess_high - (e.canary - e.control)) / stats.norm.isf(alpha)
        if math.isfinite(se) and se > 0:
            multiples.append((z * se / gate.tolerance_excess) ** 2 * s / share)
    if not multiples:
        return None
    multiple = min(multiples)  # of this replay's exposure
    if gate.min_exposure > 0 and math.isfinite(e.exposure) and e.exposure > 0:
        multiple = max(multiple, gate.min_exposure / e.exposure * s / share)
    return float(multiple * elapsed.total_seconds())


def _distance_to_tolerance(gate: Gate, result: GateResult) -> float | None:
    """How far a healthy canary sits inside the tolerance, on the test's scale."""
    e = result.evidence
    if not math.isfinite(e.tolerance):
        return None
    against_control = result.comparison == "control"
    healthy = (1.0 if e.log_scale else 0.0) if against_control else e.effect
    if healthy is None or not math.isfinite(healthy):
        return None
    if e.log_scale:
        if healthy <= 0 or e.tolerance <= 0:
            return None
        distance = math.log(e.tolerance) - math.log(healthy)
    else:
        distance = e.tolerance - healthy
    distance = distance if gate.worse == "increase" else -distance
    return distance if distance > 0 else None


def _document(
    profile: Profile,
    replayed: Profile,
    tally: _Tally,
    windows: list[Window],
    length: timedelta,
    share: float,
    seeds: int,
    history: History,
    not_replayable: dict[str, str],
    notes: list[str],
    srm_on_sessions: bool,
    pod_counts: list[int],
) -> dict[str, Any]:
    replays = sum(tally.verdicts.values())
    if replays == 0:
        raise DataError(
            "no window of the history held control data to replay",
            "check the history's window (--start/--end) and its variant label",
        )
    level = one_sided_alpha(profile.gates[0])
    no_go = tally.verdicts["NO_GO"]
    clusters = [
        (tally.no_go_by_window[i], tally.replays_by_window[i])
        for i in sorted(tally.replays_by_window)
    ]
    effective = reading.effective_replays(clusters)
    low, high = reading.wilson_interval(no_go / replays, effective)
    gates: dict[str, Any] = {}
    plan: dict[str, Any] = {}
    for gate in profile.gates:
        if gate.name in not_replayable:
            gates[gate.name] = {d: 0 for d in DECISIONS} | {
                "comparison": gate.compare.against, "dispersion": None, "replayed_on": None, "source": None,
                "not_replayable": not_replayable[gate.name], "no_data_why": None,
            }  # fmt: skip
            plan[gate.name] = {"settle_in_s": None, "passed_within_window": None,
                               "basis": "not replayed"}  # fmt: skip
            continue
        found = tally.gates[gate.name]
        source = found.sources.most_common(1)[0][0] if found.sources else None
        gates[gate.name] = {d: found.decisions[d] for d in DECISIONS} | {
            "comparison": gate.compare.against,
            "dispersion": statistics.median(found.dispersion) if found.dispersion else None,
            "replayed_on": None if source is None else ("sessions" if source == "rum" else "pods"),
            "source": source,
            "not_replayable": None,
            "no_data_why": None,
        }
        if found.reasons:  # why it had no data, most often
            gates[gate.name]["no_data_why"] = found.reasons.most_common(1)[0][0]
        pod_share = statistics.mean(tally.pod_shares) if tally.pod_shares else None
        measured = share if source == "rum" else pod_share
        plan[gate.name] = _plan(gate, found, replays, length, measured, share)
    pods = None
    if history.pod_label is not None and tally.pods_in_canary:
        pods = {
            "label": history.pod_label,
            "per_window": {"min": min(pod_counts), "max": max(pod_counts)},
            "distinct_splits": len(tally.pod_splits),
            "possible_splits": distinct_pod_splits(max(pod_counts), share),
            "canary_share": statistics.mean(tally.pod_shares) if tally.pod_shares else None,
            "by_pod": {
                pod: {"in_canary": n, "no_go": tally.pods_no_go[pod]}
                for pod, n in sorted(tally.pods_in_canary.items())
            },
        }
    srm = {
        "checked": srm_on_sessions,
        "trips": tally.srm_trips,
        "alpha": profile.srm_alpha,
        "why_not": None if srm_on_sessions else _srm_why_not(profile),
    }
    return {
        "version": 1,
        "replays": replays,
        "verdicts": {v: tally.verdicts[v] for v in OVERALL},
        "gates": gates,
        "plan": plan,
        "false_no_go": {
            "rate": no_go / replays,
            "low": low,
            "high": high,
            "level": level,
            "effective_replays": effective,
            "within_level": reading.within_level(low, high, level),
        },
        "srm": srm,
        "pods": pods,
        "settings": {
            "profile": profile.name,
            "gates_replayed": [g.name for g in replayed.gates],
            "window_s": length.total_seconds(),
            "canary_share": share,
            "seeds": seeds,
        },
        "history": {
            "start": history.window.start.isoformat(),
            "end": history.window.end.isoformat(),
            "windows": len(windows),
            "inputs": history.inputs.to_json() if history.inputs is not None else None,
        },
        "notes": notes,
        "package_version": __version__,
    }


def _srm_why_not(profile: Profile) -> str:
    if profile.srm_unit != "sessions":
        return (
            f"profile {profile.name} checks the split on connections, and a pod split "
            "declares no share"
        )
    return "a pod split declares no share, and the history has no RUM sessions to split"


def _plan(
    gate: Gate,
    found: _GateTally,
    replays: int,
    length: timedelta,
    measured_share: float | None,
    share: float,
) -> dict[str, Any]:
    """A gate's settle time for a healthy canary: the median projection over replays; no
    more than the window when the replays passed it there at the planning power, at a
    share no larger than the declared one (a pod split's larger share passes sooner)."""
    passed = found.decisions["pass"] / replays
    settle = statistics.median(found.settle) if found.settle else None
    window_s = length.total_seconds()
    within = passed >= gate.power and (measured_share or share) <= share * 1.05
    if within:
        settle = min(settle, window_s) if settle is not None else window_s
    basis = (
        f"median over {len(found.settle)} replays of the time a canary as good as control "
        f"passes with {gate.power:.0%} power, at the declared share"
        if found.settle
        else "no standard error to project from"
    )
    if within:
        basis += f"; the replays passed it within the window {passed:.0%} of the time"
    return {
        "settle_in_s": settle, "within_window": bool(within and settle == window_s),
        "passed_within_window": passed, "basis": basis,
    }  # fmt: skip
