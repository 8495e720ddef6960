"""The judge-server's edge, case by case from issue 25 ("The edge"), over real sockets.

The server runs in this process (uvicorn on a loopback port) in front of a Prometheus
that is not there: every case below is answered before any data is fetched, so an
answer that is not 503 shows the request never reached the data source. Requests that
do pass the edge meet the dead port at once (no retries) and answer 503.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import stat
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.service.served import served
from wsanalysis.cli import main
from wsanalysis.service.requests import MAX_ID, parse_flagger
from wsanalysis.service.state import StateStore
from wsanalysis.sources.prometheus import PrometheusSettings

TOKEN = "edge-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEAD = PrometheusSettings(url="http://127.0.0.1:9", retries=0)
LOOK = {"id": "shop/checkout-1", "start": "2026-11-02T06:00:00Z", "end": "2026-11-02T07:00:00Z"}
FLAGGER = {"name": "checkout", "namespace": "shop", "phase": "Progressing", "checksum": "85d5"}


@pytest.fixture
def server(tmp_path: Path):
    with served(prometheus=DEAD, state=tmp_path / "state" / "judge.sqlite", token=TOKEN) as url:
        yield url


def errors(url: str) -> dict[str, float]:
    """`wsanalysis_judge_errors_total` by kind, read from /metrics."""
    counts = {}
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("wsanalysis_judge_errors_total{"):
            kind = line.split('kind="')[1].split('"')[0]
            counts[kind] = float(line.rsplit(" ", 1)[1])
    return counts


def raw(url: str, head: str, body: bytes = b"", timeout: float = 10) -> tuple[int, dict]:
    """Send exactly `head` and `body` on a socket; the status and JSON that come back."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, json.loads(answer.read())


def test_no_token_is_refused_before_the_body_is_read(server: str):
    """100 MB announced and never sent: the 401 comes at once, so nothing was read."""
    head = "POST /v1/judge HTTP/1.1\nHost: x\nContent-Type: application/json\n"
    status, body = raw(server, head + "Content-Length: 100000000\n", timeout=5)
    assert status == 401 and body["verdict"] is None and "token" in body["error"]
    status, _ = raw(server, head + "Authorization: Bearer wrong-token-0123456789\n"
                    "Content-Length: 100000000\n", timeout=5)  # fmt: skip
    assert status == 401
    # Flagger's token rides in the body, so its body is read, but capped: 413 unread
    flagger = "POST /v1/flagger/rollout HTTP/1.1\nHost: x\nContent-Length: 100000000\n"
    status, body = raw(server, flagger, timeout=5)
    assert status == 413 and "larger than 1048576 bytes" in body["error"]
    assert errors(server) == {"unauthorized": 2.0, "too_large": 1.0}


def test_a_body_above_the_cap_is_413_even_with_the_token(server: str, tmp_path: Path):
    head = f"POST /v1/judge HTTP/1.1\nHost: x\nAuthorization: Bearer {TOKEN}\n"
    status, body = raw(server, head + f"Content-Length: {(1 << 20) + 1}\n", timeout=5)
    assert status == 413 and body["fix"]
    # no Content-Length (chunked): refused once the bytes read pass the cap
    with served(prometheus=DEAD, state=tmp_path / "s2.sqlite", token=TOKEN, max_body=1024) as url:
        chunk = b"[" * 1500
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
        status, body = raw(url, head + "Transfer-Encoding: chunked\n", chunked)
        assert status == 413 and "larger than 1024 bytes" in body["error"]
        assert main(["judge-server", "--prometheus", "http://127.0.0.1:9", "--no-auth",
                     "--max-body", "10"]) == 3  # fmt: skip


def test_deep_nesting_is_a_counted_400_without_a_traceback(
    server: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    for _ in range(3):
        answer = requests.post(f"{server}/v1/judge", data=b"[" * 100_000, headers=AUTH, timeout=10)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "the body is not JSON (nested too deep)"
    assert errors(server) == {"request": 3.0}
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text
    assert caplog.text.count("400 the body is not JSON") == 3  # one line each


NOT_LOOKS = [
    b"", b"null", b"[]", b'"x"', b"1", b"\xff\xfe\x00", b"{", b'{"id": "c"', b"[" * 5000,
    b'{"id": 1e999}', b'{"id": NaN}', b'{"id": ["c"]}', b'{"id": {"a": 1}}', b'{"id": true}',
    b'{"id": "c", "start": "yesterday"}', b'{"id": "c", "start": 1e400}',
    b'{"id": "c", "start": "99999999999999999999"}', b'{"id": "c", "look": "99999999999999h"}',
    b'{"id": "c", "look": "30s"}', b'{"id": "c", "horizon": "365d"}', b'{"id": "c", "look": []}',
    b'{"id": "c", "canary_share": "nan"}', b'{"id": "c", "canary_weight": "1e400"}',
    b'{"id": "c", "canary_weight": "100"}', b'{"id": "c", "canary_share": "0.1", "canary_weight": "10"}',
    b'{"id": "c", "variant_label": "a-b"}', b'{"id": "c", "canary_selector": "a=\\"1\\""}',
    b'{"id": "c", "canary_selector": "a=1", "control_selector": "a=\\"2\\""}',
    b'{"id": "c", "canary_selector": "a=~\\"(\\"", "control_selector": "a=\\"2\\""}',
    b'{"id": "c", "profile": "nope"}', b'{"id": "c", "gates": "/etc/passwd"}',
    b'{"id": "c\\u0000"}', b'{"id": "c", "start": "2026-11-02T07:00:00Z", "end": "2026-11-02T06:00:00Z"}',
    b'{"id": "c", "unknown": "x"}', b'{"id": "' + b"x" * 5000 + b'"}',
]  # fmt: skip
NOT_FLAGGER = [
    b"{}", b'{"name": 1}', b'{"name": ["c"]}', b'{"name": "c", "metadata": []}',
    b'{"name": "c", "metadata": "x"}', b'{"name": "c", "namespace": {"a": 1}}',
    b'{"name": "c", "metadata": {"look": ["x"]}}', b'{"name": "c", "metadata": {"horizn": "1h"}}',
    b'{"name": "' + b"n" * 300 + b'"}', b'{"name": "c", "checksum": "a\\nb"}',
]  # fmt: skip


def test_no_client_mistake_is_a_500(server: str):
    for body in NOT_LOOKS:
        answer = requests.post(f"{server}/v1/judge", data=body, headers=AUTH, timeout=10)
        assert answer.status_code == 400, (body[:60], answer.text)
        assert answer.json()["error"] and answer.json()["fix"] and answer.json()["verdict"] is None
    for body in NOT_FLAGGER:
        answer = requests.post(f"{server}/v1/flagger/rollout", data=body, headers=AUTH, timeout=10)
        assert answer.status_code == 400, (body[:60], answer.text)
    answer = requests.post(f"{server}/v1/flagger/post-rollout", json=FLAGGER, headers=AUTH)
    assert answer.status_code == 400 and "post-rollout" in answer.json()["error"]
    assert errors(server) == {"request": len(NOT_LOOKS) + len(NOT_FLAGGER) + 1.0}


def test_unknown_routes_and_methods_answer_json(server: str):
    missing = requests.post(f"{server}/v2/judge", json=LOOK, headers=AUTH, timeout=10)
    assert missing.status_code == 404 and "/v2/judge" in missing.json()["error"]
    wrong = requests.get(f"{server}/v1/judge", timeout=10)
    assert wrong.status_code == 405 and wrong.json()["fix"].startswith("POST /v1/judge")
    assert errors(server) == {"not_found": 2.0}


def test_ids_are_at_most_256_characters(server: str):
    longest = {**LOOK, "id": "c" * MAX_ID}
    assert requests.post(f"{server}/v1/judge", json=longest, headers=AUTH).status_code == 503
    longer = {**LOOK, "id": "c" * (MAX_ID + 1)}
    answer = requests.post(f"{server}/v1/judge", json=longer, headers=AUTH)
    assert answer.status_code == 400 and "more than 256" in answer.json()["error"]
    # Flagger's own id (namespace/name@checksum) is bounded the same way
    payload = {**FLAGGER, "name": "n" * 300, "metadata": {"token": TOKEN}}
    assert requests.post(f"{server}/v1/flagger/rollout", json=payload).status_code == 400


def test_the_lock_table_holds_only_looks_in_flight(tmp_path: Path):
    store = StateStore(tmp_path / "s.sqlite")
    for n in range(10_000):
        with store.lock(f"canary-{n}"):
            pass
    assert store._locks == {}  # nothing stays behind an id once its look is done
    order: list[str] = []
    inside = threading.Event()

    def hold(name: str, canary: str, wait: bool) -> None:
        with store.lock(canary):
            order.append(f"{name} in")
            if wait:
                inside.set()
                assert release.wait(10)
            order.append(f"{name} out")

    release = threading.Event()
    first = threading.Thread(target=hold, args=("a", "same", True))
    first.start()
    assert inside.wait(10)
    other = threading.Thread(target=hold, args=("b", "other", False))  # another canary: runs
    other.start()
    other.join(10)
    second = threading.Thread(target=hold, args=("c", "same", False))  # the same: waits
    second.start()
    second.join(0.2)
    try:
        assert order == ["a in", "b in", "b out"]
        assert {k: holders for k, (_, holders) in store._locks.items()} == {"same": 2}
    finally:
        release.set()
    first.join(10)
    second.join(10)
    assert order[3:] == ["a out", "c in", "c out"] and store._locks == {}


def test_the_state_file_is_private(tmp_path: Path, server: str):
    state = tmp_path / "state" / "judge.sqlite"
    requests.post(f"{server}/v1/judge", json=LOOK, headers=AUTH, timeout=10)  # writes a canary
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    for path in [state, *state.parent.glob("judge.sqlite-*")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    loose = tmp_path / "loose.sqlite"
    loose.touch(mode=0o644)
    loose.chmod(0o644)
    StateStore(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


@pytest.mark.parametrize("header", [f"bearer {TOKEN}", f"BEARER {TOKEN}", f"Bearer   {TOKEN} "])
def test_the_auth_scheme_is_case_insensitive(server: str, header: str):
    answer = requests.post(f"{server}/v1/judge", json=LOOK, headers={"Authorization": header})
    assert answer.status_code == 503  # past the edge, at the (dead) Prometheus


@pytest.mark.parametrize(
    "header", [f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN.upper()}", "Bearer", f"Bearer{TOKEN}"]
)
def test_anything_else_is_401(server: str, header: str):
    answer = requests.post(f"{server}/v1/judge", json=LOOK, headers={"Authorization": header})
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"


def test_flagger_may_send_its_token_in_metadata_and_nothing_else_passes(server: str):
    url = f"{server}/v1/flagger/rollout"
    good = {**FLAGGER, "metadata": {**LOOK, "token": TOKEN}}
    assert requests.post(url, json=good, timeout=10).status_code == 503  # admitted
    for body in ({**FLAGGER, "metadata": {**LOOK, "token": "wrong"}}, FLAGGER, [1]):
        assert requests.post(url, json=body, timeout=10).status_code == 401
    assert requests.post(url, data=b"{not json", timeout=10).status_code == 400


def test_answers_show_no_path_on_the_server(tmp_path: Path):
    root = tmp_path / "gate-files"
    root.mkdir()
    (root / "broken.yaml").write_text("version: 1\nprofiles: [\n")
    secret_dirs = [str(Path.cwd()), str(tmp_path), str(Path(__file__).parents[2])]
    with served(prometheus=DEAD, state=tmp_path / "s.sqlite", token=TOKEN, files_root=root) as url:
        for fields in ({"profile": "nope"}, {"gates": "broken.yaml"}, {"gates": "missing.yaml"}):
            answer = requests.post(f"{url}/v1/judge", json={**LOOK, **fields}, headers=AUTH)
            assert answer.status_code == 400, answer.text
            text = answer.text
            assert not any(folder in text for folder in secret_dirs), text
        unknown = requests.post(f"{url}/v1/judge", json={**LOOK, "profile": "nope"}, headers=AUTH)
        assert "no profile 'nope'" in unknown.json()["error"] and "canary" in unknown.json()["fix"]
        # a first look refused for its profile leaves no canary behind
        again = requests.post(f"{url}/v1/judge", json=LOOK, headers=AUTH)
        assert again.status_code == 503


def test_selectors_are_checked_before_prometheus(server: str):
    escaped = {**LOOK, "canary_selector": 'app="a\\nb"', "control_selector": 'app="c"'}
    answer = requests.post(f"{server}/v1/judge", json=escaped, headers=AUTH)
    assert answer.status_code == 400 and "control character" in answer.json()["error"]
    both = {**LOOK, "canary_selector": 'app="checkout"',
            "control_selector": 'app=~"checkout.*"'}  # fmt: skip
    answer = requests.post(f"{server}/v1/judge", json=both, headers=AUTH)
    assert answer.status_code == 400
    assert 'both match a series with app="checkout"' in answer.json()["error"]


def test_flagger_metadata_keeps_the_teams_keys_and_refuses_near_misses():
    metadata = {**LOOK, "token": TOKEN, "owner": "team-checkout", "slack": "#releases"}
    look = parse_flagger("rollout", {**FLAGGER, "metadata": metadata})
    assert look.ignored == ("owner", "slack") and look.id == LOOK["id"]
    assert (
        "token" not in look.settings()
        and look.settings()
        == parse_flagger("rollout", {**FLAGGER, "metadata": {**LOOK}}).settings()
    )
