"""The PromQL the dashboard and the rules share: recorded rates, quantiles, gate figures.

One vocabulary, so a panel and the alert beside it can never disagree about a label or
a `rate()` window. Counters and histograms of the metric contract are pre-aggregated by
recording rules named `level:metric:operations` (Prometheus's convention):
`variant_code:ws_closes:rate5m`, `variant:ws_assistant_ttfb_seconds:p95_rate5m`; each
gate's ratio is recorded under a name saying what it counts, so two gates on one figure
share a rule: `variant:ws_closes_4401_per_connections:ratio_rate5m`. Every recording
rule reads raw series only, so promtool can backfill each on its own.
Every expression can also be written *inline* (over the raw series), for a Prometheus
that does not load the rules (and for backfilling them with promtool).

A gate's figure comes from its structured sources (`events`/`exposure` prometheus
series, `samples.histogram`) so it can use the recorded rates; a gate with only a
`promql:` text is used verbatim; a `series` gate is its own PromQL per variant; a gate
with none of these has no PromQL form and is refused.

Everything here is written in the contract's names; `GateFigure.spell` rewrites a rule
or a query in a telemetry mapping's (`sources.promql_text`), so exports for any service
come from the same code. A `series` gate's PromQL is the user's own, in their names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from statistics import NormalDist
from typing import Literal

from wsanalysis.canary.gates import CompareSpec, Gate, GateFile, Series
from wsanalysis.canary.kinds import kind_of
from wsanalysis.errors import UsageError
from wsanalysis.pushdown.series import VARIANT_PLACEHOLDER, per_variant_promql
from wsanalysis.sources import metric_names as names
from wsanalysis.sources.promql_text import Spelling, translate_promql
from wsanalysis.sources.telemetry import REFERENCE, Telemetry
from wsanalysis.sources.variants import Matcher

VARIANT = "variant"  # the target label naming the variant (architecture contract)
CANARY = "canary"
CONTROL = "control"
DEFAULT_WINDOW = "5m"  # rate window of every non-spike figure (as in the gate file's promql)
#: Counter rates recorded, per window: every counter at 5m; connections at 1h too (the
#: reconnect-rate gate's bucket: its alert counts the connections behind the ratio).
RECORDED: dict[str, tuple[str, ...]] = {
    "5m": names.COUNTERS,
    "1h": (names.CONNECTIONS_TOTAL,),
}

#: Counters of the metric contract and the labels their recorded rates keep (besides variant).
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    names.CONNECTIONS_TOTAL: (names.CONNECTIONS_TOTAL.removesuffix("_total"), ()),
    names.CLOSES_TOTAL: (names.CLOSES_TOTAL.removesuffix("_total"), ("code",)),
    names.FRAMES_SENT_TOTAL: (names.FRAMES_SENT_TOTAL.removesuffix("_total"), ("event",)),
    names.RECONNECT_ADVICE_TOTAL: (names.RECONNECT_ADVICE_TOTAL.removesuffix("_total"), ("why",)),
}


def selector(metric: str, matchers: tuple[Matcher, ...] = ()) -> str:
    inner = ", ".join(m.promql() for m in matchers)
    return f"{metric}{{{inner}}}" if inner else metric


def variant_matcher(pattern: str) -> tuple[Matcher, ...]:
    """`variant=~"pattern"` (e.g. Grafana's `$variant`), or nothing for an empty pattern."""
    return (Matcher(VARIANT, "=~", pattern),) if pattern else ()


def only(variant: str) -> tuple[Matcher, ...]:
    return (Matcher(VARIANT, "=", variant),)


def window_text(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def window_seconds(window: str) -> int:
    sizes = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(window[:-1]) * sizes[window[-1]]


def counter_record(metric: str, window: str) -> str:
    family, by = COUNTERS[metric]
    return f"{'_'.join((VARIANT, *by))}:{family}:rate{window}"


def counter_rate(
    series: Series,
    window: str = DEFAULT_WINDOW,
    *,
    by: tuple[str, ...] = (VARIANT,),
    matchers: tuple[Matcher, ...] = (),
    inline: bool = False,
) -> str:
    """`sum by (by) (rate(series[window]))`, read from its recording rule when one exists."""
    every = (*series.matchers, *matchers)
    known = COUNTERS.get(series.metric)
    kept = {VARIANT, *known[1]} if known else set()
    labels = {m.label for m in every} | set(by)
    grouping = ", ".join(by)
    recorded = series.metric in RECORDED.get(window, ())
    if not inline and recorded and labels <= kept:
        return f"sum by ({grouping}) ({selector(counter_record(series.metric, window), every)})"
    return f"sum by ({grouping}) (rate({selector(series.metric, every)}[{window}]))"


@dataclass(frozen=True)
class Quantile:
    """The q-quantile of a contract histogram per variant, over a rate window."""

    histogram: str
    q: float
    window: str = DEFAULT_WINDOW

    @property
    def record(self) -> str:
        return f"{VARIANT}:{self.histogram}:p{self.q * 100:g}_rate{self.window}".replace(".", "_")

    def expr(self, matchers: tuple[Matcher, ...] = (), *, inline: bool = False) -> str:
        if not inline:
            return selector(self.record, matchers)
        buckets = selector(f"{self.histogram}_bucket", matchers)
        return (
            f"histogram_quantile({self.q:g}, sum by ({VARIANT}, le) "
            f"(rate({buckets}[{self.window}])))"
        )


def _slug(series: Series) -> str:
    """`ws_closes_total{code="4401"}` as `ws_closes_4401`, for a recording rule's name."""
    family = COUNTERS[series.metric][0] if series.metric in COUNTERS else series.metric
    words = [family.removesuffix("_total")]
    words += [m.value for m in series.matchers if m.label != VARIANT and m.op in ("=", "=~")]
    return re.sub(r"[^a-zA-Z0-9_]+", "_", "_".join(words)).strip("_")


def recording_rules(
    figures: list[GateFigure], telemetry: Telemetry = REFERENCE
) -> list[dict[str, str]]:
    """Counter rates at every recorded window, then the figures' ratios and quantiles
    (deduplicated by name: two gates on one figure share one rule), in `telemetry`'s
    names.

    Each rule reads raw series only, so promtool can backfill any of them on its own.
    """
    rules = []
    for window, metrics in RECORDED.items():
        for metric in metrics:
            by = COUNTERS[metric][1]
            rules.append(
                {
                    "record": counter_record(metric, window),
                    "expr": f"sum by ({', '.join((VARIANT, *by))}) (rate({metric}[{window}]))",
                }
            )
    seen: set[str] = set()
    for figure in figures:
        rule = figure.recording_rule()
        if rule is not None and rule["record"] not in seen:
            seen.add(rule["record"])
            rules.append(rule)
    if telemetry.is_reference:
        return rules
    spelling = Spelling(telemetry)
    return [
        {"record": spelling.record(r["record"]), "expr": translate_promql(r["expr"], telemetry)}
        for r in rules
    ]


def summed(
    series: tuple[Series, ...],
    window: str,
    matchers: tuple[Matcher, ...] = (),
    *,
    inline: bool = False,
) -> str:
    """The per-variant rate of several counters added up."""
    terms = [counter_rate(s, window, matchers=matchers, inline=inline) for s in series]
    return terms[0] if len(terms) == 1 else f"({' + '.join(terms)})"


def ratio(
    events: tuple[Series, ...],
    exposure: tuple[Series, ...],
    window: str = DEFAULT_WINDOW,
    matchers: tuple[Matcher, ...] = (),
    *,
    inline: bool = False,
) -> str:
    """Events per exposure (e.g. closes per connection opened), per variant.

    An event series a variant lacks counts as zero for it (`or 0 * exposure`): a variant
    that never closed with 1012 has a rate of 0, not a missing point.
    """
    per_second = summed(exposure, window, matchers, inline=inline)
    terms = " + ".join(
        f"({counter_rate(s, window, matchers=matchers, inline=inline)} or 0 * {per_second})"
        for s in events
    )
    return f"({terms}) / {per_second}" if len(events) > 1 else f"{terms} / {per_second}"


@dataclass(frozen=True)
class GateFigure:
    """A gate's figure per variant as PromQL, and its limit, for panels and alerts.

    Its methods write the contract's names (a `series` gate's own text aside); `spell`
    turns a rule or a query built from them into `telemetry`'s names."""

    gate: Gate
    profile: str
    kind: Literal["ratio", "quantile", "verbatim", "series"]
    window: str
    quantile: Quantile | None = None
    telemetry: Telemetry = REFERENCE

    def spell(self, text: str) -> str:
        """A rule or query built from this figure, in the telemetry's names."""
        if self.kind == "series" or self.telemetry.is_reference:
            return text
        return translate_promql(text, self.telemetry)

    def expr(self, matchers: tuple[Matcher, ...] = (), *, inline: bool = False) -> str:
        """The figure, restricted by `matchers` (on the variant label) where it can be."""
        if self.kind == "series":
            return self._series(matchers)
        if self.kind == "quantile":
            assert self.quantile is not None
            return self.quantile.expr(matchers, inline=inline)
        if self.kind == "verbatim":
            assert self.gate.promql is not None
            return _restrict(self.gate.promql, matchers)
        if not inline:
            return selector(self.record, matchers)
        events, exposure = self.gate.events, self.gate.exposure
        assert events is not None and exposure is not None
        return ratio(events.prometheus, exposure.prometheus, self.window, matchers, inline=True)

    def _series(self, matchers: tuple[Matcher, ...]) -> str:
        """A `series` gate's PromQL (the user's names) for the variant `matchers` name, or
        both variants, each labelled with its value of the variant label."""
        assert self.gate.promql is not None
        queries = per_variant_promql(
            self.gate.name, self.gate.promql, self.telemetry.variant_mapping
        )
        roles = [m.value for m in matchers if m.label == VARIANT and m.op == "="]
        if roles and roles[0] in queries:
            return queries[roles[0]]
        if VARIANT_PLACEHOLDER not in self.gate.promql:
            return f"({self.gate.promql})"  # grouped by the variant label already
        spelling = Spelling(self.telemetry)
        if len(spelling.variant_labels) != 1:
            return " or ".join(f"({query})" for query in queries.values())
        label = _quote(spelling.variant_labels[0])
        return " or ".join(
            f"label_replace(({query}), {label}, "
            f'{_quote(spelling.role_value(role) or role)}, "", "")'
            for role, query in queries.items()
        )

    @property
    def record(self) -> str:
        """The recording rule's name; named after what it counts, so equal figures share it."""
        if self.kind == "quantile":
            assert self.quantile is not None
            return self.quantile.record
        assert self.kind == "ratio" and self.gate.events and self.gate.exposure
        events = "_and_".join(_slug(s) for s in self.gate.events.prometheus)
        exposure = "_and_".join(_slug(s) for s in self.gate.exposure.prometheus)
        return f"{VARIANT}:{events}_per_{exposure}:ratio_rate{self.window}"

    def recording_rule(self) -> dict[str, str] | None:
        """`{record, expr}` over raw series (None for a verbatim or series figure)."""
        if self.kind in ("verbatim", "series"):
            return None
        return {"record": self.record, "expr": self.expr(inline=True)}

    def exposure(self, matchers: tuple[Matcher, ...] = (), *, inline: bool = False) -> str:
        """Per-second exposure (connections opened) of a ratio figure."""
        assert self.kind == "ratio" and self.gate.exposure is not None
        return summed(self.gate.exposure.prometheus, self.window, matchers, inline=inline)

    def volume(self, matchers: tuple[Matcher, ...] = (), *, inline: bool = False) -> str:
        """How many exposures (ratio) or observations (quantile) the window holds, per variant.

        Empty for a verbatim or series figure, whose parts we cannot name.
        """
        seconds = window_seconds(self.window)
        if self.kind == "ratio":
            return f"{self.exposure(matchers, inline=inline)} * {seconds}"
        if self.kind == "quantile":
            assert self.quantile is not None
            count = Series(f"{self.quantile.histogram}_count", matchers)
            return f"{counter_rate(count, self.window, inline=True)} * {seconds}"
        return ""

    def enough_events(self, matchers: tuple[Matcher, ...] = (), *, inline: bool = False) -> str:
        """`and` the window holds at least the gate's `min_events` (empty when unknown)."""
        volume = self.volume(matchers, inline=inline)
        return f" and on ({VARIANT}) {volume} >= {self.gate.min_events}" if volume else ""

    @property
    def z(self) -> float:
        """The one-sided normal quantile at the gate's confidence (as the judge tests)."""
        return NormalDist().inv_cdf(1 - (1 - self.gate.confidence) / 2)

    @property
    def bound(self) -> float | None:
        return self.gate.compare.bound if self.gate.compare.against == "bound" else None


def limit_expr(compare: CompareSpec, control: str) -> str:
    """The canary's limit given control's figure as PromQL, as `CompareSpec.limit` computes it."""
    if compare.against == "bound":
        return f"{compare.bound:g}"
    if compare.margin_type == "relative":
        return f"{1 + compare.margin:g} * {control}"
    return f"{control} + {compare.margin:g}"


def _restrict(expr: str, matchers: tuple[Matcher, ...]) -> str:
    """Keep one variant of an expression we cannot rewrite (only `variant="x"` is applied)."""
    exact = [m for m in matchers if m.label == VARIANT and m.op == "="]
    if not exact:
        return f"({expr})"
    keep = f'label_replace(vector(1), "{VARIANT}", "{exact[0].value}", "", "")'
    return f"(({expr}) and on ({VARIANT}) {keep})"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gate_figure(
    gate_file: GateFile,
    profile: str,
    name: str,
    *,
    used_by: str,
    telemetry: Telemetry = REFERENCE,
) -> GateFigure:
    """The figure of gate `name` in `profile`, or a UsageError naming the gate and its user."""
    try:
        gate = gate_file.profile(profile).gate(name)
    except KeyError:
        raise UsageError(
            f"gate file {gate_file.path}: profile {profile!r} has no gate {name!r}, "
            f"which {used_by} takes its threshold from",
            "add that gate (copy it from wsanalysis/canary/default_gates.yaml) "
            "or omit --gates to use the default gate file",
        ) from None
    return figure_of(gate, profile, telemetry)


def figure_of(gate: Gate, profile: str, telemetry: Telemetry = REFERENCE) -> GateFigure:
    window = window_text(gate.bucket) if gate.bucket is not None else DEFAULT_WINDOW
    form = kind_of(gate).export(gate)  # the PromQL form its kind has, if any
    if form == "series":
        return GateFigure(gate, profile, "series", window, telemetry=telemetry)
    if form == "quantile":
        assert gate.samples is not None and gate.samples.histogram and gate.quantile is not None
        quantile = Quantile(gate.samples.histogram, gate.quantile, window)
        return GateFigure(gate, profile, "quantile", window, quantile, telemetry)
    if form == "ratio":
        return GateFigure(gate, profile, "ratio", window, telemetry=telemetry)
    if gate.promql:
        return GateFigure(gate, profile, "verbatim", window, telemetry=telemetry)
    raise UsageError(
        f"gate {gate.name!r} (profile {profile!r}) has no PromQL form: its metric is read "
        "from RUM beacons only, and Prometheus holds no such series",
        "give the gate `prometheus:` series (events and exposure) or `samples.histogram`, "
        "or a `promql:` expression; RUM-only figures are judged by the canary notebook",
    )
