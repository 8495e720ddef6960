"""What a profile's gates read, checked against what the data hold (`frames.coverage`).

After the load (`check_input`): a source holding none of the gates' series or beacon
types, series matching no variant, beacons all rejected and a gate reading a beacon
field that beacons lack are errors; a gate series the data hold nowhere is kept in the
`Coverage` (`absent`) with a sentence (`notes`). At judge time (`review`): such a gate is
`no_data` (zero events from a series that does not exist is no evidence), and the verdict
says when the sample-ratio check was skipped or a gate read its other source.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from wsanalysis.canary.gates import Profile
from wsanalysis.canary.kinds import kind_of
from wsanalysis.canary.verdict import GateResult
from wsanalysis.frames import coverage
from wsanalysis.frames.coverage import Coverage
from wsanalysis.loading import Loaded
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL
from wsanalysis.sources.variants import VariantMapping

NOTES = "notes"  # verdict.json: sentences about the inputs, which the CLI prints
ABSENT = "absent_series"  # verdict.json: gate -> the series it reads that the data lack


def gate_series(profile: Profile) -> set[str]:
    """The contract's series the gates read (none for a profile of `series` gates)."""
    names: set[str] = set()
    for gate in profile.gates:
        names.update(gate.server_series)
    return names | {CONNECTIONS_TOTAL} if names else names  # the sample-ratio unit


def gate_types(profile: Profile) -> set[str]:
    return {
        source.rum.type
        for gate in profile.gates
        for source in (gate.events, gate.exposure, gate.samples)
        if source is not None and source.rum is not None
    }


def check_fields(profile: Profile) -> None:
    """Every beacon field a gate's RUM filters read is a RUM column."""
    for gate in profile.gates:
        for source in (gate.events, gate.exposure, gate.samples):
            if source is not None and source.rum is not None:
                for name in [source.rum.column, *source.rum.where]:
                    if name:
                        coverage.check_field(f"gate {gate.name!r}", name)


def check_input(
    profile: Profile,
    loaded: Loaded,
    variants: VariantMapping,
    samples: pl.DataFrame | None = None,
) -> Coverage:
    """The checks of what `loaded` holds against what the gates read (`samples`: the
    frame judged, when it is not the one read: an incremental look's whole window)."""
    check_fields(profile)
    rum = loaded.rum_read
    notes = coverage.check_beacons(rum, gate_types(profile), rum.source if rum else "")
    absent: dict[str, tuple[str, ...]] = {}
    held = loaded.held
    if held is not None:
        frame = loaded.samples if samples is None else samples
        notes += coverage.check_series(gate_series(profile), held, variants.describe(), frame)
        for gate in profile.gates:
            missing = coverage.absent_series(gate.server_series, held.series)
            if missing:
                absent[gate.name] = tuple(missing)
                notes.append(
                    coverage.absent_sentence(
                        f"Gate {gate.name}", missing, held.series | held.spelled
                    )
                )
    return Coverage(tuple(notes), absent)


def review(
    profile: Profile, results: list[GateResult], found: Coverage, srm_skipped: bool
) -> tuple[list[GateResult], list[str]]:
    """The results with absent series made `no_data`, and every sentence the verdict
    carries about its inputs."""
    notes = list(found.notes)
    reviewed = []
    for gate, result in zip(profile.gates, results, strict=True):
        server = result.evidence.source in ("prometheus", "histogram")
        absent = found.absent.get(gate.name)
        if absent and server and result.decision != "no_data":
            result = replace(
                result,
                decision="no_data",
                sentence=f"{result.sentence.rstrip('.')}. Not decided: it reads "
                f"{', '.join(absent)}, which the data hold nowhere.",
            )
        preferred, used = kind_of(gate).preferred(gate), result.evidence.source
        if preferred and used and not result.evidence.missing:
            read = "rum" if used == "rum" else "prometheus"
            if read != preferred:
                other = "the beacons" if read == "rum" else "the server series"
                notes.append(
                    f"Gate {gate.name} read {other}: its preferred source "
                    f"({'RUM beacons' if preferred == 'rum' else 'server series'}) had no data "
                    "for a variant."
                )
        reviewed.append(result)
    if srm_skipped:
        notes.append(
            "The sample-ratio check was skipped: neither RUM sessions nor "
            f"{CONNECTIONS_TOTAL} were found for both variants."
        )
    return reviewed, notes
