"""Canary evaluation and incident analysis for real-time (WebSocket) services."""

__version__ = "0.1.0"
