"""Each gate's server statistics computed by the metrics server: PromQL push-down.

The raw path reads every sample of every series of every pod and sums counter
increases per bucket on this machine. The gates need much less: per variant (and per
`code` or `le` where a gate names them), the increase in each time bucket. So the
server sums them, and what crosses the network grows with the window's steps and the
variants, never with pods or scrapes.

The query, per counter family and step `S` (the largest divisor of the gates' buckets
up to `resolution`, 15 s by default), is

    sum by (variant, code) (
        (x offset 1ms - x offset (S+1ms)) >= 0
      or
        (x offset 1ms and (x offset 1ms - x offset (S+1ms)) < 0)
    ) > 0

(`> 0`: a step without increase is not sent) evaluated as a range query at `start + S, start + 2S, ...`: the increase of each series
over the samples stamped in `[t - S, t)`, a drop read as a reset after which the new
value is the increase, exactly as `frames.counters.increases` does on raw samples. One
more instant query at the window's end covers the last partial step, closed at the end
as the raw path's last bucket is. The steps are then summed into the gate's buckets
here (a step never straddles two buckets: `S` divides the bucket and steps start at
the window's start).

Why not `increase(x[1m])`? Prometheus extrapolates `increase()` to the range's edges
and misses the step between the last sample before the range and the first inside it,
so per-bucket figures differ from the sum of the samples' increases by up to a scrape
interval's worth, and the push-down could not give the raw path's gate inputs. The
difference expression above has neither effect.

Where the two paths still differ (docs/scale.md lists them):
- the first sample of a series inside the window: the raw path counts no increase for
  it (it has no earlier sample); the push-down counts the increase from the last sample
  before the window, within the server's lookback (5 min by default);
- a scrape gap longer than the lookback: the raw path counts the increase across the
  gap; the push-down loses it (the series is absent at one end of the step);
- two samples in one step with a reset between them (a scrape interval shorter than
  `S`): the push-down sees one difference, as `resets()` would not; lower `resolution`.

The result is handed to the judge as a samples frame with one counter per series
group, cumulated from zero at the window's start, so `frames.measures` derives exactly
the same `Counts` and `HistogramCounts` from it as from raw samples, and the
statistics and decisions do not change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from wsanalysis.canary.gates import Profile
from wsanalysis.frames.measures import RATE_BUCKET
from wsanalysis.frames.selection import Series
from wsanalysis.sources.prometheus import PrometheusSource, to_epoch_ms
from wsanalysis.sources.schema import TIMESTAMP, empty_samples, samples_schema
from wsanalysis.sources.variants import Matcher, VariantMapping

DEFAULT_RESOLUTION = timedelta(seconds=15)
QUERY_WORKERS = 2  # families queried at once
STEPS_PER_REQUEST = 60  # 15 min at 15 s per range request: each answer is quick
SRM_COUNTER = "ws_connections_total"  # the sample-ratio check's unit from the server


@dataclass(frozen=True)
class CounterQuery:
    """One counter family the gates read, and the labels its gates tell apart."""

    metric: str
    matchers: tuple[Matcher, ...] = ()
    by: tuple[str, ...] = ()

    def selector(self, extra: Iterable[Matcher] = ()) -> str:
        inner = ",".join(m.promql() for m in (*self.matchers, *extra))
        return f"{self.metric}{{{inner}}}" if inner else self.metric


@dataclass
class PushedSamples:
    """The judge's samples frame from push-down, and what the server warned per family."""

    frame: pl.DataFrame
    warnings: dict[str, list[str]]
    queries: int
    step: timedelta


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


def step_for(profile: Profile, resolution: timedelta = DEFAULT_RESOLUTION) -> timedelta:
    """The largest step up to `resolution` that divides every gate's bucket."""
    sizes = [int((g.bucket or RATE_BUCKET).total_seconds() * 1000) for g in profile.gates]
    common = math.gcd(*sizes) if sizes else int(RATE_BUCKET.total_seconds() * 1000)
    limit = max(1, int(resolution.total_seconds() * 1000))
    best = max(d for d in _divisors(common) if d <= limit) if common > limit else common
    return timedelta(milliseconds=best)


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})


def increase_expr(selector: str, by: Iterable[str], near_ms: int, far_ms: int) -> str:
    """Summed increase of the series over the samples stamped in (t - far, t - near]."""
    now = f"{selector} offset {near_ms}ms" if near_ms else selector
    before = f"{selector} offset {far_ms}ms"
    step = f"({now} - {before})"
    grouping = ", ".join(by)
    return f"sum by ({grouping}) (({step} >= 0) or ({now} and ({step} < 0))) > 0"


def presence_expr(selector: str, by: Iterable[str], window_ms: int) -> str:
    """Zero for every series group present in the window ending at t."""
    grouping = ", ".join(by)
    return f"sum by ({grouping}) (present_over_time({selector}[{max(window_ms, 1)}ms])) * 0"


def pushed_samples(
    source: PrometheusSource,
    profile: Profile,
    start: datetime,
    end: datetime,
    variants: VariantMapping,
    resolution: timedelta = DEFAULT_RESOLUTION,
) -> PushedSamples:
    """Every counter family the profile's gates read, summed by the server (see above)."""
    step = step_for(profile, resolution)
    step_ms = int(step.total_seconds() * 1000)
    start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
    full_steps = (end_ms - start_ms) // step_ms
    tail_from = start_ms + full_steps * step_ms
    families = counter_queries(profile)
    per_variant = (
        [(name, list(matchers)) for name, matchers in variants.matchers().items()]
        if variants.selectors
        else [(None, [])]
    )
    jobs = [(query, variant, extra) for query in families for variant, extra in per_variant]

    def run(job: tuple[CounterQuery, str | None, list[Matcher]]) -> tuple[list, list[str], int]:
        query, variant, extra = job
        # one connection per job: `last_warnings` belongs to one query at a time
        with PrometheusSource(source.settings) as own:
            by = list(query.by) if variant is not None else [variants.label, *query.by]
            selector = query.selector(extra)
            answers, warned_now = [], []
            promql = increase_expr(selector, by, 1, step_ms + 1)
            for first, last in _spans(start_ms + step_ms, tail_from, step_ms):
                frame = own.query_range(promql, first / 1000, last / 1000, step)
                warned_now += own.last_warnings
                # the step ending at t holds samples in [t - S, t): stamp it inside
                answers.append(_shifted(frame, -1))
            promql = increase_expr(selector, by, 0, end_ms - tail_from + 1)
            answers.append(own.query_range(promql, end_ms / 1000, end_ms / 1000, step))
            warned_now += own.last_warnings
            if "le" in query.by:
                # every bucket once, with no increase: a histogram bucket that stayed
                # empty is still a bucket (the raw path has it too)
                promql = presence_expr(selector, by, end_ms - start_ms)
                answers.append(own.query_range(promql, end_ms / 1000, end_ms / 1000, step))
                warned_now += own.last_warnings
        tidy = [_tidy(a, query, variant, variants) for a in answers if a.height]
        return tidy, warned_now, len(answers)

    parts: list[pl.DataFrame] = []
    warned: dict[str, list[str]] = {}
    queries = 0
    # the server evaluates several families at once (a query frontend spreads them)
    with ThreadPoolExecutor(QUERY_WORKERS) as pool:
        for (query, _, _), (tidy, warned_now, count) in zip(jobs, pool.map(run, jobs), strict=True):
            parts += tidy
            queries += count
            if warned_now:
                warned.setdefault(query.metric, []).extend(dict.fromkeys(warned_now))
    columns = sorted({c for q in families for c in q.by})
    frame = _as_counters(parts, columns, start)
    return PushedSamples(frame, warned, queries, step)


def _spans(first_ms: int, last_ms: int, step_ms: int) -> list[tuple[int, int]]:
    """[first, last] in requests of at most STEPS_PER_REQUEST steps: each answer stays
    short in time and memory on the server, whatever the window's length."""
    spans, lower = [], first_ms
    while lower <= last_ms:
        upper = min(last_ms, lower + (STEPS_PER_REQUEST - 1) * step_ms)
        spans.append((lower, upper))
        lower = upper + step_ms
    return spans


def _shifted(frame: pl.DataFrame, ms: int) -> pl.DataFrame:
    if not frame.height:
        return frame
    return frame.with_columns(pl.col("timestamp") + pl.duration(milliseconds=ms))


def _tidy(
    answer: pl.DataFrame, query: CounterQuery, variant: str | None, variants: VariantMapping
) -> pl.DataFrame:
    labels = [c for c in answer.columns if c not in ("timestamp", "value")]
    if variant is not None:  # one query per variant (mapping by selectors)
        frame = answer.with_columns(variant=pl.lit(variant))
    else:
        frame = answer.with_columns(variant=variants.variant_expr(labels))
        if variants.label != "variant" and variants.label in frame.columns:
            frame = frame.drop(variants.label)
    frame = frame.filter(pl.col("variant").is_not_null())
    return frame.with_columns(metric=pl.lit(query.metric)).select(
        "timestamp", "metric", "variant", "value", *[c for c in query.by if c in frame.columns]
    )


def _as_counters(parts: list[pl.DataFrame], labels: list[str], start: datetime) -> pl.DataFrame:
    """Per-step increases as counters cumulated from zero at the window's start."""
    if not parts:
        return empty_samples(labels)
    schema = samples_schema(labels)
    steps = pl.concat(
        [
            p.select(
                [
                    pl.col(c).cast(t) if c in p.columns else pl.lit(None, t).alias(c)
                    for c, t in schema.items()
                ]
            )
            for p in parts
        ]
    )
    keys = ["metric", "variant", *labels]
    zeros = (
        steps.select(keys)
        .unique()
        .with_columns(timestamp=pl.lit(start).cast(TIMESTAMP), value=pl.lit(0.0))
    )
    frame = pl.concat([zeros.select(schema.keys()), steps.select(schema.keys())])
    frame = frame.sort([*keys, "timestamp"], nulls_last=True)
    return frame.with_columns(pl.col("value").cum_sum().over(keys))
