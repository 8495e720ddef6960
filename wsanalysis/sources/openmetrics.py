"""OpenMetrics / Prometheus text files as samples frames: the embedded default source.

A dataset folder's `metrics.om` is what Prometheus would have stored, written as
OpenMetrics text with timestamps (seconds), so the toolkit runs with no server and
`promtool tsdb create-blocks-from openmetrics` can backfill the same file.

Reading accepts what real exporters write: strict OpenMetrics (counter families
declared without `_total`, `# UNIT`, `_created` samples, exemplars) and the
Prometheus text format (timestamps in milliseconds). Parsing is vectorised in polars:
ordinary lines are split at spaces and only their distinct series (`name{labels}`) go
through the regular expression; lines a split cannot read exactly (comments, exemplars,
tabs, odd spacing) take the full sample regular expression, which also names bad
lines. Each distinct label set is parsed once in Python (there are as many as there
are series, not samples).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypedDict, Unpack

import polars as pl

from wsanalysis.errors import DataError, UsageError
from wsanalysis.sources import om_rules
from wsanalysis.sources.om_syntax import SAMPLE, SAMPLE_START, SERIES, Format, parse_labels
from wsanalysis.sources.schema import SAMPLES_FIXED, TIMESTAMP, empty_samples, normalize_samples
from wsanalysis.sources.telemetry import REFERENCE, Telemetry
from wsanalysis.sources.translation import reference_name, samples_to_reference, user_sample_name
from wsanalysis.sources.variants import VariantMapping


def _read_text(source: Path | str | bytes) -> pl.Series:
    """The text as a one-value polars Series: a Path is a file, str or bytes the text itself.

    Never a guess: a str is always text, so `""` is an empty exposition, not `.`.
    A file is decoded by polars, which is faster.
    """
    if isinstance(source, os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise DataError(f"metrics file {path} does not exist", "check the dataset folder")
        return _decoded(path.read_bytes(), str(path))
    if isinstance(source, bytes):
        return _decoded(source, "metrics text")
    if isinstance(source, str):
        return pl.Series([source], dtype=pl.Utf8)
    raise UsageError(
        f"cannot read metrics from a {type(source).__name__}",
        "pass a pathlib.Path for a file, or the text itself as str or bytes",
    )


def _decoded(raw: bytes, origin: str) -> pl.Series:
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(
                f"{origin} looks gzip-compressed but cannot be decompressed: {error}",
                "check the file was copied whole (gzip -t FILE)",
            ) from error
    try:
        return pl.Series([raw], dtype=pl.Binary).cast(pl.Utf8)
    except pl.exceptions.PolarsError:  # not UTF-8: let Python find the bad byte
        return pl.Series([_decode(raw, origin)], dtype=pl.Utf8)


def _decode(raw: bytes, path: str) -> str:
    """Python's decoding, for the position of the first bad byte in the error."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte {error.start})",
            "OpenMetrics files are UTF-8; re-export the metrics as text",
        ) from error


def _lines(text: pl.Series) -> pl.DataFrame:
    """The text's lines without `\\r` endings, numbered from 1."""
    lines = pl.select(pl.lit(text).str.split("\n").explode().alias("text"))
    lines = lines.with_row_index("line", offset=1)
    if lines["text"].str.ends_with("\r").any():
        lines = lines.with_columns(pl.col("text").str.strip_chars_end("\r"))
    return lines


def _eof_line(lines: pl.DataFrame) -> int | None:
    """Number of the first `# EOF` line, if any (looked for among the non-sample lines)."""
    candidates = lines.filter(pl.col("text").str.contains("# EOF", literal=True))
    eof = candidates.filter(pl.col("text").str.strip_chars() == "# EOF")
    return eof["line"][0] if eof.height else None


def _holds(frame: pl.DataFrame, condition: pl.Expr) -> pl.Series:
    """The condition per row, null as false (as `filter` takes it)."""
    return frame.select(condition.fill_null(False).alias("holds")).to_series()


def _where(frame: pl.DataFrame, condition: pl.Expr) -> pl.DataFrame:
    """`frame.filter(condition)`, without copying the frame when every row is kept."""
    holds = _holds(frame, condition)
    return frame if holds.all() else frame.filter(holds)


def _partition(frame: pl.DataFrame, condition: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows where `condition` holds and the others; no copy when it holds everywhere."""
    holds = _holds(frame, condition)
    if holds.all():
        return frame, frame.clear()
    return frame.filter(holds), frame.filter(~holds)


def _numbers() -> list[pl.Expr]:
    """`number` and `ts_number` from the `value` and `ts` strings (null: not a number).

    polars' float parser reads OpenMetrics' `+Inf`, `Inf`, `-Inf` and `NaN` itself,
    and no string with a space, tab or `#` in it.
    """
    return [
        pl.col("value").cast(pl.Float64, strict=False).alias("number"),
        pl.col("ts").cast(pl.Float64, strict=False).alias("ts_number"),
    ]


def _parts_by_regex(samples: pl.DataFrame) -> pl.DataFrame:
    """Sample parts of any line by the full sample regex (null `name`: not a sample line).

    Exact for every line but slow; the split readers must agree with it.
    """
    parts = samples.with_columns(pl.col("text").str.extract_groups(SAMPLE).alias("p"))
    parts = parts.unnest("p").with_columns(_numbers())
    return parts.with_columns(pl.col("name", "labels").cast(pl.Categorical))


def _series_parts(series: pl.Series) -> pl.DataFrame:
    """`name` and `labels` of each series string (null `name`: not a valid `name{labels}`).

    Samples come in runs of one series (exporters write a series together), so each
    run is looked up once, and each distinct series goes through the regex once.
    """
    runs = series.rle().struct.field("value").to_frame("series")
    known = runs.unique().with_columns(pl.col("series").str.extract_groups(SERIES).alias("p"))
    known = known.unnest("p").with_columns(pl.col("name", "labels").cast(pl.Categorical))
    per_run = runs.join(known, on="series", how="left", maintain_order="left")
    return per_run.select("name", "labels")[series.rle_id()]


def _parts_by_split(
    samples: pl.DataFrame, series: pl.Expr, value: pl.Expr, ts: pl.Expr
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines split as `series value [ts]`: those the split reads exactly, and the rest.

    A line is read when its series is a valid `name{labels}` and its value and
    timestamp (if any) are numbers, so single tokens without space, tab or `#`: then
    the full sample regex reads the same parts from it.
    """
    split = samples.with_columns(series.alias("series"), value.alias("value"), ts.alias("ts"))
    split = pl.concat([split, _series_parts(split["series"])], how="horizontal")
    split = split.drop("series").with_columns(_numbers())
    numbers = pl.col("number").is_not_null() & (
        pl.col("ts").is_null() | pl.col("ts_number").is_not_null()
    )
    read, left = _partition(split, pl.col("name").is_not_null() & numbers)
    return read, left.select(samples.columns)


def _split_at_spaces(samples: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The common line, `series value [ts]` with no space in the series: split at spaces."""
    pieces = pl.col("text").str.splitn(" ", 3)
    return _parts_by_split(
        samples,
        pieces.struct.field("field_0"),
        pieces.struct.field("field_1"),
        pieces.struct.field("field_2"),
    )


def _split_at_brace(samples: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`name{labels} value [ts]` with spaces in label values: split at the first `} `.

    A `} ` inside a label value leaves the series with an open quote, so it is not read.
    """
    at_brace = pl.col("text").str.splitn("} ", 2)
    rest = at_brace.struct.field("field_1").str.splitn(" ", 2)
    return _parts_by_split(
        samples,
        pl.concat_str(at_brace.struct.field("field_0"), pl.lit("}")),
        rest.struct.field("field_0"),
        rest.struct.field("field_1"),
    )


def _parts(samples: pl.DataFrame) -> pl.DataFrame:
    """Each sample line's `name`, `labels`, `value`, `ts` as the full sample regex reads them.

    Lines are split at spaces, or else at the first `} `; the lines left (odd spacing,
    bad lines) take the full regex, and so do lines with a `#` (exemplars, comments)
    or a tab, which a split would only fail on. Rows stay in line order. Also
    `number` and `ts_number`; `name` and `labels` are categorical (few distinct
    values, cheap to filter and join).
    """
    plain, odd = _partition(samples, ~pl.col("text").str.contains("[#\t]"))
    by_spaces, left = _split_at_spaces(plain)
    by_brace, left = _split_at_brace(left)
    by_regex = _parts_by_regex(pl.concat([left, odd]).sort("line"))
    found = [frame for frame in (by_spaces, by_brace, by_regex) if frame.height]
    if len(found) <= 1:
        return found[0] if found else by_regex
    return pl.concat(found, how="diagonal").sort("line")


def _bad_line(lines: pl.DataFrame, reason: str, origin: str) -> DataError:
    first = lines.row(0, named=True)
    return DataError(
        f"{origin} line {first['line']}: {reason}: {first['text'][:120]!r}"
        + (f" (and {lines.height - 1} more such lines)" if lines.height > 1 else ""),
        'fix or remove the line; samples look like `name{label="v"} value timestamp`',
    )


def _broken(violations: pl.DataFrame, lines: pl.DataFrame, origin: str, format: str) -> DataError:
    """The first broken rule as an error naming its line and the rule."""
    line, rule, detail = violations.row(0)
    same = violations.filter(pl.col("rule") == rule).height - 1
    text = lines.filter(pl.col("line") == line)["text"]
    shown = text[0][:120] if text.len() else ""
    others = violations.height - 1 - same
    return DataError(
        f"{origin} line {line}: {detail}: {shown!r} [rule {rule}]"
        + (f" (and {same} more such lines)" if same else "")
        + (f" ({others} more lines break other rules)" if others else ""),
        f"fix the exporter or the file ({format} text rules), or read it leniently "
        "(--lenient, or lenient=True) to drop such lines and count them",
    )


@dataclass
class MetricsLoad:
    """A read of metrics text: the samples frame and what lenient mode dropped, by rule."""

    frame: pl.DataFrame
    source: str
    format: str
    dropped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    #: sample name -> rule -> lines dropped; "*" for sample lines whose name cannot be
    #: read (they could have been any series). Metadata lines name no series.
    dropped_series: dict[str, Counter[str]] = field(default_factory=dict)
    #: every sample name the text holds, as written (the user's names: what a coverage
    #: check suggests from when a name the gates read is missing)
    names: frozenset[str] = frozenset()

    @property
    def dropped_lines(self) -> int:
        return sum(self.dropped.values())

    def warnings(self) -> dict[str, list[str]]:
        """Per sample name, why its samples are incomplete: the judge makes the gates
        reading it inconclusive (`loading.SourceWarnings`, `canary.partial`)."""
        name = Path(self.source).name
        warnings = {}
        for series, rules in self.dropped_series.items():
            n = sum(rules.values())
            what = "unreadable sample" if series == "*" else series
            warnings[series] = [
                f"{name} read leniently: {n:,} line{'s' if n != 1 else ''} of {what} "
                f"dropped ({', '.join(sorted(rules))})"
            ]
        return warnings

    def summary(self) -> str:
        text = [
            f"{self.source} ({self.format}): {self.frame.height:,} samples, "
            f"{self.dropped_lines:,} lines dropped"
        ]
        text += [
            f"  {n:,} × {rule}: {om_rules.RULES[rule]}" for rule, n in self.dropped.most_common()
        ]
        text += [f"  e.g. {example}" for example in self.examples]
        return "\n".join(text)


class ReadOptions(TypedDict, total=False):
    """What a read of metrics text may be told, besides the text (see `load_openmetrics`)."""

    variants: VariantMapping | None
    telemetry: Telemetry
    metrics: Iterable[str] | None
    start: datetime | None
    end: datetime | None
    format: Format | None
    timestamp: datetime | None
    keep_created: bool
    lenient: bool


def read_openmetrics(source: Path | str | bytes, **options: Unpack[ReadOptions]) -> pl.DataFrame:
    """Read OpenMetrics or Prometheus text into the samples frame (see `load_openmetrics`)."""
    return load_openmetrics(source, **options).frame


def load_openmetrics(
    source: Path | str | bytes,
    *,
    variants: VariantMapping | None = None,
    telemetry: Telemetry = REFERENCE,
    metrics: Iterable[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    format: Format | None = None,
    timestamp: datetime | None = None,
    keep_created: bool = False,
    lenient: bool = False,
) -> MetricsLoad:
    """Read OpenMetrics or Prometheus text, checked against its format's rules.

    `source` is a `Path` (plain or gzip file) or the text itself (`str` or `bytes`):
    a `str` is never taken for a file name. `format` defaults to OpenMetrics when the
    text has an `# EOF` line (timestamps in seconds), else the Prometheus text format
    (milliseconds). Every rule of the format (`om_rules.RULES`) is checked on every
    line; the first broken one raises a DataError naming the line and the rule, unless
    `lenient`, which drops the lines that break rules and counts them by rule in
    `MetricsLoad.dropped`. Samples without a timestamp take `timestamp` (e.g. the
    scrape time) or are an error. `_created` samples are dropped unless
    `keep_created` (they are start times, not observations). `[start, end]` is
    inclusive at both ends, like a Prometheus range selector.

    `telemetry` names the user's metrics, labels and values: `metrics` is given in the
    contract's names and the frame comes back in them; `variants` defaults to the
    mapping's (the contract's `variant` label when it has none).
    """
    variants = variants if variants is not None else telemetry.variant_mapping
    if metrics is not None:
        metrics = [user_sample_name(telemetry, name) for name in metrics]
    origin = str(source) if isinstance(source, os.PathLike) else "metrics text"
    lines = _lines(_read_text(source))
    samples, others = _partition(lines, pl.col("text").str.contains(SAMPLE_START))
    eof = _eof_line(others)
    if format is None:
        format = "openmetrics" if eof is not None else "prometheus"
    if format not in ("openmetrics", "prometheus"):
        raise UsageError(f"unknown metrics format {format!r}", "use openmetrics or prometheus")
    parts = _parts(samples)
    violations, _ = om_rules.check(
        lines, others, parts, format, eof, scrape_time=timestamp is not None
    )
    load = MetricsLoad(frame=empty_samples(), source=origin, format=format)
    if violations.height:
        if not lenient:
            raise _broken(violations, lines, origin, format)
        per_line = violations.unique("line", keep="first", maintain_order=True)
        load.dropped = Counter(dict(per_line["rule"].value_counts().iter_rows()))
        for line, rule, detail in per_line.head(5).iter_rows():
            load.examples.append(f"line {line}: {detail} [rule {rule}]")
        load.dropped_series = {
            reference_name(telemetry, name): rules
            for name, rules in _dropped_series(per_line, parts).items()
        }
        parts = parts.filter(~pl.col("line").is_in(per_line["line"].implode()))
    load.names = frozenset(parts["name"].drop_nulls().unique().cast(pl.Utf8).to_list())
    frame = _frame(parts, origin, format, variants, metrics, start, end, timestamp, keep_created)
    load.frame = samples_to_reference(frame, telemetry)
    return load


def _dropped_series(per_line: pl.DataFrame, parts: pl.DataFrame) -> dict[str, Counter[str]]:
    """Sample name -> rule -> dropped lines, for the dropped lines that are samples."""
    samples = per_line.join(
        parts.select(pl.col("line").cast(pl.Int64), pl.col("name").cast(pl.Utf8)), on="line"
    )
    named = samples.select(pl.col("name").fill_null("*"), "rule")
    series: dict[str, Counter[str]] = {}
    for name, rule, n in named.group_by("name", "rule").len().sort("name", "rule").rows():
        series.setdefault(name, Counter())[rule] = n
    return series


def _frame(
    parts: pl.DataFrame,
    origin: str,
    format: str,
    variants: VariantMapping,
    metrics: Iterable[str] | None,
    start: datetime | None,
    end: datetime | None,
    timestamp: datetime | None,
    keep_created: bool,
) -> pl.DataFrame:
    """The samples frame from sample lines that keep every rule."""
    if metrics is not None:
        parts = _where(parts, pl.col("name").is_in(list(metrics)))
    if not keep_created:
        parts = _where(parts, ~pl.col("name").cat.ends_with("_created"))
    if parts.height == 0:
        return empty_samples()

    parts = parts.with_columns(pl.col("labels").fill_null(""))
    missing_ts = parts.filter(pl.col("ts").is_null())
    if missing_ts.height and timestamp is None:
        raise _bad_line(
            missing_ts, "the sample has no timestamp (pass `timestamp=` for a scrape)", origin
        )

    scale = 1000.0 if format == "openmetrics" else 1.0
    epoch_ms = (pl.col("ts_number") * scale).round(0).cast(pl.Int64)
    if timestamp is not None:
        epoch_ms = epoch_ms.fill_null(int(timestamp.timestamp() * 1000))
    parts = parts.with_columns(epoch_ms.cast(TIMESTAMP).alias("timestamp"))

    label_sets = parts.select("labels").unique()
    parsed: list[dict[str, str]] = []
    for labels in label_sets["labels"].to_list():
        try:
            parsed.append(parse_labels(labels))
        except ValueError as error:
            where = parts.filter(pl.col("labels") == labels).head(1)
            raise _bad_line(where, str(error), origin) from None
    names = sorted({name for labels in parsed for name in labels})
    reserved = set(SAMPLES_FIXED) - {"variant"}
    clash = reserved.intersection(names)
    if clash:
        raise DataError(
            f"{origin}: label(s) {sorted(clash)} clash with the samples frame's own columns",
            "relabel them before loading (e.g. with promtool or sed)",
        )
    label_frame = pl.DataFrame(
        {"labels": label_sets["labels"], **{n: [p.get(n) for p in parsed] for n in names}},
        schema={"labels": pl.Categorical, **{n: pl.Utf8 for n in names}},
    )
    frame = parts.select("labels", pl.col("name").alias("metric"), "timestamp", "number").join(
        label_frame, on="labels", how="left"
    )
    frame = frame.with_columns(variants.variant_expr(frame.columns).alias("__variant"))
    dropped = variants.consumed_labels() | {"labels", "variant"}
    frame = frame.drop([c for c in frame.columns if c in dropped]).rename(
        {"__variant": "variant", "number": "value"}
    )
    if start is not None:
        frame = frame.filter(pl.col("timestamp") >= start)
    if end is not None:
        frame = frame.filter(pl.col("timestamp") <= end)
    return normalize_samples(frame)


def _families(metrics: set[str], histograms: set[str]) -> dict[str, tuple[str, str]]:
    """Each series name's (family, type), as Prometheus' naming implies.

    `histograms` are the families that have a `_bucket` series with an `le` label;
    only their `_sum` and `_count` join them.
    """
    families = {}
    for metric in metrics:
        family, kind = metric, "gauge"
        for suffix in ("_bucket", "_sum", "_count"):
            if metric.endswith(suffix) and metric.removesuffix(suffix) in histograms:
                family, kind = metric.removesuffix(suffix), "histogram"
        if kind == "gauge" and metric.endswith("_total"):
            family, kind = metric.removesuffix("_total"), "counter"
        families[metric] = (family, kind)
    return families


def _escape(column: str) -> pl.Expr:
    return (
        pl.col(column)
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\n", "\\n", literal=True)
    )


def _format_value(column: str) -> pl.Expr:
    """Go-parsable numbers: integers without `.0`, `NaN`, `+Inf`, `-Inf`."""
    value = pl.col(column)
    integral = (value == value.floor()) & (value.abs() < 1e15)
    return (
        pl.when(value.is_nan())
        .then(pl.lit("NaN"))
        .when(value.is_infinite())
        .then(pl.when(value > 0).then(pl.lit("+Inf")).otherwise(pl.lit("-Inf")))
        .when(integral)
        .then(value.cast(pl.Int64).cast(pl.Utf8))
        .otherwise(value.cast(pl.Utf8))
    )


def write_openmetrics(
    frame: pl.DataFrame,
    path: Path | str,
    *,
    help: dict[str, str] | None = None,
    variant_label: str = "variant",
) -> None:
    """Write a samples frame as backfillable OpenMetrics text (seconds, `# EOF`).

    Families are contiguous, each with its `# TYPE` (histogram for `_bucket/_sum/
    _count` with `le`, counter for `_total`, gauge otherwise), series in label
    order and samples in time order, which is what `promtool` and the reader
    expect. The variant becomes the `variant_label` target label.
    """
    path = Path(path)
    frame = normalize_samples(frame)
    labels = [c for c in frame.columns if c not in SAMPLES_FIXED]
    label_columns = [variant_label, *labels] if variant_label not in labels else labels
    frame = frame.rename({"variant": variant_label}) if variant_label != "variant" else frame
    frame = frame.with_columns([_escape(c) for c in label_columns])
    pairs = [
        pl.when(pl.col(c).is_not_null()).then(pl.format('{}="{}"', pl.lit(c), pl.col(c)))
        for c in sorted(label_columns)
    ]
    label_text = pl.concat_str(pairs, separator=",", ignore_nulls=True) if pairs else pl.lit("")
    frame = frame.with_columns(label_text.alias("__labels"))
    metric_names = set(frame["metric"].unique().to_list())
    histograms = set()
    if "le" in labels:
        bucketed = frame.filter(pl.col("le").is_not_null())["metric"].unique().to_list()
        histograms = {m.removesuffix("_bucket") for m in bucketed if m.endswith("_bucket")}
    families = _families(metric_names, histograms)
    frame = frame.with_columns(
        pl.col("metric").replace_strict({m: f for m, (f, _) in families.items()}).alias("__family"),
        _format_value("value").alias("__value"),
        (pl.col("timestamp").dt.epoch("ms") / 1000).alias("__ts"),
    )
    # buckets in increasing `le` (the specification's order), series otherwise by labels
    rest = [p for c, p in zip(sorted(label_columns), pairs, strict=True) if c != "le"]
    rest_text = pl.concat_str(rest, separator=",", ignore_nulls=True) if rest else pl.lit("")
    le = pl.col("le").cast(pl.Float64, strict=False) if "le" in labels else pl.lit(None)
    frame = frame.with_columns(rest_text.alias("__rest"), le.alias("__le")).sort(
        ["__family", "metric", "__rest", "__le", "__labels", "timestamp"], nulls_last=True
    )
    frame = frame.with_columns(
        pl.when(pl.col("__ts") == pl.col("__ts").floor())
        .then(pl.col("__ts").cast(pl.Int64).cast(pl.Utf8))
        .otherwise(pl.col("__ts").round(3).cast(pl.Utf8))
        .alias("__ts")
    )
    sample_lines = pl.concat_str(
        [
            pl.col("metric"),
            pl.when(pl.col("__labels") != "")
            .then(pl.concat_str([pl.lit("{"), pl.col("__labels"), pl.lit("}")]))
            .otherwise(pl.lit("")),
            pl.lit(" "),
            pl.col("__value"),
            pl.lit(" "),
            pl.col("__ts"),
        ]
    )
    frame = frame.with_columns(sample_lines.alias("__line"))
    help = help or {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="\n") as out:
        for (family,), group in frame.group_by(["__family"], maintain_order=True):
            kind = next(k for f, k in families.values() if f == family)
            if family in help:
                out.write(f"# HELP {family} {help[family]}\n")
            out.write(f"# TYPE {family} {kind}\n")
            out.write("\n".join(group["__line"].to_list()))
            out.write("\n")
        out.write("# EOF\n")
