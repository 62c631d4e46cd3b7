"""The embedded default (gunicorn with keeper/gunicorn.conf.py) keeps answering while callers hold connections.

Each test here runs against a real gunicorn started with the project's own configuration, on a
SQLite database of its own; what it measures is that /healthcheck still answers within a second.
"""

import base64
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.catalog.upstream import sample_catalog

PROJECT = Path(__file__).resolve().parent.parent.parent
WATCH_KEYS = 6
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0

pytestmark = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the serving tests use a SQLite database of their own; the SQLite run covers them",
)


@dataclass
class LiveServer:
    port: int
    keys: list[str]
    log: Path

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes, float]:
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read(), time.monotonic() - started
        finally:
            connection.close()

    def raw(self, data: bytes, timeout: float = 10.0) -> bytes:
        """Send `data` as is and return everything the server answers before it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(tmp: Path, keys: list[str]) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AUTH_", "OIDC_", "RATE_LIMIT_", "KEEPER_", "DATABASE_URL")) and name != "REDIS_URL"
    }
    bootstrap = [{"key": key, "name": f"watcher-{index}", "scope": "read"} for index, key in enumerate(keys)]
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "keeper.settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'keeper.sqlite3'}",
        "KEEPER_SECRET_KEY": secrets.token_urlsafe(40),
        "KEEPER_CATALOG_SOURCE": str(sample_catalog().save(tmp / "catalog.db")),
        "KEEPER_API_KEYS": base64.b64encode(json.dumps(bootstrap).encode()).decode(),
        "KEEPER_KEY_WATCH_SECONDS": "30",
        "KEEPER_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "KEEPER_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("serving")
    keys = [secrets.token_urlsafe(32) for _ in range(WATCH_KEYS)]
    env = _environment(tmp, keys)
    manage = [sys.executable, str(PROJECT / "manage.py")]
    for command in (["migrate", "-v0"], ["sync_catalog", "--no-progress"]):
        subprocess.run([*manage, *command], env=env, cwd=PROJECT, check=True, capture_output=True, timeout=120)
    port = _free_port()
    log = tmp / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(gunicorn), "-c", "keeper/gunicorn.conf.py", "keeper.wsgi", "--bind", f"127.0.0.1:{port}"],
            env=env,
            cwd=PROJECT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(port, keys, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if server.get("/healthcheck", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _assert_healthcheck_answers_quickly(server: LiveServer, times: int = 5) -> None:
    for _ in range(times):
        status, _, seconds = server.get("/healthcheck")
        assert status == 200
        assert seconds < 1.0, f"/healthcheck took {seconds:.2f}s"
        time.sleep(0.2)


class _Stream(threading.Thread):
    """A GET /keys/watch held open (reading) until stopped."""

    def __init__(self, server: LiveServer, key: str):
        super().__init__(daemon=True)
        self.server, self.key = server, key
        self.status: int | None = None
        self.retry_after: str | None = None
        self.opened = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            connection.request("GET", "/keys/watch", headers={"X-API-Key": self.key})
            response = connection.getresponse()
            self.status, self.retry_after = response.status, response.getheader("Retry-After")
            self.opened.set()
            while response.status == 200 and not self.stop.is_set():
                if not response.read1(1024):
                    break
        except OSError:
            self.opened.set()
        finally:
            connection.close()


def test_open_watch_streams_hold_no_worker_and_are_capped(gunicorn_server):
    streams = [_Stream(gunicorn_server, key) for key in gunicorn_server.keys for _ in range(3)]
    for stream in streams:
        stream.start()
    try:
        for stream in streams:
            assert stream.opened.wait(10)

        _assert_healthcheck_answers_quickly(gunicorn_server)

        statuses = sorted(stream.status for stream in streams)
        open_streams = statuses.count(200)
        refused = [stream for stream in streams if stream.status == 429]
        # Each of the 6 callers asked for 3 streams; at most 2 per caller per worker (2 workers)
        # and 8 per worker are admitted, the rest refused with a time to retry.
        assert set(statuses) <= {200, 429}
        assert WATCH_KEYS <= open_streams <= 16
        assert refused
        assert all(int(stream.retry_after) >= 1 for stream in refused)
    finally:
        for stream in streams:
            stream.stop.set()


def test_slow_and_idle_connections_hold_no_worker_and_slow_headers_are_cut_off(gunicorn_server):
    slow = []
    for _ in range(40):
        sock = socket.create_connection(("127.0.0.1", gunicorn_server.port), timeout=10)
        sock.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: keeper\r\n")
        slow.append(sock)
    idle = [socket.create_connection(("127.0.0.1", gunicorn_server.port), timeout=10) for _ in range(40)]
    started = time.monotonic()
    try:
        # One header line each, less than a second apart: never a whole request. (A machine slow enough to
        # pass the header deadline meanwhile finds some of them cut off already, which is what is tested.)
        for line in range(3):
            for sock in slow:
                _send_unless_closed(sock, b"X-Slow-%d: yes\r\n" % line)
            _assert_healthcheck_answers_quickly(gunicorn_server, times=2)
        # Past the header deadline the server has closed both kinds.
        time.sleep(max(HEADER_TIMEOUT + 1.0 - (time.monotonic() - started), 0))
        for sock in slow + idle:
            assert _closed_by_server(sock)
    finally:
        for sock in slow + idle:
            sock.close()


def _send_unless_closed(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server has cut the connection off already


def _closed_by_server(sock: socket.socket) -> bool:
    """End of stream, or a reset (what a closed connection answers to data sent after its close); a
    connection still open times out (10 s) instead."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_a_body_that_does_not_arrive_in_time_is_a_json_408(gunicorn_server):
    started = time.monotonic()
    answer = gunicorn_server.raw(
        b"POST /keys/validate HTTP/1.1\r\nHost: keeper\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    head, _, body = answer.partition(b"\r\n\r\n")

    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["code"] == "request_timeout"
    # Without the deadline the socket's own 10 s timeout would end it: a bound any machine meets.
    assert time.monotonic() - started < BODY_TIMEOUT + 5


def test_a_declared_body_over_the_limit_is_a_json_413_without_reading_it(gunicorn_server):
    answer = gunicorn_server.raw(
        b"POST /keys/validate HTTP/1.1\r\nHost: keeper\r\nContent-Type: application/json\r\n"
        b"Content-Length: 50000000\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")

    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body) == {"detail": "The request body is larger than 1048576 bytes.", "code": "request_too_large"}


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: keeper\r\n\r\n", b"414", "request_line_too_long"),
        (b"GET /healthcheck HTTP/1.1\r\nHost: keeper\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", b"431", None),
        (b"NOT HTTP AT ALL\r\n\r\n", b"400", "bad_request"),
    ],
    ids=["long request line", "huge header", "garbage"],
)
def test_requests_refused_before_django_get_json_errors(gunicorn_server, request_bytes, status, code):
    answer = gunicorn_server.raw(request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")

    assert head.split(b" ")[1] == status
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert error["detail"]
    if code:
        assert error["code"] == code


@pytest.mark.parametrize("last_event_id", [b"\xb2", b"5" * 5000], ids=["byte 0xB2", "5,000 digits"])
def test_a_watch_with_a_last_event_id_that_is_no_event_id_is_a_json_400(gunicorn_server, last_event_id):
    key = gunicorn_server.keys[0].encode()
    answer = gunicorn_server.raw(
        b"GET /keys/watch HTTP/1.1\r\nHost: keeper\r\nX-API-Key: " + key + b"\r\n"
        b"Last-Event-ID: " + last_event_id + b"\r\nConnection: close\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")

    assert head.split(b" ")[1] == b"400", answer[:500]
    assert b"content-type: application/json" in head.lower()
    assert "Last-Event-ID" in json.loads(body)["errors"]
