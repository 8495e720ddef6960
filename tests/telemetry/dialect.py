"""A dataset rewritten into another service's names, by code: every metric, label, label
value, beacon field and beacon type renamed, the `variant` label replaced by another
label with other values (one of them not ASCII), and the telemetry files that map it back.

The names are drawn from a seed, so a test can make as many dialects as it likes and no
name of the reference contract survives in any of them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.metric_names import FAMILIES, HISTOGRAMS
from wsanalysis.sources.openmetrics import write_openmetrics
from wsanalysis.sources.rum import BeaconSchema
from wsanalysis.sources.schema import RUM_TYPES
from wsanalysis.sources.telemetry import (
    REFERENCE_FIELDS,
    REFERENCE_LABELS,
    Telemetry,
    load_telemetry,
)
from wsanalysis.sources.translation import sample_names

#: Fields a mapped dialect drops: the contract's version.
DROPPED_FIELDS = ("v",)
#: Label values the gates, the exports and the detectors name, renamed even where a
#: dataset holds none of them (so no exported rule keeps a reference value).
CONTRACT_VALUES = {
    "code": ("1000", "1001", "1002", "1003", "1006", "1007", "1008", "1011", "1012", "1013",
             "4401", "4403"),
    "event": ("error", "assistant_message", "typing", "reconnect_advice"),
    "why": ("restart", "drain", "overload"),
}  # fmt: skip


def _word(seed: int, what: str, size: int = 6) -> str:
    """A name-like token for `what`, the same for the same seed."""
    digest = hashlib.sha256(f"{seed}:{what}".encode()).hexdigest()
    letters = "".join("abcdefghijklmnop"[int(c, 16)] for c in digest)
    return letters[:size]


@dataclass(frozen=True)
class Dialect:
    """A rewritten dataset and the mappings back to the contract."""

    folder: Path
    by_label: Path  # telemetry file: the variant label with value renames
    by_selectors: Path  # telemetry file: the variants as selectors
    label: str
    canary: str
    control: str
    metrics: dict[str, str]  # reference family -> user name
    labels: dict[str, str]
    label_values: dict[str, dict[str, str]]
    fields: dict[str, str]
    types: dict[str, str]

    @property
    def canary_selector(self) -> str:
        return f'{self.label}="{self.canary}"'

    @property
    def control_selector(self) -> str:
        return f'{self.label}="{self.control}"'

    def reference_names(self) -> set[str]:
        """Every name of the contract this dialect renames (none may appear in its output)."""
        names = {*self.metrics, *self.labels, "variant", "canary", "control"}
        names |= {v for values in self.label_values.values() for v in values}
        return names


def _names(seed: int, frame: pl.DataFrame, reasons: list[str]) -> dict:
    metrics = {}
    for family in FAMILIES:
        stem = f"svc_{_word(seed, family)}"
        if family in HISTOGRAMS:
            metrics[family] = f"{stem}_seconds"
        elif family.endswith("_total"):
            metrics[family] = f"{stem}_total"
        else:
            metrics[family] = stem
    labels = {label: f"l_{_word(seed, label)}" for label in REFERENCE_LABELS}
    label_values: dict[str, dict[str, str]] = {}
    for label in REFERENCE_LABELS:
        values = set(CONTRACT_VALUES.get(label, ()))
        values |= set(frame[label].drop_nulls().to_list()) if label in frame.columns else set()
        values |= set(reasons) if label == "reason" else set()
        if label == "code":  # a close code stays a number (beacons carry it as one)
            label_values[label] = {v: str(50000 + int(v)) for v in sorted(values)}
        else:
            label_values[label] = {
                v: f"{label[0]}_{_word(seed, label + v)}" for v in sorted(values)
            }
    fields = {f: f"f_{_word(seed, 'field' + f)}" for f in REFERENCE_FIELDS if f != "variant"}
    types = {t: f"evt.{_word(seed, t)}" for t in RUM_TYPES}
    return {
        "metrics": metrics,
        "labels": labels,
        "label_values": label_values,
        "fields": fields,
        "types": types,
    }


def _write_beacons(text: pl.Series, target: Path, telemetry: Telemetry) -> None:
    """The beacons rewritten as text, in bulk: the bundled files are compact JSON written
    by the reference writer, so each field is `"name":` and each value follows it as
    written (checked after: the dialect read back must give the original's answers).
    One pass over the text: each pattern's replacement is what the renames below, in
    turn, make of it, and a field's value patterns come before the field's own."""
    roles = {role: value for value, role in telemetry.variant_mapping.rename.items()}
    fields = telemetry.rum_fields
    pairs: list[tuple[str, str]] = []
    if "v" not in BeaconSchema.of(telemetry).required:
        pairs.append(('{"v":1,', "{"))
    pairs += [(f'"type":"{r}"', f'"type":"{u}"') for r, u in telemetry.rum_types.items()]
    pairs += [(f'"variant":"{r}"', f'"variant":"{u}"') for r, u in roles.items()]
    pairs.append(('"variant":', f'"{telemetry.beacon_variant_field}":'))
    for reference, user in telemetry.label_values.get("code", {}).items():
        pairs += [(f'"code":{reference}{end}', f'"code":{user}{end}') for end in ",}"]
    for reference, user in telemetry.label_values.get("reason", {}).items():
        pairs.append((f'"reason":{json.dumps(reference)}', f'"reason":{json.dumps(user)}'))
    pairs += [(f'"{r}":', f'"{u}":') for r, u in fields.items() if r not in ("v", "variant")]
    patterns = list(dict.fromkeys(old for old, _ in pairs))
    composed = []
    for pattern in patterns:
        for old, new in pairs:
            pattern = pattern.replace(old, new)
        composed.append(pattern)
    text = text.str.replace_many(patterns, composed, leftmost=True)
    target.write_bytes(gzip.compress(text[0].encode(), compresslevel=1, mtime=0))


def rewrite(
    dataset: Path,
    out: Path,
    telemetry: Telemetry,
    metrics: pl.DataFrame | None = None,
    beacons: pl.Series | None = None,
) -> None:
    """`dataset` written into `out` in the names a telemetry mapping gives (variants by a
    label): metrics.om and rum.ndjson.gz, no labels.json (a production export).
    `metrics` / `beacons`: the dataset's samples frame and beacon text, when read already."""
    source = Dataset.open(dataset)
    out.mkdir(parents=True, exist_ok=True)
    mapping = telemetry.variant_mapping
    roles = {role: value for value, role in mapping.rename.items()}
    metrics = source.metrics() if metrics is None else metrics
    frame = metrics.with_columns(
        pl.col("metric").replace(sample_names(telemetry)), pl.col("variant").replace(roles)
    )
    for label, values in telemetry.label_values.items():
        if label in frame.columns:
            frame = frame.with_columns(pl.col(label).replace(values))
    frame = frame.rename({r: u for r, u in telemetry.labels.items() if r in frame.columns})
    write_openmetrics(frame, out / "metrics.om", variant_label=mapping.label)
    if beacons is None and source.rum_path is not None:
        beacons = _beacon_text(source.rum_path)
    if beacons is not None:
        _write_beacons(beacons, out / "rum.ndjson.gz", telemetry)


def _beacon_text(path: Path) -> pl.Series:
    return pl.Series([gzip.decompress(path.read_bytes()).decode()])


def _reasons(text: pl.Series | None) -> list[str]:
    if text is None:
        return []
    found = text.str.extract_all(r'"reason":"(?:[^"\\]|\\.)*"').explode().drop_nulls()
    return [json.loads(r.removeprefix('"reason":')) for r in found.unique().to_list()]


def make_dialect(dataset: Path, out: Path, seed: int = 1) -> Dialect:
    """`dataset` rewritten into `out` in names drawn from `seed`, plus the mappings back:
    `telemetry-label.yaml` (the variant label and its values) and
    `telemetry-selectors.yaml` (the same variants as selectors)."""
    source = Dataset.open(dataset)
    metrics = source.metrics()
    beacons = _beacon_text(source.rum_path) if source.rum_path is not None else None
    names = _names(seed, metrics, _reasons(beacons))
    label = f"lane_{_word(seed, 'variant')}"
    values = {
        "canary": f"pilöt_{_word(seed, 'canary', 3)}",
        "control": f"main_{_word(seed, 'control', 3)}",
    }
    out.mkdir(parents=True, exist_ok=True)
    sample = ((source.labels or {}).get("rum") or {}).get("session_sample")
    common = {
        "metrics": names["metrics"],
        "labels": names["labels"],
        "label_values": names["label_values"],
        "rum": {
            "fields": {**names["fields"], "variant": label},
            "types": names["types"],
            **({"sample_rate": sample} if sample else {}),
        },
    }
    by_label = out / "telemetry-label.yaml"
    by_label.write_text(
        yaml.safe_dump(
            {"version": 1, "variants": {"label": label, "values": values}, **common},
            allow_unicode=True,
            sort_keys=False,
        )
    )
    rewrite(dataset, out, load_telemetry(by_label), metrics, beacons)
    selectors = {role: f'{label}="{value}"' for role, value in values.items()}
    by_selectors = out / "telemetry-selectors.yaml"
    by_selectors.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "variants": {"selectors": selectors},
                **common,
                "rum": {**common["rum"], "fields": names["fields"]},
            },
            allow_unicode=True,
            sort_keys=False,
        )
    )
    return Dialect(
        out,
        by_label,
        by_selectors,
        label,
        values["canary"],
        values["control"],
        **names,
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="Rewrite a dataset folder into another service's names: the names of a "
        "telemetry file, or names drawn from a seed (with the telemetry files back)."
    )
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--telemetry", type=Path, help="the names to write (variants by a label)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.telemetry:
        rewrite(args.dataset, args.out, load_telemetry(args.telemetry))
    else:
        make_dialect(args.dataset, args.out, args.seed)
    print(f"wrote {args.out}")
