"""Canary evaluation and incident analysis for real-time (WebSocket) services."""

from wsanalysis.version import __version__

__all__ = ["__version__"]
