"""Where and how to reach a Prometheus-compatible server; credentials from the environment.

Credentials come from the environment only, never from arguments (arguments end up
in executed notebooks and HTML reports):

- `WSANALYSIS_PROM_BEARER_TOKEN` — sent as `Authorization: Bearer <token>`;
- `WSANALYSIS_PROM_USER` and `WSANALYSIS_PROM_PASSWORD` — HTTP basic auth;
- `WSANALYSIS_PROM_URL` — the default server URL (not a secret, also an argument).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from wsanalysis.errors import UsageError

ENV_URL = "WSANALYSIS_PROM_URL"
ENV_BEARER_TOKEN = "WSANALYSIS_PROM_BEARER_TOKEN"
ENV_USER = "WSANALYSIS_PROM_USER"
ENV_PASSWORD = "WSANALYSIS_PROM_PASSWORD"


@dataclass(frozen=True)
class PrometheusSettings:
    """Where and how to connect; holds no secrets (see the module docstring).

    `partial_response=False` is sent with every query (Thanos then refuses to answer
    when a store is down; Prometheus and Mimir ignore it).
    `verify` is True, False, or the path of a CA bundle. `compress=None` asks for
    gzip except on loopback hosts. `chunk` is the span of one raw-samples request;
    it bounds what one answer holds (2 h is 480 points per series at a 15 s scrape,
    7,200 at 1 s), well below the server's `--query.max-samples` for most selectors.
    """

    url: str = "http://127.0.0.1:9090"
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    verify: bool | str = True
    chunk: timedelta = timedelta(hours=2)
    compress: bool | None = None
    partial_response: bool = False  # Thanos: fail rather than answer without a store

    @classmethod
    def from_env(cls, **overrides: Any) -> PrometheusSettings:
        """Settings whose URL defaults to `$WSANALYSIS_PROM_URL` when set."""
        if "url" not in overrides and os.environ.get(ENV_URL):
            overrides["url"] = os.environ[ENV_URL]
        return cls(**overrides)


@dataclass(frozen=True)
class _Credentials:
    kind: str  # "none", "bearer token" or "basic auth"
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)


def _credentials_from_env() -> _Credentials:
    token = os.environ.get(ENV_BEARER_TOKEN, "")
    user = os.environ.get(ENV_USER, "")
    password = os.environ.get(ENV_PASSWORD)
    if token and user:
        raise UsageError(
            f"both {ENV_BEARER_TOKEN} and {ENV_USER} are set",
            "set only one kind of Prometheus credentials in the environment",
        )
    if token:
        return _Credentials("bearer token", headers={"Authorization": f"Bearer {token}"})
    if user:
        if password is None:
            raise UsageError(
                f"{ENV_USER} is set but {ENV_PASSWORD} is not",
                f"export {ENV_PASSWORD} too (an empty password is allowed)",
            )
        return _Credentials("basic auth", auth=(user, password))
    return _Credentials("none")


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
