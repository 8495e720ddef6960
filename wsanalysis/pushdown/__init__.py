"""Push-down: each gate's sufficient statistics computed by the engine holding the data.

`promql` asks a Prometheus-compatible server for counter sums per variant (and `code` /
`le` where the gates need them) at each bucket point, and differences them here, instead
of reading every raw sample.
"""

from __future__ import annotations

import warnings
from datetime import datetime

import polars as pl

from wsanalysis.canary.gates import Profile
from wsanalysis.pushdown.partial import SOURCE_WARNINGS
from wsanalysis.pushdown.promql import pushed_samples
from wsanalysis.sources.prometheus import PrometheusSource, PrometheusWarning
from wsanalysis.sources.prometheus.export import export_samples
from wsanalysis.sources.telemetry import REFERENCE, Telemetry
from wsanalysis.sources.variants import VariantMapping


def server_samples(
    server: PrometheusSource,
    profile: Profile,
    start: datetime,
    end: datetime,
    variants: VariantMapping,
    *,
    raw: bool = False,
    metric_names: list[str] | None = None,
    telemetry: Telemetry = REFERENCE,
) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    """The judge's samples frame and the server's warnings per metric family.

    `raw=True` reads every sample (for audits and small data; through VictoriaMetrics'
    export API when the server has it); otherwise the server sums the increases the
    gates need (`promql`). Names are the contract's; `telemetry` says the user's.
    """
    if raw:
        selector = '{__name__=~"' + "|".join(metric_names or []) + '"}'
        server.last_warnings = []
        frame = export_samples(server, selector, start, end, variants, telemetry)  # VictoriaMetrics
        if frame is None:
            frame = server.read_samples(
                selector, start, end, variants=variants, telemetry=telemetry
            )
        warned = list(dict.fromkeys(server.last_warnings))
        return frame, ({"*": warned} if warned else {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrometheusWarning)  # kept per family instead
        pushed = pushed_samples(server, profile, start, end, variants, telemetry=telemetry)
    return pushed.frame, pushed.warnings


__all__ = ["SOURCE_WARNINGS", "server_samples"]
