"""Warnings about the server figures keep the gates they touch from being decided.

A Thanos querier that could not reach a store, or a Mimir that dropped part of a
query, still answers `success` with `warnings`: the figures may be short. A metrics
file read leniently (lines dropped) gives the same kind of warning. A gate computed
from such figures must not pass (nor fail) silently: it is `inconclusive`, and its
sentence quotes the warning. A rule of the verdict, so it lives with the judge.
"""

from __future__ import annotations

from wsanalysis.canary.gate_spec import Gate
from wsanalysis.canary.verdict import Decision, GateEvidence
from wsanalysis.loading import Inputs, SourceWarnings

SERVER_SOURCES = ("prometheus", "histogram")  # evidence sources read from the server
SHOWN = 3  # warnings quoted in a sentence


def warnings_against(
    gate: Gate, evidence: GateEvidence, decision: Decision, warned: SourceWarnings
) -> tuple[str, ...]:
    """The warnings that keep this gate undecided (none when its figures are not the
    server's, or when it has no data anyway)."""
    if not warned or evidence.source not in SERVER_SOURCES or decision == "no_data":
        return ()
    return warned.about(gate.server_series)


def undecided_sentence(sentence: str, texts: tuple[str, ...]) -> str:
    """The gate's sentence, saying why it is not decided."""
    quoted = "; ".join(f'"{t}"' for t in texts[:SHOWN])
    more = f" (and {len(texts) - SHOWN} more)" if len(texts) > SHOWN else ""
    return (
        f"{sentence.rstrip('.')}. Not decided: its server figures may be incomplete: "
        f"{quoted}{more}."
    )


def dropped_lines_sentence(inputs: Inputs | None) -> str:
    """What a lenient read dropped, in one sentence ("" when nothing was dropped)."""
    dropped = inputs.dropped_lines if inputs is not None else {}
    if not dropped:
        return ""
    files = "; ".join(
        f"{sum(rules.values()):,} lines of {name} "
        f"({', '.join(f'{rule} {n:,}' for rule, n in rules.items())})"
        for name, rules in dropped.items()
    )
    return f"Read leniently: {files} were dropped, and the gates reading them are not decided."
