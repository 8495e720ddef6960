"""`wsanalysis judge-server`: the judge as a service for Argo Rollouts and Flagger.

    WSANALYSIS_JUDGE_TOKEN=... wsanalysis judge-server --prometheus URL --port 8080
                               [--state judge-state.sqlite] [--host 127.0.0.1] [--late 15m]

POST /v1/judge (Argo web provider), POST /v1/flagger/{hook} (Flagger webhooks),
GET /healthz, GET /metrics. Callers send `Authorization: Bearer $WSANALYSIS_JUDGE_TOKEN`;
the server refuses to start without a token unless given --no-auth.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wsanalysis.commands import options
from wsanalysis.errors import UsageError
from wsanalysis.sources.prometheus import ENV_URL
from wsanalysis.times import parse_duration

TOKEN_ENV = "WSANALYSIS_JUDGE_TOKEN"
MIN_TOKEN = 16


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "judge-server",
        help="serve the judge over HTTP for Argo Rollouts (web provider) and Flagger webhooks",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--prometheus",
        metavar="URL",
        type=options.prometheus_url,
        default=os.environ.get(ENV_URL),
        help=f"Prometheus base URL (default ${ENV_URL}); credentials from WSANALYSIS_PROM_*",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (8080)")
    parser.add_argument(
        "--state",
        type=Path,
        default=Path("judge-state.sqlite"),
        help="SQLite file holding every canary's per-bucket sums, looks and decisions "
        "(judge-state.sqlite)",
    )
    parser.add_argument(
        "--late",
        type=options.duration,
        default="15m",
        help="how late a sample may reach the server and still count: each look re-reads "
        "this much before the last one's end (15m)",
    )
    parser.add_argument(
        "--files-root",
        type=Path,
        help="folder under which requests may name a gate file or a RUM export",
    )
    parser.add_argument(
        "--telemetry",
        type=options.telemetry_file,
        metavar="FILE",
        help="default telemetry mapping of your names (a look may name another under "
        "--files-root in its `telemetry` field)",
    )
    parser.add_argument(
        "--report-url",
        help="link template for each answer's `report`, e.g. https://reports/{id}/report.html",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help=f"serve without a bearer token (otherwise ${TOKEN_ENV} is required)",
    )
    parser.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    if not args.prometheus:
        raise UsageError("no Prometheus URL", f"give --prometheus URL or set ${ENV_URL}")
    options.prometheus_url(args.prometheus)  # the environment's URL is checked too
    token = os.environ.get(TOKEN_ENV, "")
    if not args.no_auth and len(token) < MIN_TOKEN:
        raise UsageError(
            f"${TOKEN_ENV} is {'too short' if token else 'not set'}",
            f"export {TOKEN_ENV} (at least {MIN_TOKEN} characters, e.g. `openssl rand -hex 32`),"
            " or pass --no-auth to serve without one",
        )
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a port", "give 1-65535")
    from wsanalysis.sources.prometheus import PrometheusSource

    PrometheusSource(args.prometheus).close()  # the WSANALYSIS_PROM_* credentials make sense
    if args.files_root is not None and not args.files_root.is_dir():
        raise UsageError(f"--files-root {args.files_root} does not exist", "give a folder")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from wsanalysis.service.app import create_app

    token = None if args.no_auth else os.environ[TOKEN_ENV]
    app = create_app(
        prometheus=args.prometheus,
        state=args.state,
        token=token,
        files_root=args.files_root,
        report_url=args.report_url,
        late=parse_duration(args.late),
        telemetry=args.telemetry,
    )
    auth = "no authentication" if token is None else f"bearer token from ${TOKEN_ENV}"
    print(
        f"judge-server on http://{args.host}:{args.port} ({auth}), state {args.state}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
