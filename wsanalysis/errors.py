"""Errors a user can act on: each says what was wrong and what to do about it.

The CLI turns any `WsAnalysisError` into one message and exit code 3 (usage or
data error); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class WsAnalysisError(Exception):
    """Base class: `problem` says what is wrong, `fix` what to do about it."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — {fix}" if fix else problem)


class DataError(WsAnalysisError):
    """Input data that cannot be read as its contract says (a file, a line, a field)."""


class UsageError(WsAnalysisError):
    """Arguments or settings that do not fit together."""


class PrometheusError(WsAnalysisError):
    """Base for errors talking to a Prometheus-compatible server."""


class PrometheusUnreachable(PrometheusError):
    """The server did not answer after every retry."""


class PrometheusAuthError(PrometheusError):
    """The server refused the credentials (HTTP 401/403)."""


class PromQLError(PrometheusError):
    """The server rejected the query; the message is Prometheus's own."""
