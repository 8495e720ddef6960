"""OpenMetrics / Prometheus text files as samples frames: the embedded default source.

A dataset folder's `metrics.om` is what Prometheus would have stored, written as
OpenMetrics text with timestamps (seconds), so the toolkit runs with no server and
`promtool tsdb create-blocks-from openmetrics` can backfill the same file.

Reading accepts what real exporters write: strict OpenMetrics (counter families
declared without `_total`, `# UNIT`, `_created` samples, exemplars) and the
Prometheus text format (timestamps in milliseconds). Parsing is vectorised: one
regular expression over all lines in polars, and each distinct label set is parsed
once in Python (there are as many as there are series, not samples).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

import polars as pl

from wsanalysis.errors import DataError
from wsanalysis.sources.schema import SAMPLES_FIXED, TIMESTAMP, empty_samples, normalize_samples
from wsanalysis.sources.variants import DEFAULT_VARIANTS, VariantMapping

Format = Literal["openmetrics", "prometheus"]

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABELS = r'(?:[^"}]|"(?:[^"\\]|\\.)*")*'
_SAMPLE = (
    rf"^(?P<name>{_NAME})(?:\{{(?P<labels>{_LABELS})\}})?[ \t]+(?P<value>[^ \t#]+)"
    r"(?:[ \t]+(?P<ts>[^ \t#]+))?[ \t]*(?:#.*)?$"
)
_LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
_UNESCAPE = re.compile(r'\\[\\"n]')


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _LABEL_PAIR.match(text, position)
        if not match:
            raise ValueError(f"cannot read labels near {text[position:][:40]!r}")
        name, value = match.group(1), _UNESCAPE.sub(lambda m: _ESCAPES[m.group(0)], match.group(2))
        if name in labels:
            raise ValueError(f"label {name!r} appears twice")
        labels[name] = value
        position = match.end()
        if match.group(3) == "" and position < len(text):
            raise ValueError(f"missing comma before {text[position:][:40]!r}")
    return labels


def _read_text(source: str | Path) -> str:
    if isinstance(source, Path) or "\n" not in source:
        path = Path(source)
        if not path.exists():
            raise DataError(f"metrics file {path} does not exist", "check the dataset folder")
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(
                f"{path} is not UTF-8 text (byte {error.start})",
                "OpenMetrics files are UTF-8; re-export the metrics as text",
            ) from error
    return source


def _bad_line(lines: pl.DataFrame, reason: str, origin: str) -> DataError:
    first = lines.row(0, named=True)
    return DataError(
        f"{origin} line {first['line']}: {reason}: {first['text'][:120]!r}"
        + (f" (and {lines.height - 1} more such lines)" if lines.height > 1 else ""),
        'fix or remove the line; samples look like `name{label="v"} value timestamp`',
    )


def read_openmetrics(
    source: str | Path,
    *,
    variants: VariantMapping = DEFAULT_VARIANTS,
    metrics: Iterable[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    format: Format | None = None,
    timestamp: datetime | None = None,
    keep_created: bool = False,
) -> pl.DataFrame:
    """Read OpenMetrics or Prometheus text into the samples frame.

    `source` is a path (plain or gzip) or the text itself. `format` defaults to
    OpenMetrics when the text has an `# EOF` line (timestamps in seconds), else the
    Prometheus text format (milliseconds). Samples without a timestamp take
    `timestamp` (e.g. the scrape time) or are an error. `_created` samples are
    dropped unless `keep_created` (they are start times, not observations).
    `[start, end]` is inclusive at both ends, like a Prometheus range selector.
    """
    origin = str(source) if isinstance(source, Path) else "metrics text"
    text = _read_text(source)
    lines = (
        pl.DataFrame({"text": text.split("\n")})
        .with_row_index("line", offset=1)
        .with_columns(pl.col("text").str.strip_chars_end("\r"))
    )
    stripped = pl.col("text").str.strip_chars()
    if format is None:
        format = "openmetrics" if lines.filter(stripped == "# EOF").height else "prometheus"
    samples = lines.filter((stripped != "") & ~stripped.str.starts_with("#"))
    if format == "openmetrics":
        eof = lines.filter(stripped == "# EOF")
        if eof.height and lines.filter((pl.col("line") > eof["line"][0]) & (stripped != "")).height:
            raise _bad_line(
                lines.filter(pl.col("line") > eof["line"][0]), "text after # EOF", origin
            )
    parts = samples.with_columns(pl.col("text").str.extract_groups(_SAMPLE).alias("p")).unnest("p")
    unreadable = parts.filter(pl.col("name").is_null())
    if unreadable.height:
        raise _bad_line(unreadable, "not a sample line", origin)
    if metrics is not None:
        parts = parts.filter(pl.col("name").is_in(list(metrics)))
    if not keep_created:
        parts = parts.filter(~pl.col("name").str.ends_with("_created"))
    if parts.height == 0:
        return empty_samples()

    value = pl.col("value").str.replace(r"^\+?Inf$", "inf").str.replace(r"^NaN$", "nan")
    parts = parts.with_columns(
        value.cast(pl.Float64, strict=False).alias("number"),
        pl.col("ts").cast(pl.Float64, strict=False).alias("ts_number"),
        pl.col("labels").fill_null(""),
    )
    bad_value = parts.filter(pl.col("number").is_null())
    if bad_value.height:
        raise _bad_line(bad_value, "the value is not a number", origin)
    bad_ts = parts.filter(pl.col("ts").is_not_null() & pl.col("ts_number").is_null())
    if bad_ts.height:
        raise _bad_line(bad_ts, "the timestamp is not a number", origin)
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
            parsed.append(_parse_labels(labels))
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
        schema={"labels": pl.Utf8, **{n: pl.Utf8 for n in names}},
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
    ).sort(["__family", "metric", "__labels", "timestamp"])
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
