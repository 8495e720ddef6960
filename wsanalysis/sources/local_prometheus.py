"""A real Prometheus over a dataset: backfill `metrics.om` into a TSDB, then serve it.

`backfill` runs `promtool tsdb create-blocks-from openmetrics`, which (2.42) fails on
blank lines and on anything but `# EOF` at the end, and silently DROPS samples that
come out of time order within a series. So we feed it a tidied copy when needed, and
when it stores fewer samples than the file holds, we reload from a copy with each
series' samples together and in time order (repeated timestamps are then reported).
`LocalPrometheus` starts `prometheus` on a free loopback port over that TSDB, with a
retention long enough to keep old blocks, waits for `/-/ready` and stops it cleanly.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import requests
from urllib3.exceptions import InsecureRequestWarning

from wsanalysis.errors import DataError, UsageError, WsAnalysisError
from wsanalysis.sources.prometheus import PrometheusSettings, PrometheusSource

INSTALL_COMMAND = "apt-get install -y prometheus"
METRICS_FILE = "metrics.om"
_EOF = b"# EOF"
_ULID_ROW = re.compile(r"^([0-9A-HJKMNP-TV-Z]{26})\s+(\d+)\s+(\d+)\s+\S+\s+(\d+)\s", re.MULTILINE)
# series key (name plus label set), value, timestamp; label values may hold spaces and '}'
_SAMPLE = r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?)\s+(\S+)(?:\s+(\S+))?'


class PrometheusNotInstalled(UsageError):
    """`prometheus` or `promtool` is not on PATH."""


def find_binary(name: str) -> str:
    """The path of `prometheus` or `promtool`, or an error with the install command."""
    path = shutil.which(name)
    if path is None:
        raise PrometheusNotInstalled(
            f"`{name}` is not installed (needed to run a local Prometheus over a dataset)",
            f"install Debian's package: `{INSTALL_COMMAND}` (as root), "
            "or put Prometheus's release binaries on PATH",
        )
    return path


def metrics_file(dataset: str | Path) -> Path:
    """`metrics.om` (or `metrics.om.gz`) of a dataset folder, or the file itself."""
    path = Path(dataset)
    candidate = path / METRICS_FILE if path.is_dir() else path
    if path.is_dir() and not candidate.is_file() and (path / f"{METRICS_FILE}.gz").is_file():
        candidate = path / f"{METRICS_FILE}.gz"
    if not candidate.is_file():
        raise DataError(
            f"no {METRICS_FILE} at {candidate}",
            "pass a dataset folder holding metrics.om, or the path of an OpenMetrics file",
        )
    return candidate


@dataclass(frozen=True)
class BackfillResult:
    """What promtool wrote: blocks, samples and the time span covered (epoch ms)."""

    tsdb: Path
    blocks: int
    samples: int
    min_time_ms: int
    max_time_ms: int
    input_fixed: bool  # True when promtool was fed a reordered copy of the file


def backfill(dataset: str | Path, tsdb: str | Path, *, replace: bool = False) -> BackfillResult:
    """Write the dataset's metrics into a Prometheus TSDB directory with promtool.

    A well-formed file goes to promtool as it is. When promtool stores fewer samples
    than the file holds (it drops those out of time order within a series), the blocks
    are removed and a reordered copy is loaded instead.
    """
    promtool = find_binary("promtool")
    source = metrics_file(dataset)
    tsdb = Path(tsdb)
    if tsdb.exists() and any(tsdb.iterdir()):
        if not replace:
            raise UsageError(
                f"{tsdb} is not empty (loading into an existing TSDB would mix datasets)",
                "choose an empty directory, or pass replace=True / --replace to clear it",
            )
        shutil.rmtree(tsdb)
    tsdb.mkdir(parents=True, exist_ok=True)
    content = source.read_bytes()
    compressed = content[:2] == b"\x1f\x8b"  # promtool reads plain text only
    if compressed:
        content = gzip.decompress(content)
    tidy, lines = tidy_for_promtool(content)
    if compressed and tidy is None:
        tidy = content
    fixed = tidy is not None
    with tempfile.TemporaryDirectory(prefix="wsanalysis-backfill-") as work:
        copy = Path(work) / METRICS_FILE
        if tidy is not None:
            copy.write_bytes(tidy)
        rows = _create_blocks(promtool, copy if fixed else source, tsdb, source, content)
        if sum(int(r[3]) for r in rows) < lines:
            reordered = reorder_series(content, source)
            if reordered is not None:
                for row in rows:
                    shutil.rmtree(tsdb / row[0])
                copy.write_bytes(reordered)
                rows = _create_blocks(promtool, copy, tsdb, source, content)
                fixed = True
    samples = sum(int(r[3]) for r in rows)
    if samples < lines:
        warnings.warn(
            f"promtool stored {samples} of the {lines} samples in {source}: "
            f"{lines - samples} repeat a timestamp already seen for their series",
            stacklevel=2,
        )
    return BackfillResult(
        tsdb=tsdb,
        blocks=len(rows),
        samples=samples,
        min_time_ms=min((int(r[1]) for r in rows), default=0),
        max_time_ms=max((int(r[2]) for r in rows), default=0),
        input_fixed=fixed,
    )


def _create_blocks(
    promtool: str, path: Path, tsdb: Path, source: Path, content: bytes
) -> list[tuple[str, ...]]:
    """Run promtool; its table's rows (ULID, min time, max time, samples)."""
    command = [promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(tsdb)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = done.stderr.strip() or done.stdout.strip()
        try:
            reorder_series(content, source)  # names the first line it cannot read
        except DataError as error:
            message = f"{message}; {error.problem}"
        raise DataError(
            f"promtool could not backfill {source}: {message}",
            "fix the file (it must be OpenMetrics text with timestamps, ending with # EOF)",
        )
    return _ULID_ROW.findall(done.stdout)


def tidy_for_promtool(content: bytes) -> tuple[bytes | None, int]:
    """`content` without blank lines and ending with exactly `# EOF` (None if it already is).

    Also returns the number of sample lines, to check promtool's count against. Works
    on bytes only, so a well-formed file of millions of lines costs milliseconds.
    """
    body = content.rstrip()
    ends_with_eof = body.endswith(_EOF) and (len(body) == len(_EOF) or body[-6:-5] == b"\n")
    if ends_with_eof:
        body = body[: -len(_EOF)].rstrip(b"\n")
    total = body.count(b"\n") + 1 if body else 0
    comments = body.count(b"\n#") + body.startswith(b"#")
    blank = body.count(b"\n\n") + body.startswith(b"\n")
    if not blank and ends_with_eof and content.endswith((b"# EOF", b"# EOF\n")):
        return None, total - comments
    kept = [line for line in body.split(b"\n") if line.strip()]
    samples = sum(not line.startswith(b"#") for line in kept)
    return b"\n".join([*kept, _EOF]) + b"\n", samples


def reorder_series(content: bytes, source: Path | str = "<text>") -> bytes | None:
    """A copy with each series' samples together and in time order (None if they are).

    Family comments (`# TYPE`, `# HELP`, `# UNIT`) stay ahead of their samples.
    Raises DataError naming the first line that is not a sample with a timestamp.
    """
    body = content.rstrip()
    if body.endswith(_EOF):
        body = body[: -len(_EOF)]
    lines = pl.Series("line", body.decode("utf-8").split("\n"), dtype=pl.Utf8)
    frame = pl.DataFrame(lines).with_row_index("row")
    frame = frame.filter(pl.col("line").str.strip_chars() != "")
    comment = pl.col("line").str.starts_with("#")
    frame = frame.with_columns(
        block=pl.col("line").str.starts_with("# TYPE ").cum_sum(),
        comment=comment,
        parts=pl.when(~comment).then(pl.col("line").str.extract_groups(_SAMPLE)),
    ).unnest("parts")
    frame = frame.rename({"1": "key", "2": "value", "3": "ts"})
    samples = frame.filter(~pl.col("comment"))
    bad = samples.filter(pl.col("key").is_null() | pl.col("ts").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise DataError(
            f"{source}, line {row['row'] + 1}: {row['line'][:120]!r} is not a sample with a "
            "timestamp",
            "every sample line needs `name{labels} value timestamp` (timestamps in seconds)",
        )
    samples = samples.with_columns(ts=pl.col("ts").cast(pl.Float64, strict=False))
    in_order = samples.select((pl.col("ts").diff().over("key").fill_null(0) >= 0).all()).item()
    if in_order:
        return None
    first = samples.group_by("key").agg(
        first_row=pl.col("row").min(), first_block=pl.col("block").sort_by("row").first()
    )
    samples = samples.join(first, on="key").with_columns(
        order=_order_key(pl.col("first_block"), 1, pl.col("first_row"), pl.col("ts"))
    )
    comments = frame.filter(pl.col("comment")).with_columns(
        order=_order_key(pl.col("block"), 0, pl.col("row"), pl.lit(0.0))
    )
    ordered = pl.concat([comments.select("order", "line"), samples.select("order", "line")])
    text = "\n".join(ordered.sort("order", maintain_order=True)["line"].to_list())
    return (text + "\n# EOF\n").encode("utf-8")


def _order_key(block: pl.Expr, kind: int, row: pl.Expr, ts: pl.Expr) -> pl.Expr:
    """Family block, comments before samples, series by first appearance, then time."""
    return pl.struct(
        block=block.cast(pl.Int64),
        kind=pl.lit(kind, pl.Int8),
        row=row.cast(pl.Int64),
        ts=ts.cast(pl.Float64),
    )


# -- a running Prometheus ------------------------------------------------------------------


@dataclass(frozen=True)
class BasicAuthUser:
    """A user for Prometheus's web config; the hash is what the server stores (bcrypt)."""

    user: str
    password: str
    bcrypt_hash: str


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve_on_loopback(
    name: str,
    launch: Callable[[int], subprocess.Popen[bytes]],
    ready: Callable[[int], bool],
    log: Path,
    *,
    host: str,
    port: int | None,
    ready_timeout: float,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server with `launch(port)` and wait until `ready(port)`: the process and
    its port. Without a fixed `port`, a free one is chosen (three tries, since another
    process may take it between the check and the bind). The server's output goes to
    `log`, quoted when it exits or is not ready within `ready_timeout` seconds."""
    fixed = port is not None
    for _attempt in range(1 if fixed else 3):
        chosen = port if port is not None else free_port(host)
        process = launch(chosen)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and process.poll() is None:
            if ready(chosen):
                return process, chosen
            time.sleep(0.1)
        output = log.read_text(errors="replace").strip()[-800:]
        stop_process(process)
        if process.returncode is not None and "address already in use" in output:
            if fixed:
                raise UsageError(
                    f"port {port} on {host} is already in use",
                    "choose another port (--port N), or leave it out to get a free one",
                )
            continue
        if time.monotonic() >= deadline:
            raise WsAnalysisError(
                f"{name} at {host}:{chosen} was not ready after {ready_timeout:.0f} s: {output}",
                "a large data directory takes longer to load: raise ready_timeout",
            )
        raise WsAnalysisError(
            f"{name} exited with code {process.returncode}: {output}",
            "read the message above; check the data directory and the port",
        )
    raise WsAnalysisError(f"{name} could not bind a free port on {host}", "retry")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tsdb_window(tsdb: Path) -> tuple[int, int] | None:
    """(min, max) epoch ms over the blocks of `tsdb`, or None when it holds none."""
    metas = [json.loads(meta.read_text()) for meta in Path(tsdb).glob("*/meta.json")]
    if not metas:
        return None
    return min(m["minTime"] for m in metas), max(m["maxTime"] for m in metas)


def retention_for(tsdb: Path) -> str:
    """A retention that keeps every block of `tsdb`, however old (in days, at least 15)."""
    window = tsdb_window(tsdb)
    if window is None:
        return "15d"
    age_days = (time.time() * 1000 - window[0]) / 86_400_000
    return f"{max(15, int(age_days) + 30)}d"


class LocalPrometheus:
    """`prometheus` serving a TSDB on a loopback port; a context manager.

    `basic_auth` and `tls` go into prometheus's `--web.config.file`; `config_yaml`
    replaces the (empty) configuration, e.g. to add a `remote_read`.

    >>> with LocalPrometheus(tsdb_dir) as prom:
    ...     frame = prom.source().read_samples("ws_connections_active", start, end)
    """

    def __init__(
        self,
        tsdb: str | Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        basic_auth: BasicAuthUser | None = None,
        tls: tuple[str | Path, str | Path] | None = None,
        config_yaml: str | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        self.tsdb = Path(tsdb)
        self.host = host
        self.port = port
        self.basic_auth = basic_auth
        self.tls = tls  # (certificate file, key file): serve HTTPS
        self.config_yaml = config_yaml or "global:\n  scrape_interval: 15s\n"
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._work: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def source(self, **settings: Any) -> PrometheusSource:
        """A `PrometheusSource` on this server (settings as in `PrometheusSettings`)."""
        return PrometheusSource(PrometheusSettings(url=self.url, **settings))

    def __enter__(self) -> LocalPrometheus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        binary = find_binary("prometheus")
        if not self.tsdb.is_dir():
            raise UsageError(f"no TSDB directory at {self.tsdb}", "backfill a dataset first")
        self._work = tempfile.TemporaryDirectory(prefix="wsanalysis-prometheus-")
        work = Path(self._work.name)
        config = work / "prometheus.yml"
        config.write_text(self.config_yaml)
        args = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.tsdb}",
            f"--storage.tsdb.retention.time={retention_for(self.tsdb)}",
            "--log.level=warn",
        ]
        web = ""
        if self.basic_auth is not None:
            user, hashed = json.dumps(self.basic_auth.user), json.dumps(self.basic_auth.bcrypt_hash)
            web += f"basic_auth_users:\n  {user}: {hashed}\n"
        if self.tls is not None:
            cert, key = (json.dumps(str(Path(p).resolve())) for p in self.tls)
            web += f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        if web:
            (work / "web.yml").write_text(web)
            args.append(f"--web.config.file={work / 'web.yml'}")
        auth = (self.basic_auth.user, self.basic_auth.password) if self.basic_auth else None
        log = work / "prometheus.log"

        def launch(port: int) -> subprocess.Popen[bytes]:
            with log.open("wb") as log_file:
                return subprocess.Popen(
                    [*args, f"--web.listen-address={self.host}:{port}"],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )

        def ready(port: int) -> bool:
            scheme = "https" if self.tls else "http"
            with contextlib.suppress(requests.RequestException), warnings.catch_warnings():
                # the probe only asks "are you up?": the certificate is the caller's to check
                warnings.simplefilter("ignore", InsecureRequestWarning)
                url = f"{scheme}://{self.host}:{port}/-/ready"
                return requests.get(url, auth=auth, timeout=2, verify=not self.tls).ok
            return False

        try:
            self.process, self.port = serve_on_loopback(
                "prometheus",
                launch,
                ready,
                log,
                host=self.host,
                port=self.port,
                ready_timeout=self.ready_timeout,
            )
        except WsAnalysisError:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within 15 s."""
        if self.process is not None:
            stop_process(self.process)
        if self._work is not None:
            self._work.cleanup()
            self._work = None


@contextlib.contextmanager
def prometheus_for_dataset(
    dataset: str | Path, *, tsdb: str | Path | None = None, port: int | None = None
) -> Iterator[LocalPrometheus]:
    """Serve a dataset: backfill into `tsdb` (a temporary one if None) unless it holds blocks."""
    with contextlib.ExitStack() as stack:
        if tsdb is None:
            tsdb = stack.enter_context(tempfile.TemporaryDirectory(prefix="wsanalysis-tsdb-"))
        tsdb = Path(tsdb)
        if not any(tsdb.glob("*/meta.json")):
            backfill(dataset, tsdb)
        yield stack.enter_context(LocalPrometheus(tsdb, port=port))


def describe_window(min_time_ms: int, max_time_ms: int) -> str:
    """`2024-03-01 00:00:00 → 2024-03-01 02:00:00 UTC` (block max times are exclusive)."""
    start = datetime.fromtimestamp(min_time_ms / 1000, UTC)
    end = datetime.fromtimestamp((max_time_ms - 1) / 1000, UTC)
    return f"{start:%Y-%m-%d %H:%M:%S} → {end:%Y-%m-%d %H:%M:%S} UTC"
