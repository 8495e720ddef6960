"""The rules of OpenMetrics 1.0 and of the Prometheus text format, as checks on read lines.

`check` takes what the fast reader split (every sample line's name, labels, value,
timestamp; every other line) and returns one row per broken rule: the line, the
rule's id and a plain sentence. The reader raises on the first, or, in lenient mode,
drops the lines named and counts them by rule.

Where the checks run: metadata lines and runs of one metric name go through Python
(there are as many as families and series, not samples); the per-sample and
per-MetricPoint rules are polars expressions over the whole file.

Each rule quotes the OpenMetrics 1.0 specification (prometheus/docs,
docs/specs/om/open_metrics_spec.md) or, for `format="prometheus"`, the text
exposition format 0.0.4. One deliberate allowance: a file may hold each series'
samples together in time order (what `promtool tsdb create-blocks-from openmetrics`
backfills and what `write_openmetrics` writes) instead of one MetricPoint after the
other; the MetricPoint rules are checked per point wherever its lines are, and the
line order of `le` only where a point's buckets are written together. So a family is
written either Metric by Metric, each Metric's points in time order (the
specification's layout), or series by series (the backfill layout); a family that is
neither interleaves its Metrics (om[metric.nointerleave]), which is what concatenated
scrapes look like, and is refused. The specification's own "MetricPoints interleaved"
example (`_count` t1, `_count` t2, `_sum` t1, `_sum` t2) is the backfill layout, and
is read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import polars as pl

from wsanalysis.sources.om_syntax import NAME, SAMPLE_EXEMPLAR, parse_labels

#: Rule id -> what the rule says (shown in errors and in lenient-mode counts).
RULES: dict[str, str] = {
    "sample-syntax": "not a sample line",
    "value-number": "the value is not a number",
    "timestamp-number": "the timestamp is not a number",
    "label-syntax": "the labels cannot be read",
    "comment": "only # TYPE, # UNIT, # HELP and # EOF lines may start with #",
    "blank-line": "OpenMetrics text has no blank lines",
    "metadata-syntax": "a metadata line is `# TYPE|UNIT|HELP <metric name> <value>`",
    "type-unknown": "not a metric type of this format",
    "unit-suffix": "a family with a unit must be named <name>_<unit>",
    "unit-type": "stateset and info families have no unit",
    "help-escape": 'only \\\\, \\n and \\" escapes are allowed in HELP',
    "metadata-repeated": "each metadata line appears at most once per family",
    "metadata-after-samples": "a family's metadata comes before its samples",
    "families-contiguous": "a family's lines are written together (families are not interleaved)",
    "family-clash": "two families claim the same sample names",
    "sample-name": "the sample's name does not fit its family's type",
    "counter-value": "a counter's total is a number >= 0, not NaN",
    "histogram-le": "a histogram bucket has an `le` label holding a number",
    "histogram-value": "histogram bucket, count and sum values are numbers; counts >= 0, not NaN",
    "histogram-inf": 'a histogram point has a bucket with le="+Inf"',
    "histogram-le-order": "a histogram point's buckets are written in increasing `le`",
    "histogram-cumulative": "bucket counts do not decrease as `le` increases",
    "histogram-count": "_count equals the +Inf bucket",
    "histogram-sum": "_sum is present if and only if _count is",
    "summary-quantile": "a summary quantile label holds a number between 0 and 1",
    "summary-value": "summary quantiles, counts and sums are >= 0 or NaN (counts not NaN)",
    "stateset-label": "a stateset sample has a label named after its family",
    "stateset-value": "a stateset sample's value is 0 or 1",
    "info-value": "an info sample's value is 1",
    "exemplar-place": "exemplars only on counter _total and histogram _bucket samples",
    "exemplar-syntax": "an exemplar is ` # {labels} value [timestamp]`, labels <= 128 characters",
    "timestamp-missing": "the sample has no timestamp (pass `timestamp=` for a scrape)",
    "timestamp-finite": "a timestamp is a finite number within the years 1-9999",
    "timestamp-order": "timestamps do not go backwards within a series",
    "metric-interleaved": "a Metric's MetricPoints are written together, not interleaved with "
    "another Metric's of the same family",
    "metricpoint-order": "a Metric's MetricPoints are in increasing timestamp order",
    "duplicate-sample": "a series has one sample per timestamp",
    "after-eof": "text after # EOF (nothing may follow it)",
    "eof-missing": "OpenMetrics text ends with # EOF",
}

OM_TYPES = (
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "stateset",
    "info",
    "summary",
    "unknown",
)
PROM_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_SUFFIXES = {
    "openmetrics": {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "unknown": ("",),
        "stateset": ("",),
        "info": ("_info",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
        "summary": ("", "_count", "_sum", "_created"),
    },
    "prometheus": {
        "counter": ("",),
        "gauge": ("",),
        "untyped": ("",),
        "histogram": ("_bucket", "_count", "_sum"),
        "summary": ("", "_count", "_sum"),
    },
}
_NAME = re.compile(NAME)
_OM_META = re.compile(r"# (TYPE|UNIT|HELP) ([^ ]*)(?: (.*))?")
_PROM_META = re.compile(r"\s*#\s+(TYPE|HELP)(?:\s+(\S+))?(?:\s+(.*?))?\s*")
_HELP_ESCAPES = {"openmetrics": re.compile(r'\\[n"\\]'), "prometheus": re.compile(r"\\[n\\]")}
_EXEMPLAR = re.compile(
    r' # \{(?P<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\} (?P<value>\S+)(?: (?P<ts>\S+))?'
)
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_RANK = {rule: rank for rank, rule in enumerate(RULES)}
#: |ms| beyond this is not a time a Datetime[ms] holds (year 9999).
MAX_MS = 253_402_300_799_999


@dataclass
class _Family:
    name: str
    type: str
    declared: bool
    meta: set[str] = field(default_factory=set)
    unit: str = ""
    has_samples: bool = False
    first_line: int = 0

    def names(self, format: str) -> set[str]:
        return {self.name + s for s in _SUFFIXES[format].get(self.type, ("",))}


class _Found:
    """Broken rules as they are found: (line, rule, detail)."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.rules: list[str] = []
        self.details: list[str] = []
        self.frames: list[pl.DataFrame] = []

    def add(self, line: int, rule: str, detail: str = "") -> None:
        self.lines.append(line)
        self.rules.append(rule)
        self.details.append(detail or RULES[rule])

    def where(self, frame: pl.DataFrame, condition: pl.Expr, rule: str, detail: str = "") -> None:
        """Every row of `frame` (with a `line` column) where `condition` holds breaks `rule`."""
        self.many(frame, [(condition, rule, detail)])

    def many(self, frame: pl.DataFrame, checks: list[tuple[pl.Expr, str, str]]) -> None:
        """Several rules on one frame in one pass (a clean file costs one select)."""
        if frame.is_empty() or not checks:
            return
        flags = frame.select(
            pl.col("line").cast(pl.Int64),
            *[c.fill_null(False).alias(f"_r{i}") for i, (c, _, _) in enumerate(checks)],
        )
        hit = flags.select(pl.any_horizontal(pl.exclude("line")).alias("hit"))["hit"]
        if not hit.any():
            return
        flags = flags.filter(hit)
        for i, (_, rule, detail) in enumerate(checks):
            lines = flags.filter(pl.col(f"_r{i}"))["line"]
            if lines.len():
                self.frames.append(
                    lines.to_frame().with_columns(
                        pl.lit(rule).alias("rule"), pl.lit(detail or RULES[rule]).alias("detail")
                    )
                )

    def frame(self) -> pl.DataFrame:
        listed = pl.DataFrame(
            {"line": self.lines, "rule": self.rules, "detail": self.details},
            schema={"line": pl.Int64, "rule": pl.Utf8, "detail": pl.Utf8},
        )
        found = pl.concat([listed, *self.frames]).unique(["line", "rule"], keep="first")
        rank = pl.col("rule").replace_strict(_RANK, return_dtype=pl.Int64)
        return found.sort([pl.col("line"), rank])


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def label_table(labels: pl.DataFrame) -> tuple[pl.DataFrame, dict[int, str]]:
    """Per distinct label text (`code`, `labels`): its `le`, `quantile`, a number for the
    other labels (`rest`, the point's key) and its label names; plus the codes whose
    text cannot be read, with why."""
    codes, les, quantiles, rests, names = [], [], [], [], []
    bad: dict[int, str] = {}
    rest_ids: dict[tuple, int] = {}
    for code, text in labels.iter_rows():
        try:
            parsed = parse_labels(text or "")
        except ValueError as error:
            bad[code] = str(error)
            continue
        codes.append(code)
        les.append(parsed.get("le"))
        quantiles.append(parsed.get("quantile"))
        rest = tuple(sorted((k, v) for k, v in parsed.items() if k not in ("le", "quantile")))
        rests.append(rest_ids.setdefault(rest, len(rest_ids)))
        names.append(list(parsed))
    table = pl.DataFrame(
        {"code": codes, "le": les, "quantile": quantiles, "rest": rests, "label_names": names},
        schema={
            "code": pl.Int64,
            "le": pl.Utf8,
            "quantile": pl.Utf8,
            "rest": pl.Int64,
            "label_names": pl.List(pl.Utf8),
        },
    )
    return table, bad


def _metadata(others: pl.DataFrame, format: str, last_line: int, found: _Found) -> list[tuple]:
    """(line, kind, name, value) of each metadata line; other `#` and blank lines checked."""
    events: list[tuple] = []
    for line, text in others.select("line", "text").iter_rows():
        stripped = text.strip()
        if stripped == "# EOF" or (line == last_line and text == ""):
            continue
        if format == "openmetrics":
            if text == "":
                found.add(line, "blank-line")
                continue
            match = _OM_META.fullmatch(text)
            if match is None:
                found.add(line, "comment" if stripped.startswith("#") else "blank-line")
                continue
            kind, name, value = match.group(1), match.group(2), match.group(3)
        else:
            match = _PROM_META.fullmatch(text)
            if match is None:
                continue  # a comment or a blank line: allowed
            kind, name, value = match.group(1), match.group(2), match.group(3)
            if name is None:
                found.add(line, "metadata-syntax")
                continue
        if not _NAME.fullmatch(name or ""):
            found.add(line, "metadata-syntax", f"{name!r} is not a metric name")
            continue
        events.append((line, kind, name, value or ""))
    return events


def _check_meta(
    family: _Family, line: int, kind: str, value: str, format: str, found: _Found
) -> None:
    if kind in family.meta:
        found.add(line, "metadata-repeated", f"a second # {kind} for {family.name}")
        return
    family.meta.add(kind)
    if kind == "TYPE":
        types = OM_TYPES if format == "openmetrics" else PROM_TYPES
        if value not in types:
            found.add(line, "type-unknown", f"{value!r} is not one of {', '.join(types)}")
        else:
            family.type = value
    elif kind == "HELP" and "\\" in _HELP_ESCAPES[format].sub("", value):
        found.add(line, "help-escape")
    elif kind == "UNIT":
        family.unit = value
        if value and not re.fullmatch(r"[a-zA-Z0-9_:]+", value):
            found.add(line, "metadata-syntax", f"{value!r} is not a unit")
        elif value and not family.name.endswith("_" + value):
            found.add(line, "unit-suffix", f"{family.name} does not end in _{value}")


def _families(events: list[tuple], runs: pl.DataFrame, format: str, found: _Found) -> pl.DataFrame:
    """Walk metadata and runs of one sample name in line order: each run's family and type."""
    items: list[tuple] = [(e[0], 0, e) for e in events]
    items += [(first, 1, (first, name)) for first, name in runs.select("first", "name").iter_rows()]
    items.sort(key=lambda item: (item[0], item[1]))
    seen: dict[str, _Family] = {}
    owner: dict[str, _Family] = {}  # sample name -> family that claims it
    current: _Family | None = None
    untyped = "unknown" if format == "openmetrics" else "untyped"
    run_family: dict[int, tuple[str, str]] = {}

    def close(family: _Family | None) -> None:
        if family is not None and family.unit and family.type in ("stateset", "info"):
            found.add(family.first_line, "unit-type")

    def open_family(name: str, line: int, declared: bool) -> _Family:
        nonlocal current
        close(current)
        family = _Family(name, untyped, declared, first_line=line)
        if name in owner:
            found.add(
                line, "family-clash", f"{name} is already a sample name of {owner[name].name}"
            )
        seen[name] = family
        current = family
        return family

    for line, kind, payload in items:
        if kind == 0:
            _, meta, name, value = payload
            if current is not None and current.name == name:
                if current.has_samples:
                    found.add(line, "metadata-after-samples", f"# {meta} {name} after its samples")
                    continue
                _check_meta(current, line, meta, value, format, found)
                continue
            if name in seen:
                found.add(line, "families-contiguous", f"{name} appeared before line {line}")
                continue
            family = open_family(name, line, True)
            _check_meta(family, line, meta, value, format, found)
            continue
        first, name = payload
        if current is not None and name in current.names(format):
            if not current.has_samples:
                current.has_samples = True
                for claimed in current.names(format):
                    if claimed in owner and owner[claimed] is not current:
                        found.add(
                            first, "family-clash", f"{claimed} belongs to {owner[claimed].name}"
                        )
                    owner.setdefault(claimed, current)
            run_family[first] = (current.name, current.type)
            continue
        if current is not None and current.declared and _is_own_name(current, name):
            expected = " or ".join(sorted(current.names(format)))
            found.add(
                first, "sample-name", f"a {current.type} {current.name}'s samples are {expected}"
            )
            run_family[first] = (current.name, "")
            continue
        if name in owner or name in seen:
            holder = owner.get(name) or seen[name]
            found.add(
                first, "families-contiguous", f"{name} belongs to {holder.name}, seen earlier"
            )
            run_family[first] = (holder.name, "")
            continue
        family = open_family(name, first, False)
        family.has_samples = True
        owner.setdefault(name, family)
        run_family[first] = (name, family.type)
    close(current)
    codes: dict[str, int] = {}
    return pl.DataFrame(
        {
            "first": list(run_family),
            "family": [f for f, _ in run_family.values()],
            "family_code": [codes.setdefault(f, len(codes)) for f, _ in run_family.values()],
            "type": [t for _, t in run_family.values()],
        },
        schema={"first": pl.Int64, "family": pl.Utf8, "family_code": pl.Int64, "type": pl.Utf8},
    )


def _is_own_name(family: _Family, name: str) -> bool:
    """A name built from the family's (the family itself or it plus a known suffix)."""
    suffixes = ("", "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info")
    return any(name == family.name + s for s in suffixes)


def _exemplars(parts: pl.DataFrame, format: str, found: _Found) -> None:
    """Exemplars: where they may be, and their shape (only lines holding a `#`)."""
    hashed = parts.filter(pl.col("text").str.contains("#", literal=True))
    if hashed.is_empty():
        return
    hashed = hashed.with_columns(pl.col("text").str.extract(SAMPLE_EXEMPLAR, 1).alias("exemplar"))
    hashed = hashed.filter(pl.col("exemplar").is_not_null())
    if format == "prometheus":
        found.where(
            hashed, pl.lit(True), "exemplar-place", "the Prometheus text format has no exemplars"
        )
        return
    allowed = ((pl.col("type") == "counter") & (pl.col("suffix") == "_total")) | (
        pl.col("type").is_in(["histogram", "gaugehistogram"]) & (pl.col("suffix") == "_bucket")
    )
    found.where(hashed, ~allowed, "exemplar-place")
    for line, text in hashed.filter(allowed).select("line", "exemplar").iter_rows():
        match = _EXEMPLAR.fullmatch(text)
        ok = match is not None and _float(match.group("value")) is not None
        if ok and match.group("ts") is not None:
            stamp = _float(match.group("ts"))
            ok = stamp is not None and math.isfinite(stamp)
        if ok:
            labels = match.group("labels")
            pairs = _PAIR.findall(labels)
            rebuilt = ",".join(f'{k}="{v}"' for k, v in pairs)
            ok = rebuilt == labels and sum(len(k) + len(v) for k, v in pairs) <= 128
        if not ok:
            found.add(line, "exemplar-syntax")


def _histograms(rows: pl.DataFrame, found: _Found) -> None:
    """MetricPoint rules of histograms: +Inf, `le` order, cumulative counts, _count, _sum.

    A point is the family, the labels other than `le`, and the timestamp; its lines
    may be anywhere in the family (see the module's note on the backfill layout).
    """
    if rows.is_empty():
        return
    gauge = pl.col("type") == "gaugehistogram"
    count_suffix = pl.when(gauge).then(pl.lit("_gcount")).otherwise(pl.lit("_count"))
    sum_suffix = pl.when(gauge).then(pl.lit("_gsum")).otherwise(pl.lit("_sum"))
    point = ["metric", "point_ts"]  # the family with the labels but `le`, and the time
    rows = rows.select(
        "line",
        "number",
        pl.col("le").cast(pl.Float64, strict=False).alias("le_number"),
        (pl.col("suffix") == "_bucket").alias("is_bucket"),
        (pl.col("suffix") == count_suffix).alias("is_count"),
        (pl.col("suffix") == sum_suffix).alias("is_sum"),
        (pl.col("family_code") * (1 << 32) + pl.col("rest")).alias("metric"),
        pl.col("ts_number").fill_null(-math.inf).alias("point_ts"),
    )
    counted = pl.col("is_bucket") | pl.col("is_count")
    le_bad = pl.col("is_bucket") & (pl.col("le_number").is_null() | pl.col("le_number").is_nan())
    negative = counted & (pl.col("number").is_nan() | (pl.col("number") < 0))
    found.many(rows, [(le_bad, "histogram-le", ""), (negative, "histogram-value", "")])
    inf = pl.col("is_bucket") & (pl.col("le_number") == math.inf)
    points = rows.group_by(point).agg(
        pl.col("is_bucket").any().alias("buckets"),
        inf.sum().alias("infs"),
        pl.col("number").filter(inf).first().alias("inf"),
        pl.col("number").filter("is_count").first().alias("count"),
        pl.col("is_count").sum().alias("counts"),
        pl.col("is_sum").sum().alias("sums"),
    )
    rules = {
        "histogram-inf": pl.col("buckets") & (pl.col("infs") == 0),
        "histogram-count": (pl.col("counts") > 0)
        & (pl.col("infs") > 0)
        & (pl.col("count") != pl.col("inf")),
        "histogram-sum": pl.col("counts") != pl.col("sums"),
    }
    flagged = points.select(*point, *[c.fill_null(False).alias(r) for r, c in rules.items()])
    flagged = flagged.filter(pl.any_horizontal(list(rules)))
    if flagged.height:  # a broken point: every line of it
        whole = rows.select("line", *point).join(flagged, on=point)
        found.many(whole, [(pl.col(rule), rule, "") for rule in rules])
    buckets = rows.filter(pl.col("is_bucket") & pl.col("le_number").is_not_null()).select(
        "line", *point, "le_number", "number"
    )
    same = pl.all_horizontal(pl.col(c) == pl.col(c).shift() for c in point)
    ordered = buckets.sort([*point, "le_number", "line"])
    found.many(
        ordered,
        [
            (same & (pl.col("number").diff() < 0), "histogram-cumulative", ""),
            (
                same & (pl.col("le_number").diff() == 0),
                "histogram-le-order",
                "two buckets with the same le",
            ),
        ],
    )
    # line order of `le`, where a point's buckets follow each other
    adjacent = same & (pl.col("line") == pl.col("line").shift() + 1)
    found.many(buckets, [(adjacent & (pl.col("le_number").diff() < 0), "histogram-le-order", "")])


def check(
    lines: pl.DataFrame,
    others: pl.DataFrame,
    parts: pl.DataFrame,
    format: str,
    eof: int | None,
    scrape_time: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The broken rules (line, rule, detail), and the parts with `family`, `type`, `suffix`."""
    found = _Found()
    last_line = lines["line"][-1] if lines.height else 0
    if format == "openmetrics":
        if eof is None:
            found.add(last_line, "eof-missing")
        else:
            after = lines.filter(
                (pl.col("line") > eof) & ~((pl.col("line") == last_line) & (pl.col("text") == ""))
            )
            found.where(after, pl.lit(True), "after-eof")
    # syntax first: a line that is not a sample takes no part in the other rules
    named = pl.col("name").is_not_null()
    syntax = [
        (~named, "sample-syntax", ""),
        (named & pl.col("number").is_null(), "value-number", ""),
        (pl.col("ts").is_not_null() & pl.col("ts_number").is_null(), "timestamp-number", ""),
    ]
    if not scrape_time:
        syntax.append((pl.col("ts").is_null() & named, "timestamp-missing", ""))
    found.many(parts, syntax)
    valid = named & pl.col("number").is_not_null()
    valid = valid & (pl.col("ts").is_null() | pl.col("ts_number").is_not_null())
    keep = parts.select(valid.fill_null(False).alias("keep"))["keep"]
    if not keep.all():
        parts = parts.filter(keep)
    hashed = parts.filter(pl.col("text").str.contains("#", literal=True)).select("line", "text")
    # integer keys: the series, its label text, the run of one name it is in
    name_code = pl.col("name").to_physical().cast(pl.Int64)
    labels_code = pl.col("labels").to_physical().cast(pl.Int64).fill_null(-1)
    distinct = parts.select(labels_code.alias("code"), pl.col("labels").cast(pl.Utf8))
    distinct = distinct.unique("code")
    parts = parts.select(
        "line",
        "name",
        "number",
        "ts_number",
        labels_code.alias("code"),
        (name_code * (1 << 32) + labels_code).alias("series"),
        pl.col("name").rle_id().alias("run"),
    )
    table, bad_labels = label_table(distinct)
    if bad_labels:
        broken = parts.filter(pl.col("code").is_in(list(bad_labels)))
        for line, code in broken.select("line", "code").iter_rows():
            found.add(line, "label-syntax", bad_labels[code])
        parts = parts.filter(~pl.col("code").is_in(list(bad_labels)))
    events = _metadata(others, format, last_line, found)
    runs = parts.group_by("run", maintain_order=True).agg(
        pl.col("line").first().cast(pl.Int64).alias("first"), pl.col("name").first().cast(pl.Utf8)
    )
    families = _families(events, runs, format, found).join(runs, on="first")
    families = families.with_columns(
        pl.col("name").str.slice(pl.col("family").str.len_chars()).alias("suffix")
    ).drop("name", "first")
    names = table.select("code", "label_names")
    parts = parts.join(families, on="run", how="left")
    parts = parts.join(table.drop("label_names"), on="code", how="left")
    # a line outside any typed family (e.g. after a `sample-name` break) still needs a
    # usable timestamp: every reader converts it
    untyped = parts.filter(pl.col("type") == "")
    found.where(untyped, _not_finite(format), "timestamp-finite")
    parts = parts.filter(pl.col("type") != "")
    _sample_rules(parts, names, format, found)
    _exemplars(hashed.join(parts.select("line", "type", "suffix"), on="line"), format, found)
    _histograms(parts.filter(pl.col("type").is_in(["histogram", "gaugehistogram"])), found)
    if format == "openmetrics":
        _interleaving(parts, found)
    return found.frame(), parts


def _interleaving(parts: pl.DataFrame, found: _Found) -> None:
    """om[metric.nointerleave] and the MetricPoints' time order, with the backfill allowance.

    A Metric is the family and its labels but `le` and `quantile`. A family passes when
    each of its Metrics is one run of lines (then its points go forward in time), or
    else each of its series is one run (the backfill layout). In a family that is
    neither, every line after a Metric's first run breaks the rule. Stateset and info
    families are left out: their Metric is not their labels but some of them.
    """
    rows = parts.filter(~pl.col("type").is_in(["stateset", "info"])).select(
        "line",
        "family_code",
        "series",
        (pl.col("family_code") * (1 << 32) + pl.col("rest")).alias("metric"),
        "ts_number",
    )
    if rows.height < 2:
        return
    rows = rows.sort("line").with_columns(
        pl.col("series").rle_id().alias("series_run"), pl.col("metric").rle_id().alias("metric_run")
    )
    rows = rows.with_columns(
        (pl.col("series_run").n_unique().over("series") > 1).alias("series_split"),
        (pl.col("metric_run").n_unique().over("metric") > 1).alias("metric_split"),
    )
    rows = rows.with_columns(
        pl.col("series_split").any().over("family_code").alias("family_series_split"),
        pl.col("metric_split").any().over("family_code").alias("family_metric_split"),
    )
    interleaved = (
        pl.col("family_series_split")
        & pl.col("metric_split")
        & (pl.col("metric_run") != pl.col("metric_run").min().over("metric"))
    )
    by_metric = pl.col("family_series_split") & ~pl.col("family_metric_split")
    backwards = by_metric & (pl.col("ts_number").diff().over("metric") < 0)
    found.many(
        rows, [(interleaved, "metric-interleaved", ""), (backwards, "metricpoint-order", "")]
    )


def _not_finite(format: str) -> pl.Expr:
    """A timestamp that is not a finite number within the years 1-9999."""
    ts = pl.col("ts_number")
    scale = 1000.0 if format == "openmetrics" else 1.0
    return ts.is_not_null() & (ts.is_nan() | ts.is_infinite() | ((ts * scale).abs() > MAX_MS))


def _sample_rules(parts: pl.DataFrame, names: pl.DataFrame, format: str, found: _Found) -> None:
    """Per-sample rules; a type's own rules run only when the file has that type."""
    kinds = set(parts["type"].unique().to_list())
    number, kind, suffix = pl.col("number"), pl.col("type"), pl.col("suffix")
    quantile = (kind == "summary") & (suffix == "")
    q = pl.col("quantile").cast(pl.Float64, strict=False)
    counted = (kind == "summary") & suffix.is_in(["_count", "_sum"])
    ts = pl.col("ts_number")
    stamped = ts.is_not_null() & ts.is_finite()
    step = pl.when(stamped).then(ts).diff().over("series")
    unstamped = pl.when(ts.is_null()).then(pl.col("series"))
    if "stateset" in kinds:
        states = parts.filter(kind == "stateset").join(names, on="code", how="left")
        found.many(
            states,
            [
                (~pl.col("label_names").list.contains(pl.col("family")), "stateset-label", ""),
                (~number.is_in([0.0, 1.0]), "stateset-value", ""),
            ],
        )
    typed = {
        "counter": [
            (
                (kind == "counter")
                & suffix.is_in(["_total", ""])
                & (number.is_nan() | (number < 0)),
                "counter-value",
                "",
            )
        ],
        "histogram": [
            (
                (kind == "histogram") & (suffix != "_bucket") & pl.col("le").is_not_null(),
                "histogram-le",
                "only _bucket samples have an le label",
            )
        ],
        "summary": [
            (quantile & (q.is_null() | q.is_nan() | (q < 0) | (q > 1)), "summary-quantile", ""),
            (quantile & (number < 0), "summary-value", ""),
            (
                counted & ((number < 0) | ((suffix == "_count") & number.is_nan())),
                "summary-value",
                "",
            ),
        ],
        "info": [((kind == "info") & (number != 1.0), "info-value", "")],
    }
    checks = [check for name in sorted(kinds & set(typed)) for check in typed[name]]
    # timestamps: finite, in range, not backwards within a series, one sample each
    checks += [
        (_not_finite(format), "timestamp-finite", ""),
        (stamped & (step < 0), "timestamp-order", ""),
        (stamped & (step == 0), "duplicate-sample", ""),
    ]
    if parts["ts_number"].null_count():
        checks.append(
            (unstamped.is_not_null() & ~unstamped.is_first_distinct(), "duplicate-sample", "")
        )
    found.many(parts, checks)
