"""wsanalysis: is a release of a real-time (WebSocket) service safe to roll out?

    import wsanalysis

    verdict = wsanalysis.judge(data="data/error_rate_x2", canary_share=0.1)
    verdict.overall                 # "NO_GO"; verdict.gates: one GateResult per gate
    analysis = wsanalysis.incident(data="data/network_outage")
    analysis.episodes               # ranked, each with a sentence and its findings

A small face (`__all__`), everything else behind it; the names load on first use, so
`import wsanalysis` stays cheap (the `wsanalysis` command imports only what it runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wsanalysis.version import __version__

if TYPE_CHECKING:  # what the names are, for readers and type checkers
    from wsanalysis.api import (
        Analysis,
        Dataset,
        DataSource,
        Episode,
        Finding,
        GateEvidence,
        GateResult,
        NotRun,
        Profile,
        Verdict,
        incident,
        judge,
    )

__all__ = [
    "Analysis",
    "DataSource",
    "Dataset",
    "Episode",
    "Finding",
    "GateEvidence",
    "GateResult",
    "NotRun",
    "Profile",
    "Verdict",
    "__version__",
    "incident",
    "judge",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from wsanalysis import api

        return getattr(api, name)
    raise AttributeError(f"module 'wsanalysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
