"""`wsanalysis serve`: run the reference chat server (WebSocket, /metrics, /healthz)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

from wsanalysis.errors import UsageError
from wsanalysis.reference.server import ChatServer, Faults
from wsanalysis.reference.tokens import issue_token

SECRET_ENV = "WSANALYSIS_SECRET"
ADMIN_ENV = "WSANALYSIS_ADMIN_KEY"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the reference chat WebSocket server",
        description=(
            "Run the reference chat server. The JWT secret comes from $"
            f"{SECRET_ENV}; with ${ADMIN_ENV} set, GET /admin/{{faults,restart,drain,undrain,"
            "drop}}?key=... switch faults at run time. Metrics on GET /metrics."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--max-message-bytes", type=int, default=64 * 1024)
    parser.add_argument("--max-connections", type=int, default=None)
    parser.add_argument(
        "--allowed-origin", action="append", default=None, help="repeat; default: any origin"
    )
    parser.add_argument("--internal-error-p", type=float, default=0.0)
    parser.add_argument("--ttfb-median", type=float, default=0.2, help="seconds")
    parser.add_argument("--ttfb-sigma", type=float, default=0.0, help="log-normal sigma")
    parser.add_argument("--duplicate-p", type=float, default=0.0)
    parser.add_argument("--token-skew", type=float, default=0.0, help="seconds")
    parser.add_argument("--reply-parts", type=int, default=1)
    parser.add_argument(
        "--demo-token",
        metavar="USER",
        help="print a 1-hour token for USER at start (for a browser or a quick test)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        raise UsageError(
            f"no JWT secret: ${SECRET_ENV} is not set",
            f"export {SECRET_ENV}=<a random string of 32+ characters> and run again",
        )
    for name in ("internal_error_p", "duplicate_p"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise UsageError(f"--{name.replace('_', '-')} must be a probability in [0, 1]")
    faults = Faults(
        internal_error_p=args.internal_error_p,
        ttfb_median=args.ttfb_median,
        ttfb_sigma=args.ttfb_sigma,
        duplicate_p=args.duplicate_p,
        token_skew=args.token_skew,
        reply_parts=args.reply_parts,
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    server = ChatServer(
        secret,
        faults=faults,
        max_message_bytes=args.max_message_bytes,
        allowed_origins=args.allowed_origin,
        max_connections=args.max_connections,
        admin_key=os.environ.get(ADMIN_ENV) or None,
    )
    try:
        asyncio.run(_serve(server, args))
    except OSError as error:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port}: {error.strerror}",
            "pick another --port (0 picks a free one)",
        ) from None
    return 0


async def _serve(server: ChatServer, args: argparse.Namespace) -> None:
    await server.start(args.host, args.port)
    print(f"serving {server.url} (metrics {server.http_url}/metrics)", flush=True)
    if args.demo_token:
        token = issue_token(server.secret, args.demo_token, time.time(), ttl=3600)
        print(f"token for {args.demo_token}: {token}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("stopping: closing connections (1001)", flush=True)
    await server.stop()
