"""The HTTP face of the judge: Starlette routes over `looks.Judge`.

- `POST /v1/judge` — Argo Rollouts' `web` provider (or any caller): 200 with the
  answer; its `verdict` is what `successCondition` / `failureCondition` read.
- `POST /v1/flagger/{hook}` — Flagger webhooks; the status code is the answer
  (Flagger reads a status above 202 as a failed check).
- `GET /healthz` and `GET /metrics` (the service's own counters), both without a token:
  they reveal no canary's data.

Bad requests answer 400 with `{error, fix}`; a data source that fails answers 503. Neither
is a verdict: Argo counts a non-2xx as an error, Flagger as a failed check. The judge runs
in worker threads; looks at one canary are serialised, different canaries run at once.
"""

from __future__ import annotations

import hmac
import logging
import time
import traceback
from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wsanalysis.errors import PrometheusError, UsageError, WsAnalysisError
from wsanalysis.loading import DEFAULT_LATE
from wsanalysis.secrets import redact
from wsanalysis.service.canary_looks import Answer, Judge
from wsanalysis.service.requests import parse_flagger, parse_look
from wsanalysis.service.state import StateStore
from wsanalysis.version import __version__

log = logging.getLogger("wsanalysis.judge_server")
REFUSED = 409  # Flagger: any status above 202 is a failed check; 409 says "not in this state"
#: Flagger hook → the verdicts that answer 200 (everything else answers REFUSED).
FLAGGER_OK = {
    "confirm-promotion": {"GO"},
    "rollout": {"GO", "INCONCLUSIVE"},
    "pre-rollout": {"GO", "INCONCLUSIVE"},
    "rollback": {"NO_GO"},
}


class Metrics:
    """The service's own counters, on a registry of its own (not the process default)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.looks = Counter(
            "wsanalysis_judge_looks", "Looks answered, by endpoint", ["endpoint"],
            registry=self.registry,
        )  # fmt: skip
        self.verdicts = Counter(
            "wsanalysis_judge_verdicts", "Verdicts returned, by outcome", ["verdict"],
            registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "wsanalysis_judge_errors", "Looks that failed, by kind", ["kind"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "wsanalysis_judge_look_seconds", "Time to answer one look",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=self.registry,
        )  # fmt: skip
        self.fetched = Counter(
            "wsanalysis_judge_fetched_samples", "Samples fetched from Prometheus",
            registry=self.registry,
        )  # fmt: skip
        self.canaries = Gauge(
            "wsanalysis_judge_canaries", "Canaries in the state file, by state", ["state"],
            registry=self.registry,
        )  # fmt: skip


def _error(status: int, error: WsAnalysisError) -> JSONResponse:
    return JSONResponse(
        {"error": redact(error.problem), "fix": redact(error.fix), "verdict": None},
        status_code=status,
    )


def create_app(
    *,
    prometheus: str,
    state: str | Path,
    token: str | None,
    files_root: Path | None = None,
    report_url: str | None = None,
    late: timedelta = DEFAULT_LATE,
    telemetry: str | Path | None = None,
) -> Starlette:
    """The application; `token=None` means no authentication (`--no-auth`, said aloud)."""
    store = StateStore(state)
    judge = Judge(store, prometheus, report_url=report_url, late=late, telemetry=telemetry)
    metrics = Metrics()
    expected = f"Bearer {token}".encode() if token else None

    def authorized(request: Request, body: object = None) -> bool:
        """`Authorization: Bearer <token>`; for Flagger, whose webhooks send no headers,
        also `metadata.token` in the payload (Flagger's own convention)."""
        if expected is None:
            return True
        given = request.headers.get("authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return True
        metadata = body.get("metadata") if isinstance(body, dict) else None
        token = metadata.get("token") if isinstance(metadata, dict) else None
        return isinstance(token, str) and hmac.compare_digest(f"Bearer {token}".encode(), expected)

    async def answer(
        request: Request, endpoint: str, parse, token_in_metadata: bool = False
    ) -> tuple[Answer | None, Response]:
        began = time.perf_counter()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not authorized(request, body if token_in_metadata else None):
            metrics.errors.labels("unauthorized").inc()
            return None, JSONResponse(
                {"error": "missing or wrong bearer token", "verdict": None},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            if body is None:
                raise UsageError("the body is not JSON", "send a JSON object")
            look = parse(body)
            result = await run_in_threadpool(judge.look, look)
        except PrometheusError as error:
            metrics.errors.labels("prometheus").inc()
            return None, _error(503, error)
        except WsAnalysisError as error:
            metrics.errors.labels("request").inc()
            return None, _error(400, error)
        except Exception as error:  # noqa: BLE001 — a crash is an error, never a verdict
            metrics.errors.labels("internal").inc()
            log.error("look failed: %s", redact(traceback.format_exc()))
            return None, _error(500, WsAnalysisError(f"internal error: {type(error).__name__}: "
                                                     f"{error}", "see the server's log"))  # fmt: skip
        metrics.latency.observe(time.perf_counter() - began)
        metrics.looks.labels(endpoint).inc()
        metrics.verdicts.labels(result.verdict).inc()
        metrics.fetched.inc(result.fetched_rows)
        return result, JSONResponse(result.document)

    async def argo(request: Request) -> Response:
        _, response = await answer(request, "judge", lambda body: parse_look(
            body, files_root=files_root))  # fmt: skip
        return response

    async def flagger(request: Request) -> Response:
        hook = request.path_params["hook"]
        result, response = await answer(
            request,
            f"flagger/{hook}",
            lambda body: parse_flagger(hook, body, files_root=files_root),
            token_in_metadata=True,
        )
        if result is None:
            return response
        ok = result.verdict in FLAGGER_OK[hook]
        return JSONResponse(result.document, status_code=200 if ok else REFUSED)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def metrics_page(request: Request) -> Response:
        counts = await run_in_threadpool(store.count)
        metrics.canaries.labels("all").set(counts["canaries"])
        metrics.canaries.labels("decided").set(counts["decided"])
        return Response(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4")

    return Starlette(
        routes=[
            Route("/v1/judge", argo, methods=["POST"]),
            Route("/v1/flagger/{hook}", flagger, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
        ]
    )
