"""What a service's data hold, role by role, against a telemetry mapping (and the template
of one): `wsanalysis telemetry check` and `wsanalysis telemetry init`.

Each role of the contract (a metric family, a label, the variants, a beacon type, a beacon
field) is looked up under the name the mapping gives it; what is found is counted per
variant, what is missing comes with the closest names the data hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from wsanalysis.sources.metric_names import COUNTER_LABELS, FAMILIES, HISTOGRAMS
from wsanalysis.sources.schema import RUM_TYPES
from wsanalysis.sources.telemetry import (
    REFERENCE_FIELDS,
    REFERENCE_LABELS,
    Telemetry,
    closest,
)
from wsanalysis.sources.translation import user_sample_name

ROLES = ("canary", "control")


@dataclass(frozen=True)
class Finding:
    """One role: what it is (`ws_closes_total`), as the mapping names it, and what was found."""

    kind: str  # metric, label, variants, beacon type, beacon field
    reference: str
    yours: str
    found: bool
    detail: str

    def line(self) -> str:
        mark = "found  " if self.found else "MISSING"
        name = (
            self.reference if self.yours == self.reference else f"{self.reference} = {self.yours}"
        )
        return f"  [{mark}] {self.kind} {name}: {self.detail}"


def _per_variant(frame: pl.DataFrame) -> str:
    counts = dict(frame.group_by("variant").len().iter_rows())
    return ", ".join(f"{role} {counts.get(role, 0):,}" for role in ROLES)


def _hint(name: str, candidates: set[str]) -> str:
    match = closest(name, candidates)
    return f"; did you mean {match!r}?" if match else ""


def metric_findings(
    samples: pl.DataFrame, spelled: set[str], telemetry: Telemetry
) -> list[Finding]:
    """Each family and label of the contract in a samples frame read with `telemetry`."""
    found: list[Finding] = []
    contract = {f + s for f in HISTOGRAMS for s in ("_bucket", "_count", "_sum")} | set(FAMILIES)
    unmapped = spelled - {user_sample_name(telemetry, n) for n in contract}
    for family in FAMILIES:
        series = (
            [family + s for s in ("_bucket", "_count", "_sum")]
            if family in HISTOGRAMS
            else [family]
        )
        rows = samples.filter(pl.col("metric").is_in(series)) if samples.height else samples
        yours = telemetry.metric(family)
        if rows.height:
            detail = f"{rows.height:,} samples ({_per_variant(rows)})"
        else:
            candidates = unmapped | {n.removesuffix(s) for n in unmapped for s in ("_bucket",)}
            detail = "no series under this name" + _hint(yours, candidates)
        found.append(Finding("metric", family, yours, bool(rows.height), detail))
    others = sorted(n for n in unmapped if not n.endswith(("_bucket", "_count", "_sum")))
    others += sorted({n.removesuffix("_bucket") for n in unmapped if n.endswith("_bucket")})
    if others and not all(f.found for f in found):
        found.append(Finding("unmapped", "metrics", "metrics", False, _names(others)))
    columns = set(samples.columns)
    for label in REFERENCE_LABELS:
        owners = [f for f, labels in COUNTER_LABELS.items() if label in labels]
        rows = samples.filter(pl.col("metric").is_in(owners)) if samples.height else samples
        yours = telemetry.label(label)
        if not rows.height:
            continue  # its metric is missing: said above
        values = rows[label].drop_nulls().unique().sort().to_list() if label in columns else []
        detail = (
            f"values {', '.join(map(str, values[:8]))}{' ...' if len(values) > 8 else ''}"
            if values
            else f"not on {', '.join(owners)}"
        )
        found.append(Finding("label", label, yours, bool(values), detail))
    return found


def variant_findings(
    samples: pl.DataFrame, beacons: pl.DataFrame | None, telemetry: Telemetry
) -> list[Finding]:
    """Whether both variants are found, in the server series and in the beacons."""
    mapping = telemetry.variant_mapping
    found = []
    for what, frame in (("series", samples), ("beacons", beacons)):
        if frame is None or frame.is_empty():
            continue
        held = set(frame["variant"].drop_nulls().unique().to_list())
        missing = [r for r in ROLES if r not in held]
        other = sorted(held - set(ROLES))
        detail = f"{what}: {_per_variant(frame)}"
        if missing:
            detail += f"; no {', '.join(missing)} by {mapping.describe()}"
            if other:
                detail += f" (values found: {', '.join(other[:6])})"
        found.append(Finding("variants", "variant", mapping.describe(), not missing, detail))
    return found


def beacon_findings(load: object | None, telemetry: Telemetry) -> list[Finding]:
    """Each beacon type and field of the contract in a RUM load read with `telemetry`."""
    if load is None:
        return []
    frame: pl.DataFrame = load.frame  # type: ignore[attr-defined]
    found = []
    bad = load.bad_lines  # type: ignore[attr-defined]
    extra_keys = _extra_keys(frame)
    if bad:
        examples = load.examples  # type: ignore[attr-defined]
        reasons = "; ".join(dict.fromkeys(e.reason for e in examples[:3]))
        found.append(Finding("beacons", "lines", "lines", False, f"{bad:,} rejected: {reasons}"))
        extra_keys |= _example_keys(examples)
    types = dict(frame.group_by("type").len().iter_rows()) if frame.height else {}
    for beacon_type in RUM_TYPES:
        yours = telemetry.beacon_type(beacon_type)
        n = types.get(beacon_type, 0)
        detail = f"{n:,} beacons" if n else "none" + _hint(yours, set(map(str, types)))
        found.append(Finding("beacon type", beacon_type, yours, bool(n), detail))
    for name in REFERENCE_FIELDS:
        if name == "v":
            continue
        yours = (
            telemetry.beacon_variant_field if name == "variant" else telemetry.beacon_field(name)
        )
        n = frame[name].is_not_null().sum() if frame.height and name in frame.columns else 0
        detail = f"on {n:,} beacons" if n else "on no beacon" + _hint(yours, extra_keys)
        found.append(Finding("beacon field", name, yours, bool(n), detail))
    known = {telemetry.beacon_field(f) for f in REFERENCE_FIELDS} | {telemetry.beacon_variant_field}
    strange_types = sorted(str(t) for t in types if t not in RUM_TYPES)
    if strange_types:
        found.append(
            Finding("unmapped", "beacon types", "beacon types", False, _names(strange_types))
        )
    strange_fields = sorted(extra_keys - known)
    if strange_fields and not all(f.found for f in found if f.kind == "beacon field"):
        found.append(
            Finding("unmapped", "beacon fields", "beacon fields", False, _names(strange_fields))
        )
    return found


def _names(names: list[str], n: int = 12) -> str:
    shown = ", ".join(names[:n])
    return f"the data hold {len(names)} other names: {shown}{' ...' if len(names) > n else ''}"


def _example_keys(examples: list) -> set[str]:
    keys: set[str] = set()
    for example in examples:
        try:
            obj = json.loads(example.text)
        except ValueError:
            continue
        if isinstance(obj, dict):
            keys.update(map(str, obj))
    return keys


def _extra_keys(frame: pl.DataFrame, rows: int = 2000) -> set[str]:
    """The unknown fields the beacons carry (what a missing field may be called)."""
    keys: set[str] = set()
    if "extra" not in frame.columns:
        return keys
    for text in frame["extra"].drop_nulls().head(rows).to_list():
        try:
            keys.update(json.loads(text))
        except ValueError:
            continue
    return keys


def report(findings: list[Finding], where: str, window: tuple[datetime, datetime] | None) -> str:
    """The check's printout: one line per role, then a count of what is missing."""
    lines = [f"telemetry in {where}" + (f" from {window[0]} to {window[1]}" if window else "")]
    kinds = ("metric", "label", "variants", "beacons", "beacon type", "beacon field", "unmapped")
    for kind in kinds:
        lines += [f.line() for f in findings if f.kind == kind]
    findings = [f for f in findings if f.kind != "unmapped"]
    missing = [f for f in findings if not f.found]
    lines.append(
        f"{len(findings) - len(missing)} of {len(findings)} found"
        + ("; map the missing ones in the telemetry file (or they are not sent)" if missing else "")
    )
    return "\n".join(lines)


def template() -> str:
    """A commented telemetry file: every key the format reads, the contract's names listed."""
    families = "\n".join(f"  # {f}: {f}" for f in FAMILIES)
    labels = "\n".join(f"  # {label}: {label}" for label in REFERENCE_LABELS)
    fields = "\n".join(f"    # {f}: {f}" for f in REFERENCE_FIELDS)
    types = "\n".join(f"    # {t}: {t}" for t in RUM_TYPES)
    return f"""# Telemetry mapping (wsanalysis, format version 1): your names for the contract's.
# Every key is optional; anything not mapped keeps the contract's name. Check it against
# your data with `wsanalysis telemetry check --data DIR --telemetry THIS_FILE` (or
# --prometheus URL --start T --end T), then pass --telemetry THIS_FILE to any command.
# See docs/telemetry.md.
version: 1

# Which series and beacons are the canary and which control: a label with the value of
# each role ...
# variants:
#   label: track
#   values: {{canary: canary, control: stable}}
# ... or PromQL selectors (then beacons are matched on fields of the same names, unless
# rum.fields.variant names their variant field). Options given on the command line
# (--variant-label, --canary-selector/--control-selector) replace these for that run.
#   selectors: {{canary: 'track="canary"', control: 'track="stable"'}}

# Metric names, the contract's (counters as scraped, histograms by family) -> yours.
metrics:
{families}

# Label names -> yours.
labels:
{labels}

# Label values -> yours, per label (also applied to the beacon field of the same name).
label_values:
  # code: {{"4401": "4003"}}
  # event: {{error: failure}}

rum:
  # Beacon fields -> yours (a mapped dialect needs no `v` field).
  fields:
{fields}
  # Beacon types -> yours.
  types:
{types}
  # Share of sessions that send beacons (incident counts per day are scaled by it).
  # sample_rate: 1.0
"""
