"""Warnings about the server figures turn the gates they touch inconclusive.

A Thanos querier that could not reach a store, or a Mimir that dropped part of a
query, still answers `success` with `warnings`: the figures may be short. A metrics
file read leniently (lines dropped) gives the same kind of warning. A gate
computed from such an answer must not pass (nor fail) silently; it becomes
`inconclusive`, and its sentence quotes the warning.
"""

from __future__ import annotations

from dataclasses import replace

from wsanalysis.canary.gates import Profile
from wsanalysis.canary.verdict import GateResult

SOURCE_WARNINGS = "source_warnings"  # JudgeInput.metadata key: family -> warnings
SERVER_SOURCES = ("prometheus", "histogram")  # evidence sources read from the server


def inconclusive_on_warnings(
    profile: Profile, results: list[GateResult], metadata: dict
) -> list[GateResult]:
    """Each result whose server figures came with a warning, made inconclusive."""
    warned: dict[str, list[str]] = metadata.get(SOURCE_WARNINGS) or {}
    if not warned:
        return results
    changed = []
    for gate, result in zip(profile.gates, results, strict=True):
        texts = list(warned.get("*", []))
        for family in sorted(gate.server_series):
            texts += warned.get(family, [])
        texts = list(dict.fromkeys(texts))
        if (
            not texts
            or result.evidence.source not in SERVER_SOURCES
            or result.decision == "no_data"
        ):
            changed.append(result)
            continue
        quoted = "; ".join(f'"{t}"' for t in texts[:3])
        more = f" (and {len(texts) - 3} more)" if len(texts) > 3 else ""
        sentence = (
            f"{result.sentence.rstrip('.')}. Not decided: its server figures may be "
            f"incomplete: {quoted}{more}."
        )
        changed.append(replace(result, decision="inconclusive", sentence=sentence))
    return changed
