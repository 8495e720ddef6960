"""A telemetry mapping: the user's names for the reference contract's metrics, labels,
label values, variant label and beacon fields and types.

The sources read the user's dialect and hand the contract's vocabulary upward, so
nothing above `sources/` spells a user's name and gate files stay in the contract's
vocabulary (docs/architecture.md, "Any service's telemetry"). Every key is optional;
what is not mapped keeps the reference name. The file format (version 1):

    version: 1
    variants:                  # a label with value renames ...
      label: track
      values: {canary: canary, control: stable}      # role -> the label's value
      # ... or selectors: {canary: 'track="canary"', control: 'track="stable"'}
    metrics: {ws_connections_total: chat_socket_opened_total}   # reference -> yours
    labels: {code: close_code}
    label_values: {code: {"4401": "4003"}}   # metric label and beacon field alike
    rum:
      fields: {ts: time_ms, session_id: sid, variant: track}
      types: {ws.open: socket.opened}
      sample_rate: 0.2         # share of sessions that send beacons
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from wsanalysis.errors import UsageError
from wsanalysis.sources.metric_names import COUNTER_LABELS, FAMILIES
from wsanalysis.sources.schema import RUM_SCHEMA, RUM_TYPES
from wsanalysis.sources.variants import DEFAULT_VARIANTS, VariantMapping

#: Labels of the contract a mapping may rename (the variant goes under `variants`).
REFERENCE_LABELS = tuple(sorted({label for labels in COUNTER_LABELS.values() for label in labels}))
#: Beacon fields of the contract a mapping may rename.
REFERENCE_FIELDS = tuple(c for c in RUM_SCHEMA if c != "extra")
ROLES = ("canary", "control")
_TOP_KEYS = ("version", "variants", "metrics", "labels", "label_values", "rum")


@dataclass(frozen=True)
class Telemetry:
    """The user's names, reference name -> user name; empty maps are the contract itself."""

    variants: VariantMapping | None = None  # None: the commands' own variant options
    metrics: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    label_values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    rum_fields: Mapping[str, str] = field(default_factory=dict)
    rum_types: Mapping[str, str] = field(default_factory=dict)
    rum_sample_rate: float | None = None
    path: str | None = None  # the file it came from, for messages and provenance
    sha256: str | None = None

    @property
    def is_reference(self) -> bool:
        """True when nothing is renamed (the reference server's own telemetry)."""
        return not (
            self.variants
            or self.metrics
            or self.labels
            or self.label_values
            or self.rum_fields
            or self.rum_types
        )

    @property
    def variant_mapping(self) -> VariantMapping:
        """Which series and beacons are which variant (the contract's `variant` label
        when the file says nothing)."""
        return self.variants or DEFAULT_VARIANTS

    @property
    def beacon_variant_field(self) -> str:
        """The beacon field naming the variant: `rum.fields.variant`, else the variants'
        label (a label mapping reaches the beacons' field of the same name)."""
        if "variant" in self.rum_fields:
            return self.rum_fields["variant"]
        mapping = self.variant_mapping
        return mapping.label if not mapping.selectors else "variant"

    def with_variants(
        self,
        variant_label: str | None = "variant",
        canary_selector: str | None = None,
        control_selector: str | None = None,
    ) -> Telemetry:
        """The mapping with the command line's variant options applied.

        Precedence (docs/telemetry.md): options given on the command line (a variant
        label other than the default `variant`, or the two selectors) replace the file's
        `variants` for that run; options left at their defaults keep the file's."""
        if canary_selector or control_selector:
            if not (canary_selector and control_selector):
                raise UsageError(
                    "the canary and control selectors go together", "give both or neither"
                )
            chosen = VariantMapping.by_selectors(
                {"canary": canary_selector, "control": control_selector}
            )
        elif variant_label and variant_label != "variant":
            chosen = VariantMapping(label=variant_label)
        else:
            return self
        return replace(self, variants=chosen)

    def metric(self, reference: str) -> str:
        """The user's name of a reference metric (a histogram by its family)."""
        return self.metrics.get(reference, reference)

    def label(self, reference: str) -> str:
        return self.labels.get(reference, reference)

    def label_value(self, label: str, reference: str) -> str:
        return self.label_values.get(label, {}).get(reference, reference)

    def beacon_field(self, reference: str) -> str:
        return self.rum_fields.get(reference, reference)

    def beacon_type(self, reference: str) -> str:
        return self.rum_types.get(reference, reference)

    def provenance(self) -> dict[str, Any] | None:
        """What a verdict records about the mapping (None for the contract itself)."""
        if self.path is None and self.is_reference:
            return None
        return {"path": self.path, "sha256": self.sha256}


REFERENCE = Telemetry()


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate spelled most like `name`, if one is close (a "did you mean")."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return close[0] if close else None


def _problem(path: str, where: str, what: str, valid: tuple[str, ...] | list[str]) -> UsageError:
    close = difflib.get_close_matches(what, list(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UsageError(
        f"{path}: {where} names {what!r}, which the reference telemetry does not have{hint}",
        f"use one of: {', '.join(valid)}",
    )


def _mapping(raw: Any, path: str, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: {where} must be a mapping", "write it as `key: value` lines")
    return raw


def _names(raw: Any, path: str, where: str, valid: tuple[str, ...] | None) -> dict[str, str]:
    """reference -> user, every key checked against the contract (`valid`; None takes any
    key), values non-empty text, no two keys given one name."""
    names: dict[str, str] = {}
    for key, value in _mapping(raw, path, where).items():
        key = str(key)
        if valid is not None and key not in valid:
            raise _problem(path, where, key, valid)
        if not isinstance(value, str | int) or not str(value).strip():
            raise UsageError(
                f"{path}: {where}.{key} must be a name, not {value!r}", "give the name you use"
            )
        names[key] = str(value)
    taken: dict[str, str] = {}
    for key, value in names.items():
        if value in taken:
            raise UsageError(
                f"{path}: {where} gives {taken[value]!r} and {key!r} the same name {value!r}",
                "each reference name needs a name of its own",
            )
        taken[value] = key
    return names


def _variants(raw: Any, path: str) -> VariantMapping | None:
    spec = _mapping(raw, path, "variants")
    if not spec:
        return None
    unknown = sorted(set(spec) - {"label", "values", "selectors"})
    if unknown:
        raise _problem(path, "variants", unknown[0], ("label", "values", "selectors"))
    if "selectors" in spec:
        if "label" in spec or "values" in spec:
            raise UsageError(
                f"{path}: variants has both selectors and a label",
                "give either label (+ values) or selectors",
            )
        selectors = _mapping(spec["selectors"], path, "variants.selectors")
        if set(selectors) != set(ROLES):
            raise UsageError(
                f"{path}: variants.selectors names {sorted(selectors)}",
                "give exactly canary and control selectors",
            )
        return VariantMapping.by_selectors({role: str(selectors[role]) for role in ROLES})
    label = str(spec.get("label", "variant"))
    values = _names(spec.get("values"), path, "variants.values", ROLES)
    rename = {value: role for role, value in values.items()}
    if len(rename) != len(values):
        raise UsageError(
            f"{path}: variants.values gives canary and control the same value",
            "each role needs its own value of the label",
        )
    return VariantMapping(label=label, rename=rename)


def parse_telemetry(spec: Any, path: str = "<telemetry>") -> Telemetry:
    """A mapping from its parsed YAML; every error names the file, the key and the fix."""
    spec = _mapping(spec, path, "the file")
    unknown = sorted(set(spec) - set(_TOP_KEYS))
    if unknown:
        raise _problem(path, "the file", unknown[0], _TOP_KEYS)
    if spec.get("version", 1) != 1:
        raise UsageError(f"{path}: version {spec['version']!r} is not known", "write version: 1")
    label_values: dict[str, dict[str, str]] = {}
    for label, values in _mapping(spec.get("label_values"), path, "label_values").items():
        label = str(label)
        if label not in REFERENCE_LABELS:
            raise _problem(path, "label_values", label, REFERENCE_LABELS)
        label_values[label] = _names(
            _mapping(values, path, f"label_values.{label}"),
            path,
            f"label_values.{label}",
            None,
        )
    rum = _mapping(spec.get("rum"), path, "rum")
    unknown = sorted(set(rum) - {"fields", "types", "sample_rate"})
    if unknown:
        raise _problem(path, "rum", unknown[0], ("fields", "types", "sample_rate"))
    rate = rum.get("sample_rate")
    if rate is not None and not (isinstance(rate, int | float) and 0 < rate <= 1):
        raise UsageError(
            f"{path}: rum.sample_rate is {rate!r}", "give the share of sessions in (0, 1]"
        )
    return Telemetry(
        variants=_variants(spec.get("variants"), path),
        metrics=_names(spec.get("metrics"), path, "metrics", FAMILIES),
        labels=_names(spec.get("labels"), path, "labels", REFERENCE_LABELS),
        label_values=label_values,
        rum_fields=_names(rum.get("fields"), path, "rum.fields", REFERENCE_FIELDS),
        rum_types=_names(rum.get("types"), path, "rum.types", RUM_TYPES),
        rum_sample_rate=float(rate) if rate is not None else None,
        path=path,
    )


def load_telemetry(path: str | Path | Telemetry | None) -> Telemetry:
    """The mapping in a file (None: the reference contract; a `Telemetry` as is)."""
    if path is None:
        return REFERENCE
    if isinstance(path, Telemetry):
        return path
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise UsageError(
            f"cannot read the telemetry file {file}: {error.strerror}",
            "pass a YAML file (`wsanalysis telemetry init` writes a template)",
        ) from None
    try:
        spec = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise UsageError(f"{file} is not valid YAML: {error}", "fix the YAML syntax") from None
    telemetry = parse_telemetry(spec, str(file))
    return replace(telemetry, sha256=hashlib.sha256(raw).hexdigest())
