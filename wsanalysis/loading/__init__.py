"""One way from a data source to frames: `DataSource` (where), `Reads` (what), `load`.

from wsanalysis.loading import DataSource, load
loaded = load(DataSource.of(data="data/sample"))
"""

from wsanalysis.loading.load import (
    EVERYTHING,
    NO_WARNINGS,
    Inputs,
    Loaded,
    Reads,
    SourceWarnings,
    load,
    read_start,
)
from wsanalysis.loading.source import DEFAULT_LATE, DataSource, Incremental, MetricsServer

__all__ = [
    "DEFAULT_LATE",
    "EVERYTHING",
    "NO_WARNINGS",
    "DataSource",
    "Incremental",
    "Inputs",
    "Loaded",
    "MetricsServer",
    "Reads",
    "SourceWarnings",
    "load",
    "read_start",
]
