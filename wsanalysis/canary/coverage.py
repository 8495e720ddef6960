"""What a profile's gates read, checked against what the data hold (`frames.coverage`).

At load time (`check_input`): a source holding none of the gates' series or beacon
types, series matching no variant, beacons all rejected and a gate reading a beacon
field that beacons lack are errors; a gate series the data hold nowhere is recorded
(`ABSENT`) with a sentence (`NOTES`). At judge time (`review`): such a gate is
`no_data` (zero events from a series that does not exist is no evidence), and the verdict
says when the sample-ratio check was skipped or a gate read its other source.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from wsanalysis.canary.gates import Gate, Profile
from wsanalysis.canary.verdict import GateResult
from wsanalysis.frames import coverage
from wsanalysis.sources.metric_names import CONNECTIONS_TOTAL
from wsanalysis.sources.rum import RumLoad

NOTES = "notes"  # JudgeInput.metadata / verdict.json: sentences the CLI prints
ABSENT = "absent_series"  # gate -> the series it reads that the data hold nowhere


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
    samples: pl.DataFrame,
    held: coverage.Held | None,
    variants: str,
    rum: RumLoad | None,
    rum_where: str,
) -> dict:
    """The coverage checks at load time; returns the metadata entries for the verdict."""
    check_fields(profile)
    notes = coverage.check_beacons(rum, gate_types(profile), rum_where)
    absent: dict[str, list[str]] = {}
    if held is not None:
        notes += coverage.check_series(gate_series(profile), held, variants, samples)
        for gate in profile.gates:
            missing = coverage.absent_series(gate.server_series, held.series)
            if missing:
                absent[gate.name] = missing
                notes.append(
                    coverage.absent_sentence(
                        f"Gate {gate.name}", missing, held.series | held.spelled
                    )
                )
    return {NOTES: notes, ABSENT: absent}


def _preferred(gate: Gate) -> str | None:
    """The source a gate reads when it has data (None: one source only)."""
    if gate.statistic in ("rate", "share", "spike"):
        both = all(
            s is not None and s.prometheus and s.rum is not None
            for s in (gate.events, gate.exposure)
        )
        return (gate.prefer or "prometheus") if both else None
    if (
        gate.statistic == "quantile"
        and gate.samples
        and gate.samples.rum
        and gate.samples.histogram
    ):
        return "prometheus" if gate.prefer == "prometheus" else "rum"
    return None


def review(
    profile: Profile, results: list[GateResult], metadata: dict, srm_skipped: bool
) -> tuple[list[GateResult], list[str]]:
    """The results with absent series made `no_data`, and every sentence the verdict
    carries about its inputs."""
    notes = list(metadata.get(NOTES) or [])
    absent = metadata.get(ABSENT) or {}
    reviewed = []
    for gate, result in zip(profile.gates, results, strict=True):
        server = result.evidence.source in ("prometheus", "histogram")
        if absent.get(gate.name) and server and result.decision != "no_data":
            result = replace(
                result,
                decision="no_data",
                sentence=f"{result.sentence.rstrip('.')}. Not decided: it reads "
                f"{', '.join(absent[gate.name])}, which the data hold nowhere.",
            )
        preferred, used = _preferred(gate), result.evidence.source
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
