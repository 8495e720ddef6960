"""Server metrics from a Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir,
VictoriaMetrics) as polars frames.

`settings` says where and how to connect (credentials from the environment only),
`timing` turns moments and spans into what the API takes, `decoding` reads matrix
answers in bulk, and `source` holds the connection and its reads.
"""

from wsanalysis.sources.prometheus.decoding import _Matrix, _Series, decode_matrix
from wsanalysis.sources.prometheus.settings import (
    ENV_BEARER_TOKEN,
    ENV_PASSWORD,
    ENV_URL,
    ENV_USER,
    PrometheusSettings,
)
from wsanalysis.sources.prometheus.source import (
    MAX_POINTS_PER_SERIES,
    PrometheusSource,
    PrometheusWarning,
    query_range,
    read_samples,
)
from wsanalysis.sources.prometheus.timing import _to_ms_span, to_epoch_ms

__all__ = [
    "ENV_BEARER_TOKEN",
    "ENV_PASSWORD",
    "ENV_URL",
    "ENV_USER",
    "MAX_POINTS_PER_SERIES",
    "PrometheusSettings",
    "PrometheusSource",
    "PrometheusWarning",
    "_Matrix",
    "_Series",
    "_to_ms_span",
    "decode_matrix",
    "query_range",
    "read_samples",
    "to_epoch_ms",
]
