"""Long-lived and large responses: caps per process and per caller, and what a streamed body needs.

A watch stream holds one thread of the worker's stream pool for its whole life (keeper/server.py),
so the number open at once is bounded below the pool's size; one caller gets only a share of it.
Counts are per process: with N worker processes a caller holds at most N times its share.

A large answer (a table dump) is streamed: made chunk by chunk in the stream pool, each chunk only
once the client has taken the previous one (keeper/server.py), from a query read on a database
connection of its own (`own_connection`).
"""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from rest_framework import exceptions

from keeper.api.renderers import ORJSONRenderer


class TooManyStreams(exceptions.Throttled):
    default_code = "too_many_streams"


@dataclass
class StreamSlots:
    """Open streams by caller; `limits()` -> (per process, per caller, longest life in seconds)."""

    limits: Callable[[], tuple[int, int, float]]
    clock: Callable[[], float] = time.monotonic
    _open: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, caller: str, content: Iterable[bytes]) -> Iterator[bytes]:
        """`content`, counted against the caps until it ends or is closed; TooManyStreams if full."""
        per_process, per_caller, longest = self.limits()
        with self._lock:
            now = self.clock()
            mine = self._open.setdefault(caller, [])
            total = sum(len(starts) for starts in self._open.values())
            if len(mine) >= per_caller:
                wait = min(mine) + longest - now
                detail = f"You have {len(mine)} streams open already (at most {per_caller})."
            elif total >= per_process:
                oldest = min(start for starts in self._open.values() for start in starts)
                wait = oldest + longest - now
                detail = "Too many streams are open on this server; try again later."
            else:
                mine.append(now)
                return _Counted(content, lambda: self._close(caller, now))
            if not mine:
                del self._open[caller]
        raise TooManyStreams(wait=max(int(wait + 0.999), 1), detail=detail)

    def count(self, caller: str | None = None) -> int:
        with self._lock:
            if caller is not None:
                return len(self._open.get(caller, ()))
            return sum(len(starts) for starts in self._open.values())

    def _close(self, caller: str, started: float) -> None:
        with self._lock:
            starts = self._open.get(caller, [])
            if started in starts:
                starts.remove(started)
            if not starts:
                self._open.pop(caller, None)


class _Counted:
    """An iterator that frees its slot once, when exhausted or closed (even if never started)."""

    def __init__(self, content: Iterable[bytes], release: Callable[[], None]):
        self._content = iter(content)
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> "_Counted":
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._content)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            close = getattr(self._content, "close", None)
            if close is not None:
                close()
        finally:
            release()


def stream_connection(alias: str = DEFAULT_DB_ALIAS) -> Callable[[], AbstractContextManager[BaseDatabaseWrapper]]:
    """How a streamed body will read the database, decided in the request's thread: in the request's
    transaction if it runs in one (a test case's, or ATOMIC_REQUESTS), which only that connection
    sees; otherwise on a connection of its own (`own_connection`)."""
    current = connections[alias]
    if current.in_atomic_block:
        return lambda: nullcontext(current)
    return lambda: own_connection(alias)


@contextmanager
def own_connection(alias: str = DEFAULT_DB_ALIAS) -> Iterator[BaseDatabaseWrapper]:
    """A database connection of its own for a streamed body, usable from any thread, closed at the end.

    A streamed body's chunks are made in whichever thread of the stream pool is free, while the
    worker's connection (the event loop thread's) serves other requests meanwhile: the body's open
    cursor can be on neither thread's connection. On SQLite (WAL) its read blocks no writer; on
    PostgreSQL `chunked_cursor()` is a server-side cursor, so the rows are not all fetched at once.
    """
    db = connections.create_connection(alias)
    db.inc_thread_sharing()
    try:
        yield db
    finally:
        try:
            db.close()
        finally:
            db.dec_thread_sharing()


# Held while a chunk of a large answer is made from what the database returned (dicts, orjson):
# Python work that holds the GIL, and eight threads doing it at once starved the event loop's thread
# (a /healthcheck took 3 s while 8 dumps started). One at a time, the loop waits at most a switch
# interval; the database reads, which release the GIL, are not made under it.
MAKING_CHUNKS = threading.Lock()


def json_array(chunks: Iterable[list[Any]], *, making: AbstractContextManager = nullcontext()) -> Iterator[bytes]:
    """A JSON array of the chunks' items, one piece of bytes per chunk (each rendered within `making`):
    the bytes of the whole list rendered at once, without holding more than a chunk."""
    renderer = ORJSONRenderer()
    opening = b"["
    for chunk in chunks:
        if chunk:
            with making:
                piece = opening + renderer.render(chunk)[1:-1]
            yield piece
            opening = b","
    yield b"]" if opening == b"," else b"[]"
