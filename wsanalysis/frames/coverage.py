"""What the gates or the detectors read against what the data hold: nothing goes quiet.

Data read in another service's names without a telemetry mapping, a variant label that
matches nothing, beacons all rejected, a gate naming a series or a beacon field the data
lack: each either stops the run (a `DataError`, exit 3, one line naming what was
expected, the closest names the data hold, and the fix) or becomes a sentence the verdict
carries and the CLI prints. The loader says what a metrics source holds (`Held`); the
judge's and the incident analysis' inputs call `check_series` and `check_beacons` on it
and on what was read (`canary/coverage.py` spells the gates' needs and keeps what is not
an error as a `Coverage`, `incident/inputs.py` the detectors').
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from wsanalysis.errors import DataError
from wsanalysis.sources.rum import RumLoad
from wsanalysis.sources.schema import RUM_SCHEMA
from wsanalysis.sources.telemetry import Telemetry, closest
from wsanalysis.sources.translation import reference_name

FIX = (
    "name your metrics, labels, variant and beacon fields in a telemetry file and pass "
    "--telemetry FILE (`wsanalysis telemetry init` writes one; `wsanalysis telemetry check` "
    "shows what is found)"
)
#: More than this share of beacons rejected (or matched to no variant) is said in a sentence.
REJECTED_SHARE = 0.5
LISTED = 8  # names shown in a message
ROLES = ("canary", "control")


def _listed(names: Iterable[str], n: int = LISTED) -> str:
    names = sorted(set(names))
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "") if names else "none"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or ""."""
    close = closest(name, candidates)
    return f" (did you mean {close!r}?)" if close else ""


def _suggestions(expected: Iterable[str], held: Iterable[str]) -> str:
    hints = [f"{n} -> {c}" for n in sorted(expected) if (c := closest(n, held)) is not None]
    return f"; did you mean: {', '.join(hints)}?" if hints else ""


@dataclass(frozen=True)
class Held:
    """What one source holds: metric names in the contract's vocabulary (after the
    telemetry mapping) and as the data spell them (for suggestions)."""

    where: str
    series: frozenset[str]
    spelled: frozenset[str]

    @classmethod
    def of(cls, where: str, spelled: Iterable[str], telemetry: Telemetry) -> Held:
        """What a source holds, from the sample names it spells."""
        spelled = frozenset(spelled)
        return cls(where, frozenset(reference_name(telemetry, n) for n in spelled), spelled)


@dataclass(frozen=True)
class Coverage:
    """What the checks found that is not an error: sentences a verdict carries (`notes`),
    and per reader (a gate) the series it reads that the data hold nowhere (`absent`)."""

    notes: tuple[str, ...] = ()
    absent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


NOTHING_MISSING = Coverage()


def check_series(
    expected: Iterable[str], held: Held, variants: str | None, samples: pl.DataFrame
) -> list[str]:
    """A metrics source that holds series but none the gates or detectors read, or (when
    `variants` says how they are picked) whose series are of no variant, is an error: its
    data would be ignored without a word. A role with no series is a sentence (returned):
    its gates say `no_data`, and this says why."""
    expected = set(expected)
    if not held.spelled or not expected:
        return []  # no metrics at all (RUM only), or nothing of the contract's read
    if not expected & held.series:
        raise DataError(
            f"{held.where} holds none of the series read here ({_listed(expected)}); it holds "
            f"{_listed(held.spelled)}{_suggestions(expected, held.spelled)}",
            FIX,
        )
    if variants is None:
        return []
    # one pass of booleans (a raw read can hold tens of millions of samples)
    present = (
        samples.select(
            pl.col("variant").is_not_null().any().alias("any"),
            *[(pl.col("variant") == role).any().alias(role) for role in ROLES],
        ).row(0, named=True)
        if samples.height
        else {"any": False}
    )
    read = _listed(expected & held.series)
    if not present["any"]:
        raise DataError(
            f"{held.where} holds {read} but no series of them is canary or control by {variants}",
            "give the label (--variant-label) or the selectors that pick each variant, or "
            "`variants` in the telemetry file (--telemetry FILE)",
        )
    missing = [role for role in ROLES if not present[role]]
    if not missing:
        return []
    others = sorted(set(samples["variant"].drop_nulls().unique().to_list()) - set(ROLES))
    return [
        f"No series is {' or '.join(missing)} by {variants}"
        + (f" (variants found: {_listed(others)})" if others else "")
        + "."
    ]


def _fields_of(examples: Sequence[object]) -> set[str]:
    """The field names of the rejected lines shown as examples (the data's own spelling)."""
    fields: set[str] = set()
    for example in examples:
        try:
            obj = json.loads(getattr(example, "text", ""))
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            fields.update(map(str, obj))
    return fields


def check_beacons(load: RumLoad | None, expected_types: Iterable[str], where: str) -> list[str]:
    """Beacons all rejected, all matched to no variant, or holding none of the types read
    here: an error. More than half rejected or unmatched: a sentence (returned)."""
    if load is None:
        return []
    frame, bad, unassigned = load.frame, load.bad_lines, load.unassigned
    read = frame.height + bad + unassigned
    examples = load.examples
    reasons = "; ".join(dict.fromkeys(example.reason for example in examples[:3]))
    if read and bad == read:
        fields = _fields_of(examples)
        raise DataError(
            f"every one of the {bad:,} beacons in {where} was rejected: {reasons}; their "
            f"fields: {_listed(fields)}",
            FIX,
        )
    if read and unassigned == frame.height + unassigned and unassigned:
        raise DataError(
            f"none of the {unassigned:,} beacons in {where} matched the canary or control "
            "selector (a field the selectors name is missing, or holds other values)",
            "name the beacons' variant field in the telemetry file (rum.fields.variant), or "
            "give selectors on fields the beacons carry",
        )
    notes = []
    if read and bad > REJECTED_SHARE * read:
        notes.append(
            f"{bad:,} of the {read:,} beacons in {where} were rejected ({reasons}): the RUM "
            "figures rest on the rest."
        )
    if read and unassigned > REJECTED_SHARE * read:
        notes.append(
            f"{unassigned:,} of the {read:,} beacons in {where} matched neither variant "
            "selector and were left out."
        )
    expected = sorted(set(expected_types))
    if frame.height and expected and not frame.select(pl.col("type").is_in(expected).any()).item():
        types = set(frame["type"].drop_nulls().unique().to_list())
        raise DataError(
            f"the beacons in {where} hold none of the types read here ({_listed(expected)}); "
            f"they hold {_listed(types)}{_suggestions(expected, types)}",
            FIX,
        )
    return notes


def check_field(who: str, name: str) -> None:
    """A beacon field read by `who` must be a RUM column."""
    columns = [c for c in RUM_SCHEMA if c != "extra"]
    if name not in columns:
        raise DataError(
            f"{who} reads the beacon field {name!r}, which beacons do not have"
            f"{did_you_mean(name, columns)}",
            f"use one of {', '.join(columns)} (a field of your own is mapped to one of them "
            "in the telemetry file's rum.fields)",
        )


def absent_series(read: Iterable[str], held: frozenset[str] | None) -> list[str]:
    """The series of `read` that the data hold nowhere (none when `held` is unknown)."""
    if held is None:
        return []
    return sorted(set(read) - held)


def absent_sentence(who: str, absent: Sequence[str], spelled: Iterable[str]) -> str:
    names = ", ".join(f"{n}{did_you_mean(n, spelled)}" for n in absent)
    return f"{who} reads {names}, which the data hold nowhere."
