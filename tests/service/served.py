"""The judge-server's application served by uvicorn in this process, on a loopback port.

Real sockets and real HTTP (what a controller sees), with what a subprocess cannot
take: a virtual clock for looks that send no `end`, and `PrometheusSettings`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn

from wsanalysis.service.app import create_app
from wsanalysis.sources.local_prometheus import free_port


@contextmanager
def served(
    *,
    prometheus: Any,
    state: Path,
    token: str | None,
    clock: Callable[[], datetime] | None = None,
    **options: Any,
) -> Iterator[str]:
    """The base URL of a running judge-server; stopped (connections closed) on exit."""
    app = create_app(prometheus=prometheus, state=state, token=token, clock=clock, **options)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="warning", access_log=False,
        lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="judge-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the judge-server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
