"""Errors a user can act on: unreachable, auth refused, server warnings; real servers only."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.prometheus.fixtures import SYNTHETIC_END, SYNTHETIC_START, require_prometheus
from wsanalysis.errors import PrometheusAuthError, PrometheusUnreachable, UsageError
from wsanalysis.sources.local_prometheus import (
    BasicAuthUser,
    LocalPrometheus,
    backfill,
    free_port,
)
from wsanalysis.sources.prometheus import (
    ENV_BEARER_TOKEN,
    ENV_PASSWORD,
    ENV_USER,
    PrometheusSettings,
    PrometheusSource,
    PrometheusWarning,
)

#: bcrypt (cost 4, to keep start-up fast) of "open-sesame", made with `bcrypt.hashpw`.
USER = BasicAuthUser(
    user="analyst",
    password="open-sesame",
    bcrypt_hash="$2b$04$85B0vGwbbytam9EBPet1Jeoz7zNq./UiIIi4bsUNSPbtbgoaDYx1O",
)


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_BEARER_TOKEN, ENV_USER, ENV_PASSWORD):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def small_tsdb_factory(synthetic_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    """A fresh TSDB per server (one prometheus per TSDB directory)."""
    require_prometheus()

    def make() -> Path:
        tsdb = tmp_path_factory.mktemp("tsdb-small")
        backfill(synthetic_dataset, tsdb, replace=True)
        return tsdb

    return make


@pytest.fixture(scope="module")
def protected_prometheus(small_tsdb_factory) -> Iterator[LocalPrometheus]:
    with LocalPrometheus(small_tsdb_factory(), basic_auth=USER) as prometheus:
        yield prometheus


def read(url: str, **settings: object):
    with PrometheusSource(PrometheusSettings(url=url, **settings)) as prom:  # type: ignore[arg-type]
        return prom.read_samples("ws_connections_active", SYNTHETIC_START, SYNTHETIC_END)


def test_credentials_from_the_environment_reach_the_server(protected_prometheus, monkeypatch):
    monkeypatch.setenv(ENV_USER, USER.user)
    monkeypatch.setenv(ENV_PASSWORD, USER.password)
    assert read(protected_prometheus.url).height == 2 * 481


def test_wrong_password_is_an_auth_error(protected_prometheus, monkeypatch):
    monkeypatch.setenv(ENV_USER, USER.user)
    monkeypatch.setenv(ENV_PASSWORD, "guess")
    with pytest.raises(PrometheusAuthError, match="HTTP 401") as caught:
        read(protected_prometheus.url)
    assert "credentials sent: basic auth" in caught.value.problem
    assert ENV_PASSWORD in caught.value.fix
    assert "guess" not in str(caught.value)


def test_missing_credentials_are_an_auth_error(protected_prometheus):
    with pytest.raises(PrometheusAuthError, match="credentials sent: none"):
        read(protected_prometheus.url)


def test_two_kinds_of_credentials_are_a_usage_error(monkeypatch):
    monkeypatch.setenv(ENV_BEARER_TOKEN, "t")
    monkeypatch.setenv(ENV_USER, "u")
    with pytest.raises(UsageError, match="only one kind"):
        PrometheusSource("http://127.0.0.1:9")


def test_settings_and_repr_hold_no_secret(monkeypatch):
    monkeypatch.setenv(ENV_BEARER_TOKEN, "s3cr3t-token")
    prom = PrometheusSource("http://127.0.0.1:9")
    assert "s3cr3t" not in repr(prom) and "s3cr3t" not in repr(prom.settings)
    assert "s3cr3t" not in repr(prom.credentials)
    assert prom.client.headers["Authorization"] == "Bearer s3cr3t-token"
    assert prom.client.headers["Accept-Encoding"] == "identity"  # loopback: no gzip


def test_closed_port_is_unreachable_with_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusUnreachable, match="did not answer after 2 attempts") as caught:
        read(url, retries=1, backoff=0)
    assert url in caught.value.problem
    assert "connection refused" in caught.value.problem


class HangUpServer:
    """Accepts TCP connections on loopback and closes them at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.sock.close()


def test_retries_then_unreachable():
    server = HangUpServer()
    try:
        with pytest.raises(PrometheusUnreachable, match="after 3 attempts") as caught:
            read(server.url, retries=2, backoff=0, chunk=timedelta(days=1))  # one request
    finally:
        server.close()
    assert server.accepted == 3
    assert server.url in caught.value.problem


def test_server_warnings_are_surfaced(small_tsdb_factory):
    # A remote store that is down: Prometheus answers with local data plus a warning,
    # the way Thanos reports partial data.
    config = (
        "remote_read:\n"
        f"  - url: http://127.0.0.1:{free_port()}/api/v1/read\n"
        "    read_recent: true\n"
    )
    with LocalPrometheus(small_tsdb_factory(), config_yaml=config) as prometheus:
        prom = prometheus.source(retries=0)
        with pytest.warns(PrometheusWarning, match="remote_read"):
            frame = prom.read_samples("ws_connections_active", SYNTHETIC_START, SYNTHETIC_END)
        assert frame.height == 2 * 481
        assert len(prom.last_warnings) == 1 and "connection refused" in prom.last_warnings[0]
        with pytest.warns(PrometheusWarning, match="remote_read"):
            prom.query_range("sum(ws_connections_active)", SYNTHETIC_START, SYNTHETIC_END, 60)
        prom.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


def test_tls_with_a_ca_bundle_and_an_untrusted_certificate(small_tsdb_factory, certificate):
    with LocalPrometheus(small_tsdb_factory(), tls=certificate) as prometheus:
        assert prometheus.url.startswith("https://")
        assert read(prometheus.url, verify=str(certificate[0])).height == 2 * 481
        with pytest.raises(PrometheusUnreachable, match="TLS handshake") as caught:
            read(prometheus.url, retries=0)
        assert "verify=" in caught.value.fix
