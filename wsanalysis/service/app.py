"""The HTTP face of the judge: Starlette routes over `canary_looks.Judge`.

- `POST /v1/judge` — Argo Rollouts' `web` provider (or any caller): 200 with the
  answer; its `verdict` is what `successCondition` / `failureCondition` read.
- `POST /v1/flagger/{hook}` — Flagger webhooks; the status code is the answer
  (Flagger reads a status above 202 as a failed check).
- `GET /healthz` and `GET /metrics` (the service's own counters), both without a token:
  they reveal no canary's data.

The edge holds before anything is read: the bearer token is checked from the headers
(case-insensitive scheme) before the body; only Flagger, whose webhooks send no headers,
may put it in `metadata.token`, and that body is read capped. Bodies above `max_body`
answer 413. Every client mistake (bad JSON, too deep, a bad field, an unknown route)
answers 400 (404, 405) with `{error, fix}`, is counted in `/metrics` and logs one line,
never a traceback; no answer shows a path on the server's disk. A data source that fails
answers 503. None of these is a verdict: Argo counts a non-2xx as an error, Flagger as a
failed check. The judge runs in worker threads; looks at one canary are serialised,
different canaries run at once.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wsanalysis.errors import PrometheusError, UsageError, WsAnalysisError
from wsanalysis.loading import DEFAULT_LATE
from wsanalysis.secrets import redact
from wsanalysis.service.canary_looks import Answer, Judge
from wsanalysis.service.requests import Look, parse_flagger, parse_look
from wsanalysis.service.state import StateStore
from wsanalysis.sources.prometheus import PrometheusSettings
from wsanalysis.version import __version__

log = logging.getLogger("wsanalysis.judge_server")
REFUSED = 409  # Flagger: any status above 202 is a failed check; 409 says "not in this state"
MAX_BODY = 1 << 20  # bytes of a request body (a look is well under 4 KiB)
#: Flagger hook → the verdicts that answer 200 (everything else answers REFUSED).
FLAGGER_OK = {
    "confirm-promotion": {"GO"},
    "rollout": {"GO", "INCONCLUSIVE"},
    "pre-rollout": {"GO", "INCONCLUSIVE"},
    "rollback": {"NO_GO"},
}


class Refused(Exception):
    """A request answered before the judge: 401, 413 or 400, with the error to show."""

    def __init__(self, status: int, kind: str, error: WsAnalysisError) -> None:
        super().__init__(error.problem)
        self.status, self.kind, self.error = status, kind, error


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
            "wsanalysis_judge_errors",
            "Requests answered without a verdict, by kind (unauthorized, too_large, request, "
            "not_found, prometheus, internal)",
            ["kind"], registry=self.registry,
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


def bearer(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme in any case)."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def server_paths(*, files_root: Path | None, state: str | Path) -> list[tuple[str, str]]:
    """Folders of this machine that an answer must not show, with what shows instead."""
    named = [
        (files_root, "<files-root>"),
        (Path(__file__).resolve().parents[1], "<wsanalysis>"),
        (Path(state).parent, "<state>"),
        (Path(sys.prefix), "<server>"),
        (Path(tempfile.gettempdir()), "<server>"),
        (Path.home(), "<server>"),
        (Path.cwd(), "<server>"),
    ]
    pairs = {}
    for folder, shown in named:
        if folder is not None and str(folder.resolve()) != "/":
            pairs.setdefault(str(folder.resolve()), shown)
            pairs.setdefault(str(folder.absolute()), shown)
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to pass `limit` bytes."""
    too_large = Refused(
        413, "too_large",
        UsageError(f"the body is larger than {limit} bytes", "send one look (a few hundred bytes)"),
    )  # fmt: skip
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def json_body(body: bytes) -> Any:
    """The JSON in a body; anything else (not UTF-8, not JSON, nested too deep) is a 400."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        why = "nested too deep" if isinstance(error, RecursionError) else str(error)[:120]
        raise Refused(
            400, "request", UsageError(f"the body is not JSON ({why})", "send a JSON object")
        ) from None


def create_app(
    *,
    prometheus: str | PrometheusSettings,
    state: str | Path,
    token: str | None,
    files_root: Path | None = None,
    report_url: str | None = None,
    max_body: int = MAX_BODY,
    clock: Callable[[], datetime] | None = None,
    reports: Path | None = None,
    late: timedelta = DEFAULT_LATE,
    telemetry: str | Path | None = None,
) -> Starlette:
    """The application; `token=None` means no authentication (`--no-auth`, said aloud).

    `prometheus` is a URL, or `PrometheusSettings` for a library caller (timeouts,
    retries); `clock` gives "now" for looks that send no `end` (a test's virtual clock);
    `reports`: the folder each canary's final answer is written to (`--reports`).
    """
    store = StateStore(state)
    judge = Judge(
        store, prometheus, report_url=report_url, late=late, telemetry=telemetry, reports=reports
    )
    metrics = Metrics()
    expected = token.encode() if token else None
    hidden = server_paths(files_root=files_root, state=state)
    now = clock or (lambda: datetime.now(UTC))

    def public(text: str) -> str:
        """Text safe to answer with: no credential, no folder of this machine."""
        text = redact(text)
        for folder, shown in hidden:
            text = text.replace(folder, shown)
        return text

    def error_response(status: int, kind: str, error: WsAnalysisError, **headers: str) -> Response:
        metrics.errors.labels(kind).inc()
        body = {"error": public(error.problem), "fix": public(error.fix), "verdict": None}
        return JSONResponse(body, status_code=status, headers=headers or None)

    def matches(given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), expected or b"")

    def unauthorized() -> Refused:
        return Refused(401, "unauthorized", UsageError(
            "missing or wrong bearer token",
            "send Authorization: Bearer $WSANALYSIS_JUDGE_TOKEN (Flagger: metadata.token)",
        ))  # fmt: skip

    async def admitted(request: Request, token_in_metadata: bool) -> Any:
        """The request's JSON, once the caller is known: header first, then (Flagger) body."""
        by_header = expected is None or matches(bearer(request.headers.get("authorization", "")))
        if not by_header and not token_in_metadata:
            raise unauthorized()  # refused before a byte of the body is read
        body = json_body(await read_body(request, max_body))
        if not by_header:
            metadata = body.get("metadata") if isinstance(body, dict) else None
            given = metadata.get("token") if isinstance(metadata, dict) else None
            if not matches(given if isinstance(given, str) else None):
                raise unauthorized()
        return body

    async def answer(
        request: Request,
        endpoint: str,
        parse: Callable[[Any, datetime], Look],
        token_in_metadata: bool = False,
    ) -> tuple[Answer | None, Look | None, Response]:
        began = time.perf_counter()
        look = None
        try:
            body = await admitted(request, token_in_metadata)

            def run() -> Answer:
                nonlocal look
                look = parse(body, now())  # "now" as late as can be: looks move forward
                return judge.look(look)

            result = await run_in_threadpool(run)
        except Refused as refused:
            log.info("%s: %s %s", endpoint, refused.status, public(refused.error.problem))
            headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else {}
            return (
                None,
                look,
                error_response(refused.status, refused.kind, refused.error, **headers),
            )
        except PrometheusError as error:
            log.warning("%s: 503 %s", endpoint, public(error.problem))
            return None, look, error_response(503, "prometheus", error)
        except WsAnalysisError as error:
            log.info("%s: 400 %s", endpoint, public(error.problem))
            return None, look, error_response(400, "request", error)
        except Exception as error:  # noqa: BLE001 — a crash is an error, never a verdict
            log.error("look failed: %s", public(traceback.format_exc()))
            return None, look, error_response(500, "internal", WsAnalysisError(
                f"internal error: {type(error).__name__}: {error}", "see the server's log"))  # fmt: skip
        metrics.latency.observe(time.perf_counter() - began)
        metrics.looks.labels(endpoint).inc()
        metrics.verdicts.labels(result.verdict).inc()
        metrics.fetched.inc(result.fetched_rows)
        return result, look, JSONResponse(result.document)

    async def argo(request: Request) -> Response:
        _, _, response = await answer(request, "judge", lambda body, at: parse_look(
            body, now=at, files_root=files_root))  # fmt: skip
        return response

    async def flagger(request: Request) -> Response:
        hook = request.path_params["hook"]
        result, look, response = await answer(
            request,
            f"flagger/{hook}",
            lambda body, at: parse_flagger(hook, body, now=at, files_root=files_root),
            token_in_metadata=True,
        )
        if result is None or look is None:
            return response
        ok = result.verdict in FLAGGER_OK[hook]
        document = dict(result.document)
        if look.ignored:
            document["ignored_metadata"] = list(look.ignored)
        return JSONResponse(document, status_code=200 if ok else REFUSED)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def metrics_page(request: Request) -> Response:
        counts = await run_in_threadpool(store.count)
        metrics.canaries.labels("all").set(counts["canaries"])
        metrics.canaries.labels("decided").set(counts["decided"])
        return Response(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4")

    async def no_route(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        fix = "POST /v1/judge or /v1/flagger/{hook}; GET /healthz or /metrics"
        problem = f"{request.method} {request.url.path} is not served ({status})"
        return error_response(status, "not_found", UsageError(problem, fix))

    return Starlette(
        routes=[
            Route("/v1/judge", argo, methods=["POST"]),
            Route("/v1/flagger/{hook}", flagger, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
        ],
        exception_handlers={404: no_route, 405: no_route},
    )
