"""Read server metrics from a Prometheus-compatible HTTP API into polars frames.

Built on prometheus-api-client for the HTTP session, auth and retries, but with our
own chunk planning and column building, because the client's own range reads have
traps (seen on Prometheus 2.x):

- chunked reads return the sample on each chunk boundary twice (range selectors are
  closed at both ends before Prometheus 3.0): we ask for slightly more and cut each
  chunk to a half-open interval, so every sample comes back exactly once on 2.x and 3.x;
- the response's `warnings` (Thanos and remote read report partial data that way) are
  dropped: we raise them as `PrometheusWarning` and keep them in `last_warnings`;
- Thanos answers a query without its unreachable stores unless told not to: we send
  `partial_response=false`; a raw chunk or a range query refused for a per-query limit
  ("too many samples", Mimir's max chunks / series) is split in halves and retried, by
  one rule (`_split_on_limit`);
- `get_metric_range_data`'s default start/end are frozen at import: we take no
  defaults, every read names its window;
- gzip on loopback costs more CPU than it saves: we send `Accept-Encoding: identity`
  to loopback hosts (configurable);
- requests lets `$REQUESTS_CA_BUNDLE` silently override a session's `verify`: we pass
  `verify` with every request, so a CA bundle given in the settings is the one used.

Answers are decoded in bulk: label sets through the JSON decoder, sample values as one
text per answer split and cast by polars, never one Python object per sample; the next
chunk is fetched while the previous one is parsed.

Credentials: see `settings`.
"""

from __future__ import annotations

import re
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import requests
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from wsanalysis.errors import (
    PrometheusAuthError,
    PrometheusError,
    PrometheusUnreachable,
    PromQLError,
    UsageError,
)
from wsanalysis.sources.metric_names import CLOSES_TOTAL
from wsanalysis.sources.prometheus.decoding import _json_or_none, _Matrix, _Series, decode_matrix
from wsanalysis.sources.prometheus.settings import (
    ENV_BEARER_TOKEN,
    ENV_PASSWORD,
    ENV_URL,
    ENV_USER,
    PrometheusSettings,
    _credentials_from_env,
    _is_loopback,
)
from wsanalysis.sources.prometheus.timing import _iso, _seconds, _to_ms_span, to_epoch_ms
from wsanalysis.sources.schema import SAMPLES_FIXED, TIMESTAMP, empty_samples, samples_schema
from wsanalysis.sources.telemetry import REFERENCE, Telemetry
from wsanalysis.sources.translation import (
    renames_series,
    samples_to_reference,
    user_labels,
    user_matchers,
    user_sample_name,
)
from wsanalysis.sources.variants import VariantMapping, parse_matchers

#: Prometheus refuses a range query whose result would exceed this many points per series.
MAX_POINTS_PER_SERIES = 11_000

_RETRY_ON_STATUS = (408, 429, 500, 502, 503, 504)
_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(.*)\})?\s*$", re.DOTALL)


#: a per-query limit (Prometheus/Thanos --query.max-samples, Mimir's max chunks or series)
_LIMIT_HIT = re.compile(
    r"too many samples|max.?samples|maximum number of (chunks|series)|"
    r"max number of (chunks|series)|exceeded the limit|limit exceeded|timed out running",
    re.IGNORECASE,
)
MAX_SPLITS = 12  # a range split into up to 4096 parts before giving up


class PrometheusWarning(UserWarning):
    """The server answered but warned (e.g. partial data from a remote store)."""


class PrometheusSource:
    """A connection to one Prometheus-compatible server (Prometheus, Thanos, Mimir).

    >>> source = PrometheusSource("http://127.0.0.1:9090")
    >>> frame = source.read_samples('ws_connections_total', start, end)
    """

    def __init__(self, settings: PrometheusSettings | str | None = None) -> None:
        if settings is None:
            settings = PrometheusSettings.from_env()
        elif isinstance(settings, str):
            settings = PrometheusSettings.from_env(url=settings)
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.credentials = _credentials_from_env()
        self.last_warnings: list[str] = []

        session = requests.Session()
        session.verify = settings.verify
        compress = (
            settings.compress if settings.compress is not None else not _is_loopback(self.url)
        )
        headers = dict(self.credentials.headers)
        headers["Accept-Encoding"] = "gzip" if compress else "identity"
        retry = Retry(
            total=settings.retries,
            backoff_factor=settings.backoff,
            status_forcelist=_RETRY_ON_STATUS,
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,  # hand back the last answer; we explain it
        )
        #: our own session (retries mounted by prometheus-api-client on it): every
        #: request goes through it, with our headers, auth and `verify`
        self.session = session
        self.headers = headers
        self.client = PrometheusConnect(
            url=self.url,
            headers=headers,
            retry=retry,
            auth=self.credentials.auth,
            session=session,
            timeout=settings.timeout,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PrometheusSource(url={self.url!r}, credentials={self.credentials.kind!r})"

    # -- raw samples -------------------------------------------------------------------

    def read_samples(
        self,
        selector: str,
        start: datetime | str | float,
        end: datetime | str | float,
        *,
        variants: VariantMapping | None = None,
        labels: Sequence[str] | None = None,
        progress: bool | None = None,
        telemetry: Telemetry = REFERENCE,
    ) -> pl.DataFrame:
        """Every raw sample of the series `selector` matches in [start, end], as a samples frame.

        `selector` is a series selector (`ws_closes_total{job="chat"}`, or
        `{__name__=~"ws_.*"}` for everything). The window is read in chunks of
        `settings.chunk` with range-vector instant queries, so no per-series point
        limit applies. Variants come from `variants`: by selectors, each variant's
        matchers are added to the query; by label, the label's value (renamed) is the
        variant. `labels=None` keeps every label as a column; a list keeps only those.
        Series that map to no variant are left out, with a warning. With `telemetry`
        the selector and `labels` are in the contract's names, asked in the user's, and
        the frame comes back in the contract's (`variants` defaults to the mapping's).
        """
        variants = variants if variants is not None else telemetry.variant_mapping
        name, inner = user_selector_parts(selector, telemetry)
        labels = user_labels(telemetry, labels) if labels is not None else None
        start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
        if end_ms < start_ms:
            raise UsageError(f"the window ends ({end}) before it starts ({start})", "swap them")
        self.last_warnings = []
        chunk_ms = max(1, _to_ms_span(self.settings.chunk))
        queries = _variant_queries(name, inner, variants)
        bounds = _plan_chunks(start_ms, end_ms, chunk_ms)
        samples, tables = [], []
        with _Progress(len(queries) * len(bounds), progress, f"reading {selector}") as bar:
            for variant, query in queries:
                series = _Series()
                for parts in self._fetch_all(query, bounds):
                    for lower, _, matrix in parts:
                        series.add(matrix, lower)
                    bar.update(1)
                first = sum(t.height for t in tables)
                samples.append(series.samples(first))
                table = series.table(first)
                tables.append(
                    table if variant is None else table.with_columns(_variant=pl.lit(variant))
                )
        self._emit_warnings()
        frame = self._to_samples(
            pl.concat(samples),
            pl.concat(tables, how="diagonal"),
            f"{selector} between {_iso(start_ms)} and {_iso(end_ms)}",
            variants,
            labels,
        )
        return samples_to_reference(frame, telemetry)

    def metric_names(self, start: datetime | str | float, end: datetime | str | float) -> list[str]:
        """The metric names the server holds over [start, end], as it spells them (what a
        coverage check suggests from when a name the gates read is missing)."""
        params = {"start": _seconds(to_epoch_ms(start)), "end": _seconds(to_epoch_ms(end))}
        if not self.settings.partial_response:
            params["partial_response"] = "false"
        try:
            response = self.session.get(
                f"{self.url}/api/v1/label/__name__/values",
                params=params,
                headers=self.headers,
                auth=self.credentials.auth,
                timeout=self.settings.timeout,
                verify=self.settings.verify,
            )
        except requests.RequestException as error:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} did not answer ({_reason(error)})",
                f"check the URL (or ${ENV_URL}) and that the server is running and reachable",
            ) from error
        body = _json_or_none(response.content) or {}
        if response.status_code != 200 or body.get("status") != "success":
            self._raise_for(response, body or None, "label __name__ values", 1)
        return sorted(str(name) for name in body.get("data") or [])

    def _to_samples(
        self,
        samples: pl.DataFrame,
        table: pl.DataFrame,
        what: str,
        variants: VariantMapping,
        labels: Sequence[str] | None,
    ) -> pl.DataFrame:
        """The samples frame, with per-series work (variant, labels, order) done per series."""
        wanted = list(labels) if labels is not None else None
        if not samples.height:
            _warn(f"no samples for {what} at {self.url}; returning an empty frame")
            return empty_samples(wanted or [])
        columns = table.columns
        variant = pl.col("_variant") if "_variant" in columns else variants.variant_expr(columns)
        table = table.with_columns(
            metric=pl.col("__name__") if "__name__" in columns else pl.lit(None, pl.Utf8),
            variant=variant,
        )
        unmapped = table.filter(pl.col("variant").is_null()).height
        if unmapped:
            _warn(
                f"{unmapped} series matched {what} but no variant ({_describe(variants)}); "
                "they are left out"
            )
        skip = {"series", "_variant", "__name__"} | set(SAMPLES_FIXED) | variants.consumed_labels()
        label_columns = sorted(c for c in columns if c not in skip)
        if wanted is not None:
            label_columns = sorted(set(wanted))
            table = table.with_columns(
                pl.lit(None, pl.Utf8).alias(c) for c in wanted if c not in columns
            )
        # Order as normalize_samples does (metric, variant, labels, time), but sort the
        # few series by their labels and the many samples by two integers.
        keys = ["metric", "variant", *label_columns]
        table = table.filter(pl.col("variant").is_not_null()).sort(keys, nulls_last=True)
        changed = pl.any_horizontal(pl.col(k).ne_missing(pl.col(k).shift()) for k in keys)
        table = table.with_columns(rank=changed.cum_sum())
        table = table.sort("series")
        if not table.height:
            return empty_samples(label_columns)
        ids = samples["series"].to_numpy()
        position = np.searchsorted(table["series"].to_numpy(), ids).clip(0, table.height - 1)
        mapped = table["series"].to_numpy()[position] == ids
        if not mapped.any():
            return empty_samples(label_columns)
        position = position[mapped]
        rows = samples.filter(pl.Series(mapped)).with_columns(
            rank=pl.Series(table["rank"].to_numpy()[position])
        )
        if table["rank"].n_unique() == table.height:
            # series arrive in time order, chunk after chunk: a stable sort by series is enough
            order = np.argsort(rows["rank"].to_numpy(), kind="stable")
        else:  # `labels` merged some series: interleave their samples by time
            order = rows.select(pl.arg_sort_by("rank", "timestamp_ms")).to_series().to_numpy()
        rows, position = rows[order], position[order]
        per_row = table.select(keys)[position]
        frame = pl.concat(
            [rows.select(timestamp=pl.col("timestamp_ms").cast(TIMESTAMP), value="value"), per_row],
            how="horizontal",
        )
        return frame.select([pl.col(c).cast(t) for c, t in samples_schema(label_columns).items()])

    # -- PromQL over a range -------------------------------------------------------------

    def query_range(
        self,
        promql: str,
        start: datetime | str | float,
        end: datetime | str | float,
        step: timedelta | str | float,
    ) -> pl.DataFrame:
        """A PromQL range query as a tidy frame: timestamp, value, one Utf8 column per label.

        `__name__`, when the result keeps it, becomes the `metric` column. Windows longer
        than 11,000 steps are split into several requests, without overlap.
        """
        start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
        step_ms = _to_ms_span(step)
        if step_ms <= 0:
            raise UsageError(f"step {step!r} is not positive", "use e.g. 15s or 1m")
        if end_ms < start_ms:
            raise UsageError(f"the window ends ({end}) before it starts ({start})", "swap them")
        self.last_warnings = []
        series = _Series()
        span = (MAX_POINTS_PER_SERIES - 1) * step_ms
        lower = start_ms
        while lower <= end_ms:
            upper = min(lower + span, end_ms)
            params = {
                "query": promql,
                "start": _seconds(lower),
                "end": _seconds(upper),
                "step": f"{step_ms / 1000:.3f}",
            }
            parts = self._split_on_limit(
                lambda low, high, params=params: self._get_matrix(
                    "query_range", params | {"start": _seconds(low), "end": _seconds(high)}
                ),
                lower,
                upper,
                step_ms,
                closed=True,
            )
            for _, _, matrix in parts:
                series.add(self._keep_warnings(matrix), lower - 1)
            lower = upper + step_ms
        self._emit_warnings()
        raw = series.frame()
        if not raw.height:
            _warn(
                f"no data for {promql!r} between {_iso(start_ms)} and {_iso(end_ms)} at {self.url}",
                stacklevel=3,
            )
            return pl.DataFrame(schema={"timestamp": TIMESTAMP, "value": pl.Float64})
        raw = raw.rename({"__name__": "metric"}) if "__name__" in raw.columns else raw
        labels = sorted(c for c in raw.columns if c not in ("timestamp_ms", "value"))
        return raw.select(
            pl.col("timestamp_ms").cast(TIMESTAMP).alias("timestamp"), "value", *labels
        ).sort([*labels, "timestamp"], nulls_last=True)

    def _split_on_limit(
        self,
        ask: Callable[[int, int], _Matrix],
        lower: int,
        upper: int,
        step_ms: int,
        *,
        closed: bool,
        depth: int = 0,
    ) -> list[tuple[int, int, _Matrix]]:
        """`ask(lower, upper)`, split in halves while the server refuses it for a per-query
        limit ("too many samples", Mimir's max chunks or series): the one splitting rule
        of raw reads and range queries.

        The halves meet on a multiple of `step_ms` from `lower`. A range query's span is
        closed (its points are lower, lower + step, ..., upper): the halves are
        [lower, middle] and [middle + step, upper], no point asked twice. A raw read's
        span is half-open, (lower, upper] at 1 ms: the halves are (lower, middle] and
        (middle, upper], no sample read twice. Returns (lower, upper, answer) per part,
        in time order.
        """
        try:
            return [(lower, upper, ask(lower, upper))]
        except PrometheusError as error:
            steps = (upper - lower) // step_ms
            if not _LIMIT_HIT.search(str(error)) or steps < (1 if closed else 2):
                raise
            if depth >= MAX_SPLITS:
                raise
        middle = lower + (steps // 2) * step_ms
        halves = ((lower, middle), (middle + step_ms if closed else middle, upper))
        return [
            part
            for low, high in halves
            for part in self._split_on_limit(
                ask, low, high, step_ms, closed=closed, depth=depth + 1
            )
        ]

    def _fetch_all(
        self, query: str, bounds: list[tuple[int, int]]
    ) -> Iterator[list[tuple[int, int, _Matrix]]]:
        """Each chunk's answers (split while over a per-query limit), in order, the next
        chunk already running while one is being parsed."""

        def chunk(lower: int, upper: int) -> list[tuple[int, int, _Matrix]]:
            def ask(low: int, high: int) -> _Matrix:
                # [low, high] before Prometheus 3.0, (low, high] since: the caller cuts
                params = {"query": f"{query}[{high - low}ms]", "time": _seconds(high)}
                return self._get_matrix("query", params)

            return self._split_on_limit(ask, lower, upper, 1, closed=False)

        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = deque(pool.submit(chunk, *b) for b in bounds[:2])
            try:
                for following in bounds[2:]:
                    parts = pending.popleft().result()
                    pending.append(pool.submit(chunk, *following))
                    yield [(lo, hi, self._keep_warnings(m)) for lo, hi, m in parts]
                while pending:
                    parts = pending.popleft().result()
                    yield [(lo, hi, self._keep_warnings(m)) for lo, hi, m in parts]
            finally:
                for future in pending:
                    future.cancel()

    def _keep_warnings(self, matrix: _Matrix) -> _Matrix:
        self.last_warnings.extend(matrix.warnings)
        if matrix.skipped_histograms:
            self.last_warnings.append(
                f"{matrix.skipped_histograms} series hold native histograms, "
                "which these frames do not carry; they were skipped"
            )
        return matrix

    def _get_matrix(self, endpoint: str, params: dict[str, str]) -> _Matrix:
        """One API call answered by a matrix; keeps warnings, turns failures into our errors."""
        url = f"{self.url}/api/v1/{endpoint}"
        if not self.settings.partial_response:
            params = params | {"partial_response": "false"}
        attempts = self.settings.retries + 1
        try:
            response = self.session.request(
                "GET",
                url,
                params=params,
                headers=self.headers,
                auth=self.credentials.auth,
                timeout=self.settings.timeout,
                # per request: requests lets $REQUESTS_CA_BUNDLE override session.verify
                verify=self.settings.verify,
            )
        except requests.exceptions.SSLError as error:
            raise PrometheusUnreachable(
                f"TLS handshake with Prometheus at {self.url} failed: {error}",
                "pass verify=<path to the CA bundle> in PrometheusSettings "
                "(verify=False only for a test server)",
            ) from error
        except (requests.ConnectionError, requests.Timeout) as error:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} did not answer after {attempts} attempts "
                f"({_reason(error)})",
                f"check the URL (or ${ENV_URL}) and that the server is running and reachable",
            ) from error
        if response.status_code == 200:
            matrix = decode_matrix(response.content.decode("utf-8", errors="replace"))
            if matrix is not None:
                return matrix
        body = _json_or_none(response.content)
        self._raise_for(response, body, params.get("query", ""), attempts)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for(
        self, response: requests.Response, body: dict[str, Any] | None, query: str, attempts: int
    ) -> None:
        status = response.status_code
        message = (body or {}).get("error") or response.text.strip()[:300]
        kind = (body or {}).get("errorType", "")
        if status in (401, 403):
            sent = self.credentials.kind
            raise PrometheusAuthError(
                f"Prometheus at {self.url} refused the request (HTTP {status}, "
                f"credentials sent: {sent}): {message}",
                f"set ${ENV_BEARER_TOKEN}, or ${ENV_USER} and ${ENV_PASSWORD}, "
                "to credentials this server accepts",
            )
        if kind == "bad_data" or (status == 400 and body):
            raise PromQLError(
                f"Prometheus rejected the query {query!r}: {message}",
                "fix the PromQL (try it in the Prometheus web UI's Graph tab first)",
            )
        if kind == "execution" or status == 422:
            raise PromQLError(
                f"Prometheus could not run the query {query!r}: {message}",
                "narrow the selector, or use a smaller chunk in PrometheusSettings",
            )
        if kind == "timeout":
            raise PrometheusError(
                f"Prometheus at {self.url} timed out running {query!r}: {message}",
                "narrow the selector or the window, or use a smaller chunk",
            )
        if status in _RETRY_ON_STATUS:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} kept failing (HTTP {status} after {attempts} "
                f"attempts): {message}",
                "check the server's health and logs, then try again",
            )
        if status == 404:
            raise PrometheusError(
                f"no Prometheus API at {self.url} (HTTP 404 for /api/v1/)",
                "check the URL, including any path prefix such as /prometheus",
            )
        raise PrometheusError(
            f"unexpected answer from Prometheus at {self.url} (HTTP {status}): {message}",
            "check that the URL points at a Prometheus-compatible query API",
        )

    def _emit_warnings(self) -> None:
        unique = list(dict.fromkeys(self.last_warnings))
        self.last_warnings = unique
        for text in unique:
            _warn(f"Prometheus at {self.url} warned: {text}", stacklevel=4)


# -- module-level shortcuts ---------------------------------------------------------------


def read_samples(
    selector: str,
    start: datetime | str | float,
    end: datetime | str | float,
    *,
    variants: VariantMapping | None = None,
    labels: Sequence[str] | None = None,
    settings: PrometheusSettings | str | None = None,
    progress: bool | None = None,
    telemetry: Telemetry = REFERENCE,
) -> pl.DataFrame:
    """`PrometheusSource(settings).read_samples(...)` for one-off reads."""
    with PrometheusSource(settings) as source:
        return source.read_samples(
            selector,
            start,
            end,
            variants=variants,
            labels=labels,
            progress=progress,
            telemetry=telemetry,
        )


def query_range(
    promql: str,
    start: datetime | str | float,
    end: datetime | str | float,
    step: timedelta | str | float,
    *,
    settings: PrometheusSettings | str | None = None,
) -> pl.DataFrame:
    """`PrometheusSource(settings).query_range(...)` for one-off queries."""
    with PrometheusSource(settings) as source:
        return source.query_range(promql, start, end, step)


# -- helpers ----------------------------------------------------------------------------------


def user_selector_parts(selector: str, telemetry: Telemetry) -> tuple[str, str]:
    """`_split_selector`, the name and the matchers in the user's names."""
    name, inner = _split_selector(selector)
    if not renames_series(telemetry):
        return name, inner
    asked = user_matchers(telemetry, parse_matchers(inner)) if inner else []
    return (
        user_sample_name(telemetry, name) if name else "",
        ", ".join(m.promql() for m in asked),
    )


def _split_selector(selector: str) -> tuple[str, str]:
    match = _SELECTOR.match(selector)
    if not match or not (match.group(1) or match.group(2)):
        raise UsageError(
            f"{selector!r} is not a series selector",
            f'read_samples takes a selector such as {CLOSES_TOTAL}{{code="1006"}}; '
            "use query_range for PromQL expressions",
        )
    name, inner = match.group(1) or "", (match.group(2) or "").strip().rstrip(",")
    parse_matchers(inner)  # the selector's own matchers must parse
    return name, inner


def _variant_queries(
    name: str, inner: str, variants: VariantMapping
) -> list[tuple[str | None, str]]:
    """(variant or None, query) pairs: one per variant when mapping by selectors."""
    if not variants.selectors:
        return [(None, f"{name}{{{inner}}}" if inner else name)]
    queries = []
    for variant, matchers in variants.matchers().items():
        added = ", ".join(m.promql() for m in matchers)
        both = ", ".join(part for part in (inner, added) if part)
        queries.append((variant, f"{name}{{{both}}}"))
    return queries


def _plan_chunks(start_ms: int, end_ms: int, chunk_ms: int) -> list[tuple[int, int]]:
    """Half-open (lower, upper] spans covering [start, end]; the first lower is start - 1."""
    bounds, lower = [], start_ms - 1
    while True:
        upper = min(max(lower, start_ms) + chunk_ms, end_ms)
        bounds.append((lower, upper))
        if upper >= end_ms:
            return bounds
        lower = upper


class _Progress:
    """A tqdm bar when asked (or on a terminal for long reads); a no-op otherwise."""

    def __init__(self, total: int, enabled: bool | None, description: str) -> None:
        self.bar = None
        if enabled or (enabled is None and total > 4):
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                desc=description,
                unit="chunk",
                disable=None if enabled is None else False,
            )

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)


def _reason(error: Exception) -> str:
    text = str(error)
    for marker in ("Connection refused", "timed out", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return type(error).__name__ + (f": {text[:200]}" if text else "")


def _describe(variants: VariantMapping) -> str:
    if variants.selectors:
        return "selectors " + ", ".join(f"{k}: {v}" for k, v in variants.selectors.items())
    return f"label {variants.label!r}"


def _warn(message: str, stacklevel: int = 4) -> None:
    warnings.warn(PrometheusWarning(message), stacklevel=stacklevel)


__all__ = [
    "ENV_BEARER_TOKEN",
    "ENV_PASSWORD",
    "ENV_URL",
    "ENV_USER",
    "PrometheusSettings",
    "PrometheusSource",
    "PrometheusWarning",
    "query_range",
    "read_samples",
    "to_epoch_ms",
]
