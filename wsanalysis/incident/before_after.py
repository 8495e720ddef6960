"""The production before/after table: did the fix help, by how much, how sure are we.

Two windows (or two datasets): reconnection storms, reconnect attempts, auth errors
(4401/4403/403 closes), duplicate messages and manual refreshes (give-ups) per day, and
the p95 connection duration. Counts from RUM are divided by the RUM session sampling rate
of their side (labels.json), so a 10%-sampled export is not read as 10x fewer errors.
Rates carry the rate ratio after/before with its interval (`stats.rates.compare_rates`,
hour buckets paired by position when both sides have as many, Poisson on totals else);
the p95 carries the Kaplan–Meier difference with its interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from wsanalysis.frames.counters import increases
from wsanalysis.frames.measures import bucket_of
from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.close_codes import AUTH_CODES
from wsanalysis.incident.delivery import delivery_counts
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.survival import durations
from wsanalysis.sources.metric_names import CLOSES_TOTAL
from wsanalysis.sources.schema import CLOSE, GIVE_UP, RECONNECT_SCHEDULED
from wsanalysis.stats.rates import compare_rates
from wsanalysis.stats.survival import compare_duration_quantiles, kaplan_meier

HOUR = timedelta(hours=1)
DAY_S = 86400.0


@dataclass(frozen=True)
class Row:
    """One line of the table: per-day values (or seconds for durations), change, interval."""

    measure: str
    before: float
    after: float
    change: float  # ratio after/before for rates, difference for durations
    ci_low: float
    ci_high: float
    unit: str
    note: str = ""

    def to_json(self) -> dict:
        def clean(v: float) -> float | None:
            return None if v is None or not math.isfinite(v) else round(v, 4)

        return {
            "measure": self.measure, "before": clean(self.before), "after": clean(self.after),
            "change": clean(self.change), "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high), "unit": self.unit, "note": self.note,
        }  # fmt: skip


def _hourly(data: IncidentData, column: str, frame: pl.DataFrame) -> np.ndarray:
    hours = max(1, math.ceil(data.window.duration / HOUR))
    counts = frame.group_by(bucket_of(column, data.window, HOUR).alias("b")).len()
    index = ((counts["b"] - data.window.start).dt.total_seconds() // 3600).to_numpy()
    out = np.zeros(hours)
    np.add.at(out, index.astype(int), counts["len"].to_numpy())
    return out


def _events(data: IncidentData, kind: str) -> tuple[np.ndarray, str]:
    """Hourly counts of one measure (scaled to all users) and where they came from."""
    if kind == "auth":
        if data.has_server and "code" in data.samples.columns:
            all_closes = data.samples.filter(pl.col("metric") == CLOSES_TOTAL)
            closes = all_closes.filter(pl.col("code").is_in([str(c) for c in AUTH_CODES]))
            if all_closes.height:  # the server counts closes: no auth series means none
                steps = increases(closes).filter(pl.col("increase") > 0)
                hours = max(1, math.ceil(data.window.duration / HOUR))
                out = np.zeros(hours)
                idx = (steps["timestamp"] - data.window.start).dt.total_seconds() // 3600
                idx = idx.clip(0, hours - 1).to_numpy().astype(int)
                np.add.at(out, idx, steps["increase"].to_numpy())
                return out, "server"
        where = (pl.col("type") == CLOSE) & pl.col("code").is_in(list(AUTH_CODES))
    elif kind == "reconnects":
        where = pl.col("type") == RECONNECT_SCHEDULED
    else:
        where = pl.col("type") == GIVE_UP
    if not data.has_rum:
        return np.zeros(1), "none"
    return _hourly(data, "ts", data.beacons.filter(where)) / data.rum_sample, "rum"


def _rate_row(measure: str, before: np.ndarray, after: np.ndarray, db: float, da: float,
              note: str = "") -> Row:  # fmt: skip
    per_day_b, per_day_a = before.sum() / db * DAY_S, after.sum() / da * DAY_S
    if before.sum() + after.sum() == 0:
        return Row(measure, per_day_b, per_day_a, math.nan, math.nan, math.nan, "per day", note)
    if len(before) == len(after) and len(before) >= 3:
        hours = np.full(len(before), 1.0)
        result = compare_rates(after, hours, before, hours)
    else:
        result = compare_rates([after.sum()], [da], [before.sum()], [db], method="poisson")
    ci = result.confidence_interval()
    return Row(measure, per_day_b, per_day_a, result.statistic, ci.low, ci.high, "per day", note)


def before_after(before: IncidentData, after: IncidentData) -> list[Row]:
    """The table's rows, in the production report's order."""
    db = before.window.duration.total_seconds()
    da = after.window.duration.total_seconds()
    rows = []
    storms_b = len(analyze(before).of_kind("reconnect_storm"))
    storms_a = len(analyze(after).of_kind("reconnect_storm"))
    rows.append(Row("reconnection storms", storms_b / db * DAY_S, storms_a / da * DAY_S,
                    math.nan, math.nan, math.nan, "per day",
                    "episodes found by the storm detector; too few for an interval"))  # fmt: skip
    for kind, label in (("reconnects", "reconnect attempts"), ("auth", "auth errors (4401/403)"),
                        ("give_ups", "manual refreshes (give-ups)")):  # fmt: skip
        (eb, sb), (ea, sa) = _events(before, kind), _events(after, kind)
        rows.append(_rate_row(label, eb, ea, db, da, f"from {sb} / {sa}"))
    dup_b = delivery_counts(before) if before.has_rum else None
    dup_a = delivery_counts(after) if after.has_rum else None
    if dup_b is not None and dup_a is not None:
        nb = dup_b.frame["duplicates"].sum() / before.rum_sample
        na = dup_a.frame["duplicates"].sum() / after.rum_sample
        rows.append(_rate_row("duplicate messages", np.array([nb]), np.array([na]), db, da,
                              "messages shown twice (RUM)"))  # fmt: skip
    fb, fa = durations(before), durations(after)
    if fb is not None and fa is not None:
        kb = kaplan_meier(fb["duration"].to_numpy(), fb["observed"].to_numpy())
        ka = kaplan_meier(fa["duration"].to_numpy(), fa["observed"].to_numpy())
        diff = compare_duration_quantiles(ka, kb, 0.95)
        ci = diff.confidence_interval()
        rows.append(Row("p95 connection duration", kb.duration_quantile(0.95).estimate,
                        ka.duration_quantile(0.95).estimate, diff.statistic, ci.low, ci.high,
                        "seconds", "Kaplan–Meier, open sockets censored"))  # fmt: skip
    return rows


def render(rows: list[Row]) -> str:
    """A markdown table a manager can read."""

    def num(v: float, unit: str) -> str:
        if v is None or not math.isfinite(v):
            return "–"
        return f"{v / 60:.1f} min" if unit == "seconds" else f"{v:,.1f}"

    lines = [
        "| measure | before | after | change | 95% CI | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if r.unit == "seconds":
            change = f"{r.change / 60:+.1f} min" if math.isfinite(r.change) else "–"
            ci = (f"{r.ci_low / 60:+.1f} to {r.ci_high / 60:+.1f} min"
                  if math.isfinite(r.ci_low) else "–")  # fmt: skip
        else:
            change = f"x{r.change:.2f}" if math.isfinite(r.change) else "–"
            ci = f"x{r.ci_low:.2f} to x{r.ci_high:.2f}" if math.isfinite(r.ci_low) else "–"
        unit = "" if r.unit == "seconds" else "/day"
        lines.append(f"| {r.measure} | {num(r.before, r.unit)}{unit} | {num(r.after, r.unit)}"
                     f"{unit} | {change} | {ci} | {r.note} |")  # fmt: skip
    return "\n".join(lines)
