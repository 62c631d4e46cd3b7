"""The gunicorn worker of Keeper: asyncio for the sockets, Django's WSGI application run inline.

Why not gunicorn's sync or gthread workers: each gives a connection a worker (or a thread) from
its first byte to its last, so a few sockets that trickle one header line every 2 s, or a few
open `/keys/watch` streams, hold every worker and the API stops answering (measured: two slow
sockets stopped a 2-worker sync server; six stopped a gthread server with 4 threads).

Why not Django's own ASGI handler: it runs every sync view through `sync_to_async` and keeps
database connections per asyncio task, so each request opened a new SQLite connection; measured
here at about a seventh of the sync worker's throughput.

So gunicorn's ASGI worker reads and parses requests on its event loop, where a slow or idle
connection costs a few kilobytes and no worker. Only a request that has fully arrived (headers
within `KEEPER_HEADER_TIMEOUT_SECONDS`, body within `KEEPER_BODY_TIMEOUT_SECONDS` and at most
`KEEPER_MAX_REQUEST_BODY_BYTES`) reaches Django, which then runs exactly as in a sync worker: one
request at a time per process, on one persistent database connection. Streaming responses (the
watch stream, static files) are iterated in a small thread pool, so a stream never blocks the loop;
how many streams may be open is capped where they are made (keeper.api.streams).

Answers go out as fast as the client takes them, and no faster: a body is handed to the socket a
slice at a time, each after the previous one has drained (asyncio's write buffer flow control), and a
streamed body's next chunk is made only then. A client that takes nothing for
`KEEPER_SEND_TIMEOUT_SECONDS` is cut off (the connection and what is buffered for it dropped). What a
worker holds for clients that have not taken it (bodies made and not yet in the kernel's socket
buffers) is capped at `KEEPER_SEND_BUFFER_BYTES`: past it streams wait before making their next chunk,
and an answer made whole over 64 KiB is refused with a JSON 503 unless it is the only one held. The
large answers (the `/table/server_prices` dump) are streamed from the database in chunks
(keeper.api.streams), so a slow reader costs a chunk, not the whole answer. (Measured before: 8
sockets that never read a 125 MB dump held 2.3 GB of one worker for as long as they stayed open.)

HTTP/1.1 as RFC 9112 asks: a request without exactly one Host header is a 400; a client that
half-closes its side once its request is sent still gets the answer; after an error answered before
Django (400, 408, 413) the connection is closed, so nothing sent behind the request is read as a
request. On shutdown, open event streams (`/keys/watch`) are ended cleanly between two events.

A view that waits on another service is the exception to "inline": `GET /ai/assist_*_filters` waits up
to OPENAI_TIMEOUT_SECONDS on the AI provider, and two such calls held a 2-worker server that long. A
request whose view is marked `slow_upstream = True` (looked up in the URLconf before Django runs) is
made whole in a thread of a second small pool, in a contextvars context and on a database connection
of its own (closed when its response is made), while the loop goes on serving other requests inline.
Django is thread-safe and Keeper's shared state is locked, as for the streams. How many provider calls
may be under way is capped where they are made (apps.catalog.ai, KEEPER_AI_CALLS_PER_PROCESS); the
pool has two threads more, so a request beyond the cap gets its 503 with Retry-After at once.
"""

import asyncio
import contextvars
import functools
import io
import os
import socket
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from a2wsgi.wsgi import build_environ
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

_DONE = object()
# The scope key under which KeeperProtocol hands itself to InlineWSGI.
CONNECTION = "keeper.connection"
# Bytes of a body handed to the socket at once; with asyncio's 64 KiB high-water mark, the most
# buffered per connection beyond the kernel's socket buffer.
SEND_SLICE_BYTES = 256 * 1024
# Answers this small (a /healthcheck, an error) are sent whatever the worker holds: each costs no more
# than the write buffer's high-water mark, and refusing them would not free the cap.
SMALL_ANSWER_BYTES = 64 * 1024
_ERROR_CODES = {
    400: "bad_request",
    408: "request_timeout",
    413: "request_too_large",
    414: "request_line_too_long",
    431: "request_headers_too_large",
    500: "server_error",
    501: "not_implemented",
    503: "service_unavailable",
}


def error_bytes(status: int, detail: str) -> bytes:
    """The JSON error body of keeper.api.exceptions, for answers given before Django runs."""
    return orjson.dumps({"detail": detail, "code": _ERROR_CODES.get(status, "error")})


class InlineWSGI:
    """An ASGI application that runs a WSGI application on the event loop's thread.

    The loop is blocked while Django handles a request: that is the point (one request at a time,
    as in a sync worker, without thread hand-offs), and it is why the worker sets
    DJANGO_ALLOW_ASYNC_UNSAFE: no Django code here is async, so nothing can interleave with it.
    Every request runs in the same contextvars context, where Django keeps its database
    connections, so the connection persists between requests.
    """

    def __init__(
        self,
        app: Any,
        *,
        max_body_bytes: int,
        body_timeout: float,
        stream_threads: int,
        send_timeout: float = 30.0,
        send_buffer_bytes: int = 64 * 1024 * 1024,
        upstream_threads: int = 1,
        after_upstream: Callable[[], None] = lambda: None,
    ):
        self.app = app
        self.upstream_pool = ThreadPoolExecutor(max_workers=upstream_threads, thread_name_prefix="keeper-upstream")
        self.after_upstream = after_upstream
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.send_timeout = send_timeout
        self.send_buffer_bytes = send_buffer_bytes
        # Responses being written, for the worker's total of unsent bytes (all on the loop's thread).
        self._outgoing: set[_Outgoing] = set()
        self.context = contextvars.Context()
        self.stream_pool = ThreadPoolExecutor(max_workers=stream_threads, thread_name_prefix="keeper-stream")

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # Other scopes (websocket) are not served: returning closes them.

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.stream_pool.shutdown(wait=False, cancel_futures=True)
                self.upstream_pool.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict, receive, send) -> None:
        connection: KeeperProtocol = scope[CONNECTION]
        hosts = sum(name == b"host" for name, _ in scope.get("headers", ()))
        if hosts > 1 or (hosts == 0 and scope.get("http_version") == "1.1"):
            # RFC 9112 section 3.2: a server MUST answer 400; Django would fall back to SERVER_NAME.
            await _send_error(connection, send, 400, "An HTTP/1.1 request needs exactly one Host header.")
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _send_error(connection, send, 413, f"The request body is larger than {self.max_body_bytes} bytes.")
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), timeout=self.body_timeout)
        except TimeoutError:
            detail = f"The request body did not arrive within {self.body_timeout:g} seconds."
            await _send_error(connection, send, 408, detail)
            return
        except _BodyTooLarge:
            await _send_error(connection, send, 413, f"The request body is larger than {self.max_body_bytes} bytes.")
            return
        if body is None:
            return  # the client went away
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None) -> None:
            started["status"] = int(status[:3])
            started["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

        environ = build_environ(scope, io.BytesIO(body))
        if slow_upstream(scope["path"]):
            await self._respond_off_loop(environ, send)
            return
        result = self.context.run(self.app, environ, start_response)
        outgoing = _Outgoing(connection, send, self.send_timeout)
        if getattr(result, "streaming", False):
            await send({"type": "http.response.start", "status": started["status"], "headers": started["headers"]})
            # Server-sent events may end between any two events (the client reconnects with
            # Last-Event-ID); any other stream ended early would look whole and be cut short.
            endable = any(
                name == b"content-type" and value.startswith(b"text/event-stream") for name, value in started["headers"]
            )
            await self._stream(result, outgoing, end_on_shutdown=endable)
            return
        try:
            content = self.context.run(b"".join, result)
        finally:
            self.context.run(result.close)
        held = self._held()
        if len(content) > SMALL_ANSWER_BYTES and held and held + len(content) > self.send_buffer_bytes:
            # Already made, but not kept: the worker holds its cap for clients slower than this one.
            detail = "The server is busy sending other answers; try again shortly."
            await _send_error(connection, send, 503, detail, retry_after=1)
            return
        await send({"type": "http.response.start", "status": started["status"], "headers": started["headers"]})
        self._outgoing.add(outgoing)
        try:
            await outgoing.write(content, more=False)
        except _ClientGone:
            pass  # cut off, or gone: nobody to answer
        finally:
            self._outgoing.discard(outgoing)

    async def _respond_off_loop(self, environ: dict, send) -> None:
        """A request to a slow upstream view, made in the upstream pool (see the module docstring)."""
        loop = asyncio.get_running_loop()
        # A context of its own: nothing of this request's leaks into the loop's or another's.
        made = await loop.run_in_executor(self.upstream_pool, contextvars.Context().run, self._respond, environ)
        status, headers, content = made
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _respond(self, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None) -> None:
            started["status"] = int(status[:3])
            started["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

        try:
            result = self.app(environ, start_response)
            try:
                content = b"".join(result)
            finally:
                result.close()
        finally:
            # This thread's database connections: a pool thread may wait long for its next request.
            self.after_upstream()
        return started["status"], started["headers"], content

    async def _read_body(self, receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _stream(self, result: Any, outgoing: "_Outgoing", *, end_on_shutdown: bool) -> None:
        """Each chunk is produced in the stream pool once the previous one has drained and the worker
        holds less than its cap; a client that leaves or stops reading ends the stream, and so does
        the worker's shutdown if `end_on_shutdown` (cleanly: the body's end is sent; else the stream
        goes on within gunicorn's graceful timeout)."""
        loop = asyncio.get_running_loop()
        connection = outgoing.connection
        iterator = iter(result)
        self._outgoing.add(outgoing)
        try:
            while not (end_on_shutdown and connection.stopping):
                await self._room(outgoing)
                chunk = await loop.run_in_executor(self.stream_pool, next, iterator, _DONE)
                if chunk is _DONE:
                    break
                if chunk:
                    await outgoing.write(chunk, more=True)
            await outgoing.write(b"", more=False)
        except _ClientGone:
            pass  # the client left, or was cut off: nobody to answer
        finally:
            self._outgoing.discard(outgoing)
            await loop.run_in_executor(self.stream_pool, result.close)

    def _held(self) -> int:
        return sum(outgoing.held() for outgoing in self._outgoing)

    async def _room(self, outgoing: "_Outgoing") -> None:
        """Wait until the worker holds less than its cap of unsent bytes, within the send timeout.

        Polled: the bytes drain on other connections, which notify nobody here; this waits only
        while the cap is reached, which takes slow clients on other streams."""
        deadline = asyncio.get_running_loop().time() + self.send_timeout
        while self._held() >= self.send_buffer_bytes:
            if outgoing.connection.closed:
                raise _ClientGone
            if asyncio.get_running_loop().time() >= deadline:
                outgoing.connection.abort()
                raise _ClientGone
            await asyncio.sleep(0.05)


@functools.lru_cache(maxsize=1024)
def slow_upstream(path: str) -> bool:
    """Whether the view at `path` is marked `slow_upstream` (it waits on another service).

    Cached (1,024 paths): a URLconf lookup costs 15-50 us, and most requests go to a few paths.
    """
    from django.urls import Resolver404, resolve

    try:
        view = resolve(path).func
    except Resolver404:
        return False
    return bool(getattr(getattr(view, "view_class", view), "slow_upstream", False))


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    """The connection is gone: the client left, or was cut off for not reading."""


class _Outgoing:
    """One response's body on its way out: written a slice at a time, each wait for the client bounded."""

    def __init__(self, connection: "KeeperProtocol", send: Callable, timeout: float):
        self.connection, self.send, self.timeout = connection, send, timeout
        self.unsent = 0

    def held(self) -> int:
        """Bytes of this response made but not yet in the kernel: in hand, and in the write buffer."""
        return self.unsent + self.connection.buffered()

    async def write(self, body: bytes, *, more: bool) -> None:
        """Send `body`; gunicorn's send waits for the write buffer to drain below its high-water mark
        (64 KiB) after each slice, so at most a slice more than that is buffered; a wait longer than
        the send timeout drops the connection (_ClientGone)."""
        offset = 0
        while True:
            piece = body[offset : offset + SEND_SLICE_BYTES] if len(body) > SEND_SLICE_BYTES else body
            offset += len(piece)
            self.unsent = len(body) - offset
            last = offset >= len(body)
            if self.connection.closed:
                raise _ClientGone
            try:
                async with asyncio.timeout(self.timeout):
                    await self.send({"type": "http.response.body", "body": piece, "more_body": more or not last})
            except TimeoutError:
                self.connection.abort()
                raise _ClientGone from None
            if last:
                return


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(
    connection: "KeeperProtocol", send, status: int, detail: str, *, retry_after: int | None = None
) -> None:
    """A JSON error, after which the connection is closed: what follows the request is not read."""
    body = error_bytes(status, detail)
    headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"private, no-store"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    connection.close_after_response()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class KeeperProtocol(ASGIProtocol):
    """gunicorn's HTTP/1 protocol with a deadline for the first request's headers and JSON errors.

    gunicorn bounds the headers of later requests on a kept-alive connection by its keepalive
    timer, but not those of the first: without this, a socket that sends a header line every few
    seconds stays open for ever. Connections beyond `worker_connections` are closed at once.
    """

    header_timeout = 5.0
    send_timeout = 30.0

    def __init__(self, worker) -> None:
        super().__init__(worker)
        self._close_after_response = False

    # --- What InlineWSGI asks of its connection (scope[CONNECTION]) ---

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stopping(self) -> bool:
        """The worker is shutting down: streams end between two chunks."""
        return not self.worker.alive

    def buffered(self) -> int:
        """Bytes in asyncio's write buffer, not yet taken by the kernel."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None and not self._closed else 0

    def abort(self) -> None:
        """Drop the connection and what is buffered for it (a client that stopped reading)."""
        self._closed = True
        self._reset()

    def _reset(self) -> None:
        """Close with a reset: the kernel drops its send buffer (megabytes on a fast link) at once,
        where a plain close would keep offering it to a client that does not read for minutes."""
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass  # already gone
        transport.abort()

    def close_after_response(self) -> None:
        self._close_after_response = True

    # --- gunicorn's protocol, amended ---

    def _build_http_scope(self, request, sockname, peername) -> dict:
        scope = super()._build_http_scope(request, sockname, peername)
        scope[CONNECTION] = self
        return scope

    def _will_close(self, request, response_requires_close) -> bool:
        if self._close_after_response:
            return True
        return super()._will_close(request, response_requires_close)

    def eof_received(self) -> bool | None:
        """A client that half-closes once its request is whole still gets the answer (RFC 9112 section 9.6).

        asyncio's default closes the transport at the client's end of input, which dropped the answer;
        keeping it open for writing, the connection is closed once the answer is sent. A request
        that is not whole yet never will be: closed at once, as before.
        """
        receiver = self._body_receiver
        if self._current_request is not None and receiver is not None and receiver._complete:
            self._close_after_response = True
            return True
        return None

    def _close_transport(self) -> None:
        """Close once the buffer has drained, and drop the connection if that takes longer than the send
        timeout: asyncio's close waits for ever on a client that stopped reading.

        gunicorn's version skips close() when write_eof() fails, which it does on a socket the client
        has reset (an answer written after the client closed): the transport then stayed open and
        counted in `nr_conns` until the worker stopped, and a graceful shutdown waited for it.
        """
        transport = self.transport
        if transport is None or self._closed:
            return
        self._closed = True
        try:
            if transport.can_write_eof():
                transport.write_eof()
        except OSError:
            pass  # reset by the client: nothing more can reach it
        transport.close()
        if not self._conn_lost_handled:
            self.worker.loop.call_later(self.send_timeout, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self._conn_lost_handled:
            self._reset()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self.worker.nr_conns > self.worker.worker_connections:
            self._send_error_response(503, "Too many open connections; try again later.")
            self._close_transport()
            return
        if self._callback_parser is not None and self._keepalive_handle is None:
            # The keepalive timer's handler closes the connection and is cancelled when the
            # request's headers are complete, which is exactly what the first request needs too.
            self._keepalive_handle = self.worker.loop.call_later(self.header_timeout, self._keepalive_timeout)

    def _keepalive_timeout(self) -> None:
        """Close the connection at its deadline, unless a whole request has arrived meanwhile.

        Django runs inline on the loop, so a worker busy with other connections' requests can reach
        this deadline in the same loop iteration that reads a request which came in on time: the
        read only wakes the connection's handler for the next iteration, and gunicorn's timer then
        dropped the request unanswered (seen under load by tests/stack/test_load.py). Idle and
        trickling connections, whose headers are not complete, are still closed.
        """
        if self._request_ready.is_set() and self._current_request is not None:
            return
        super()._keepalive_timeout()

    def _send_error_response(self, status: int, message: str, extra_headers=()) -> None:
        body = error_bytes(status, message)
        reason = {408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long"}.get(status, "Error")
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: application/json\r\n"
            "Cache-Control: private, no-store\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{extra}"
            "Connection: close\r\n\r\n"
        )
        self._safe_write(head.encode("latin-1") + body)


class KeeperWorker(gasgi.ASGIWorker):
    """gunicorn's ASGI worker serving a WSGI application through InlineWSGI (see the module docstring)."""

    def init_process(self) -> None:
        # Django refuses database calls from a thread that runs an event loop, in case an async
        # view would block it; here the loop only does socket I/O and Django code is all sync.
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        # gunicorn builds its protocol by this module-level name; this process serves only Keeper.
        gasgi.ASGIProtocol = KeeperProtocol
        super().init_process()

    def load_wsgi(self) -> None:
        wsgi_app = self.app.wsgi()
        from django.conf import settings
        from django.db import connections

        KeeperProtocol.header_timeout = settings.KEEPER_HEADER_TIMEOUT_SECONDS
        KeeperProtocol.send_timeout = settings.KEEPER_SEND_TIMEOUT_SECONDS
        self.asgi = InlineWSGI(
            wsgi_app,
            max_body_bytes=settings.KEEPER_MAX_REQUEST_BODY_BYTES,
            body_timeout=settings.KEEPER_BODY_TIMEOUT_SECONDS,
            stream_threads=settings.KEEPER_STREAMS_PER_PROCESS + 2,
            send_timeout=settings.KEEPER_SEND_TIMEOUT_SECONDS,
            send_buffer_bytes=settings.KEEPER_SEND_BUFFER_BYTES,
            upstream_threads=settings.KEEPER_AI_CALLS_PER_PROCESS + 2,
            after_upstream=connections.close_all,
        )
