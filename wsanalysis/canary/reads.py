"""What a profile's gates read from a source: server series, RUM columns, the server's
sums, and the expressions it evaluates per step.

The loader (`wsanalysis.loading`) reads what it is told and the push-down
(`wsanalysis.pushdown`) sums what it is asked; this module tells them, from the gate file,
so neither knows what a gate is.
"""

from __future__ import annotations

import math
from datetime import timedelta

from wsanalysis.canary.gate_spec import Profile
from wsanalysis.canary.kinds import kind_of
from wsanalysis.frames.measures import RATE_BUCKET
from wsanalysis.frames.selection import Series
from wsanalysis.loading import Reads
from wsanalysis.pushdown.promql import DEFAULT_RESOLUTION, CounterQuery, PushdownRequest
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL
from wsanalysis.sources.schema import RUM_SCHEMA
from wsanalysis.sources.variants import Matcher

SRM_COUNTER = CONNECTIONS_TOTAL  # the sample-ratio check's unit from the server


def gate_metric_names(profile: Profile) -> list[str]:
    """The server series a profile's gates read (what to fetch from Prometheus)."""
    names = {SRM_COUNTER}
    for gate in profile.gates:
        names.update(gate.server_series)
    return sorted(names)


def gate_rum_columns(profile: Profile, variant_label: str = "variant") -> list[str]:
    """The RUM columns a profile's gates read (a Parquet scan then reads no others)."""
    names = {"ts", "type", "variant", "session_id", variant_label}  # windows, split, SRM
    for gate in profile.gates:
        names |= kind_of(gate).rum_columns(gate)
    return sorted(names & set(RUM_SCHEMA))  # a field the frame lacks reads as missing


def counter_queries(profile: Profile) -> list[CounterQuery]:
    """One query per counter family: the matchers when every gate uses the same ones, else
    none, grouped by every label any gate's matchers name (so each gate's filter still
    finds its series), plus `le` for histograms."""
    selected: dict[str, set[tuple[Matcher, ...]]] = {SRM_COUNTER: {()}}
    labels: dict[str, set[str]] = {SRM_COUNTER: set()}

    def add(series: Series, extra: tuple[str, ...] = ()) -> None:
        selected.setdefault(series.metric, set()).add(series.matchers)
        labels.setdefault(series.metric, set()).update(m.label for m in series.matchers)
        labels[series.metric].update(extra)

    for gate in profile.gates:
        for source in (gate.events, gate.exposure, gate.samples):
            if source is None:
                continue
            for series in source.prometheus:
                add(series)
            if source.histogram:
                add(Series(f"{source.histogram}_bucket"), ("le",))
    queries = []
    for metric, matcher_sets in sorted(selected.items()):
        matchers = next(iter(matcher_sets)) if len(matcher_sets) == 1 else ()
        queries.append(CounterQuery(metric, matchers, tuple(sorted(labels[metric]))))
    return queries


def bucket_step(profile: Profile) -> timedelta:
    """The gates' common bucket: the largest step whose sums add up to every gate's buckets."""
    sizes = [int((g.bucket or RATE_BUCKET).total_seconds() * 1000) for g in profile.gates]
    common = math.gcd(*sizes) if sizes else int(RATE_BUCKET.total_seconds() * 1000)
    return timedelta(milliseconds=common)


def step_for(profile: Profile, resolution: timedelta = DEFAULT_RESOLUTION) -> timedelta:
    """The largest step up to `resolution` that divides every gate's bucket."""
    common = bucket_step(profile) // timedelta(milliseconds=1)
    limit = max(1, int(resolution.total_seconds() * 1000))
    best = max(d for d in _divisors(common) if d <= limit) if common > limit else common
    return timedelta(milliseconds=best)


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})


def pushdown_request(
    profile: Profile, resolution: timedelta = DEFAULT_RESOLUTION
) -> PushdownRequest:
    """What a metrics server sums for the profile's gates (`wsanalysis.pushdown.promql`)."""
    return PushdownRequest(
        tuple(counter_queries(profile)), bucket_step(profile), step_for(profile, resolution)
    )


def judge_reads(profile: Profile, *, narrow: bool = True) -> Reads:
    """What the judge reads for `profile`: only the gates' series and RUM columns
    (`narrow`, a verdict alone), or everything a file holds (a report's charts read more);
    from a server, the gates' sums."""
    return Reads(
        metrics=tuple(gate_metric_names(profile)) if narrow else None,
        rum_columns=tuple(gate_rum_columns(profile)) if narrow else None,
        pushdown=pushdown_request(profile),
        series=tuple(q for gate in profile.gates for q in kind_of(gate).queries(gate)),
    )
