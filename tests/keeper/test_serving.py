"""The embedded default (gunicorn with keeper/gunicorn.conf.py) keeps answering while callers hold connections.

Each test here runs against a real gunicorn started with the project's own configuration, on a
SQLite database of its own; what it measures is that /healthcheck still answers within a second.
"""

import fcntl
import http.client
import json
import os
import secrets
import select
import signal
import socket
import struct
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.catalog.upstream import sample_catalog
from tests.live import LiveKeeper, LiveKeepers

WATCH_KEYS = 6
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0

pytestmark = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the serving tests use a SQLite database of their own; the SQLite run covers them",
)


def _serving(keys: int = WATCH_KEYS) -> dict:
    """LiveKeeper's options: `keys` read keys (each its own caller), short header and body deadlines."""
    return {
        "api_keys": [(secrets.token_urlsafe(32), f"watcher-{index}", "read") for index in range(keys)],
        "KEEPER_KEY_WATCH_SECONDS": "30",
        "KEEPER_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "KEEPER_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKeeper]:
    with LiveKeeper(tmp_path_factory.mktemp("serving"), **_serving()) as server:
        yield server


def _assert_healthcheck_answers_quickly(server: LiveKeeper, times: int = 5) -> None:
    """/healthcheck is answered while the streams are held: a worker held by them would hold it for the
    streams' 30 s (KEEPER_KEY_WATCH_SECONDS), far past the client's timeout, whatever the machine's speed."""
    for _ in range(times):
        assert server.get("/healthcheck", timeout=10).status == 200
        time.sleep(0.2)


class _Stream(threading.Thread):
    """A GET /keys/watch held open (reading) until stopped."""

    def __init__(self, server: LiveKeeper, key: str):
        super().__init__(daemon=True)
        self.server, self.key = server, key
        self.status: int | None = None
        self.retry_after: str | None = None
        self.opened = threading.Event()
        self.stop = threading.Event()
        # "complete" once the body's last chunk came, "cut" if the connection ended before it.
        self.ended: str | None = None

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            connection.request("GET", "/keys/watch", headers={"X-API-Key": self.key})
            response = connection.getresponse()
            self.status, self.retry_after = response.status, response.getheader("Retry-After")
            self.opened.set()
            while response.status == 200 and not self.stop.is_set():
                if not response.read1(1024):
                    self.ended = "complete"
                    break
        except http.client.IncompleteRead:
            self.ended = "cut"
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


# --- Large answers and clients that do not read them (issue 15, item 3) -------------------------

DUMP_SERVERS, DUMP_REGIONS = 2500, 10
SEND_TIMEOUT = 3.0
SLOW_READERS = 12
# Less than what the slow readers' streams hold at once (at least asyncio's 64 KiB write buffer each).
SEND_BUFFER = 256 * 1024


def _dump_catalog(path: Path) -> Path:
    """The sample with one more vendor priced in every region: a `/table/server_prices` of about 14 MB."""
    catalog = sample_catalog()
    catalog.vendor("bulk", regions=DUMP_REGIONS)
    for number in range(DUMP_SERVERS):
        catalog.server("bulk", f"b{number}", vcpus=2 + number % 64)
    columns = ("vendor_id", "region_id", "zone_id", "server_id", "operating_system", "allocation", "unit", "price")
    columns += ("price_upfront", "price_tiered", "currency", "status", "observed_at")
    rows = [
        ("bulk", f"r{region}", f"r{region}z1", f"b{number}", "Linux", allocation, "HOUR", 0.01 + number / 1000)
        + (0, "[]", "USD", "ACTIVE", "2026-01-15 21:49:48.232080")
        for number in range(DUMP_SERVERS)
        for region in range(1, DUMP_REGIONS + 1)
        for allocation in ("ONDEMAND", "SPOT")
    ]
    catalog.db.executemany(f"INSERT INTO server_price ({', '.join(columns)}) VALUES ({', '.join('?' * 13)})", rows)
    return catalog.save(path)


@pytest.fixture(scope="module")
def dump_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKeeper]:
    tmp = tmp_path_factory.mktemp("dumps")
    dumps = LiveKeeper(
        tmp,
        catalog=_dump_catalog(tmp / "dump-catalog.db"),
        # One worker: every slow reader counts against the same worker's cap.
        workers=1,
        KEEPER_SEND_TIMEOUT_SECONDS=str(SEND_TIMEOUT),
        KEEPER_SEND_BUFFER_BYTES=str(SEND_BUFFER),
        **_serving(),
    )
    with dumps as server:
        yield server


def _workers_rss(server: LiveKeeper) -> int:
    """The resident memory of gunicorn's workers, in bytes."""
    total = 0
    for pid in server.workers():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _unread(sock: socket.socket) -> int:
    """Bytes waiting in the socket's receive buffer."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_a_table_dump_is_streamed_whole_to_a_reader(dump_server):
    server = dump_server
    answer = server.get("/table/server_prices", headers={"X-API-Key": server.keys[0]}, timeout=60)
    body = answer.body

    assert answer.status == 200
    rows = json.loads(body)
    assert sum(row["vendor_id"] == "bulk" for row in rows) == DUMP_SERVERS * DUMP_REGIONS * 2
    assert len(body) > 12_000_000


def test_readers_that_do_not_read_hold_no_dump_in_memory_and_are_cut_off(dump_server):
    server = dump_server
    # A whole dump read first: what the worker keeps of an ordinary answer is not counted below.
    assert server.get("/table/server_prices", headers={"X-API-Key": server.keys[0]}, timeout=60).status == 200
    assert server.get("/openapi.json", timeout=60).status == 200  # 700 KB, made whole
    before = _workers_rss(server)
    readers = []
    for number in range(SLOW_READERS):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", server.port))
        key = server.keys[number % len(server.keys)].encode()
        sock.sendall(b"GET /table/server_prices HTTP/1.1\r\nHost: keeper\r\nX-API-Key: " + key + b"\r\n\r\n")
        readers.append(sock)
    try:
        peak, cut_off_by, large = before, None, []
        # Nobody reads until every answer has begun and the send timeout has passed since; the API
        # answers meanwhile.
        while cut_off_by is None or time.monotonic() < cut_off_by:
            assert server.get("/healthcheck", timeout=10).status == 200
            peak = max(peak, _workers_rss(server))
            if cut_off_by is None and all(_unread(sock) for sock in readers):
                cut_off_by = time.monotonic() + SEND_TIMEOUT + 2
            if 503 not in large:
                answer = server.get("/openapi.json", timeout=60)
                large.append(answer.status)
                if answer.status == 503:
                    assert answer.json()["code"] == "service_unavailable"
            time.sleep(0.2)
        # Once the worker held its cap for them, a large answer made whole was refused, not kept.
        assert 503 in large and set(large) <= {200, 503}
        # Built whole, each of the 12 answers held its 14 MB, and about as much again in asyncio's buffer.
        assert peak - before < 100_000_000, f"the workers grew by {(peak - before) / 1e6:.0f} MB"
        # At most 8 dumps stream at once in the worker (KEEPER_STREAMS_PER_PROCESS): the others got a 429.
        statuses = [sock.recv(12, socket.MSG_PEEK) for sock in readers]
        assert set(statuses) == {b"HTTP/1.1 200", b"HTTP/1.1 429"}
        streamed = [sock for sock, status in zip(readers, statuses) if status == b"HTTP/1.1 200"]
        assert len(streamed) >= 4
        # Each streamed dump is cut off, the connection reset by the server, while its client reads
        # nothing (if it read, it would make progress and be cut off later, or never).
        poll = select.poll()
        for sock in streamed:
            poll.register(sock, select.POLLERR | select.POLLHUP)
        reset, deadline = set(), time.monotonic() + 60
        while len(reset) < len(streamed) and time.monotonic() < deadline:
            reset.update(fd for fd, _ in poll.poll(200))
        assert len(reset) == len(streamed)
        for sock in streamed:
            with pytest.raises(ConnectionResetError):
                while sock.recv(1 << 20):
                    pass
        assert server.get("/openapi.json", timeout=60).status == 200
    finally:
        for sock in readers:
            sock.close()


# --- HTTP/1.1 as RFC 9112 asks, and a clean shutdown (issue 15, item 16) ------------------------


def test_an_http11_request_without_one_host_is_a_json_400(gunicorn_server):
    for request in (
        b"GET /healthcheck HTTP/1.1\r\n\r\n",
        b"GET /healthcheck HTTP/1.1\r\nHost: keeper\r\nHost: other\r\n\r\n",
    ):
        head, _, body = gunicorn_server.raw(request).partition(b"\r\n\r\n")

        assert head.startswith(b"HTTP/1.1 400"), head
        assert json.loads(body)["code"] == "bad_request"


def test_an_http10_request_may_go_without_host(gunicorn_server):
    head, _, body = gunicorn_server.raw(b"GET /healthcheck HTTP/1.0\r\n\r\n").partition(b"\r\n\r\n")

    assert head.split(b" ")[1] == b"200"
    assert json.loads(body)["status"] == "ok"


def test_a_client_that_half_closes_after_its_request_gets_the_answer(gunicorn_server):
    workers = gunicorn_server.workers()
    with socket.create_connection(("127.0.0.1", gunicorn_server.port), timeout=10) as sock:
        # The workers stopped meanwhile, so that the request and the end of input arrive together
        # (else a fast worker may answer before it reads the end).
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            sock.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: keeper\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        head, _, body = _read_until_closed(sock).partition(b"\r\n\r\n")

    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["status"] == "ok"


def test_a_413_on_a_chunked_body_closes_the_connection(gunicorn_server):
    piece = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(20)) + b"0\r\n\r\n"
    pipelined = b"GET /healthcheck HTTP/1.1\r\nHost: keeper\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gunicorn_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /keys/validate HTTP/1.1\r\nHost: keeper\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + body + pipelined
        )
        answer = _read_until_closed(sock)

    assert answer.startswith(b"HTTP/1.1 413")
    assert answer.count(b"HTTP/1.1 ") == 1, answer[-300:]


def test_shutting_down_ends_open_watch_streams_cleanly(live_keeper: LiveKeepers):
    server = live_keeper(**_serving(keys=2))
    streams = [_Stream(server, key) for key in server.keys]
    for stream in streams:
        stream.start()
    for stream in streams:
        assert stream.opened.wait(10)
    assert [stream.status for stream in streams] == [200, 200]
    logged = server.log.stat().st_size

    assert server.stop(graceful=True, timeout=30) == 0
    for stream in streams:
        stream.join(timeout=10)

    # The streams ended with their last chunk (no IncompleteRead), and the shutdown logged no error.
    assert [stream.ended for stream in streams] == ["complete", "complete"]
    shutdown_log = server.log.read_bytes()[logged:].decode()
    assert "[ERROR]" not in shutdown_log and "Traceback" not in shutdown_log, shutdown_log
