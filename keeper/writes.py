"""No request waits on the database's write lock: Keeper's own bookkeeping is written behind.

SQLite has one write lock per database, and a catalog sync holds it for its whole transaction (tens
of seconds, more for a large catalog). A request that writes meanwhile waited for SQLite's busy
timeout (30 s), and gunicorn, which runs Django inline one request at a time per worker, killed the
worker for missing its heartbeat (its timeout is 30 s too): the requests queued behind it waited or
were lost, and the memory limits with them. On PostgreSQL a sync takes no lock a request needs, but
a request may still meet a row lock of a long transaction.

So, in each gunicorn worker (keeper/gunicorn.conf.py calls `serve()`), per kind of write:

- Bookkeeping a request does on its own is deferred to one flusher thread per worker, which writes it
  with the commands' long busy timeout (it may wait; no request waits with it) and keeps what it could
  not write for its next round: key usage and traffic counters (every KEEPER_KEY_USAGE_FLUSH_SECONDS),
  a key's `last_used_at` and the audit of a revoked key's use (every FLUSH_SECONDS). Counts are exact
  once the lock is free; a worker's normal exit writes what is left (`stop()`); a SIGKILLed worker loses
  what it had not written (a second of `last_used_at`, a flush interval of counters). The audit buffer is
  bounded (apps.keys.bookkeeping): beyond, events are dropped and counted (keeper_deferred_writes_dropped_total).
- A daily quota's count (memory backend, counted in the database) is written at once when it can be,
  within KEEPER_DATABASE_LOCK_WAIT_SECONDS; when the lock is held it is deferred: see
  apps.throttling.limiters.DatabaseCounter.
- A write the caller asked for (creating, changing or revoking a key, the admin, a first token's user)
  waits at most KEEPER_DATABASE_LOCK_WAIT_SECONDS, then is a JSON 503 with Retry-After
  (keeper/api/database.py).

Every connection of a worker but the flusher's waits at most KEEPER_DATABASE_LOCK_WAIT_SECONDS for a
lock: SQLite's busy timeout, PostgreSQL's lock_timeout. Other processes (the sync, commands, Celery)
keep the long wait. Without `serve()` (runserver, tests, Celery) nothing is deferred: the buffers flush
inline, as the requests that fill them go.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, close_old_connections, connections
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)

# How often the flusher writes what requests deferred (last_used_at, audits, quota counts).
FLUSH_SECONDS = 1.0
# A worker's exit waits this long for the last writes (gunicorn's graceful_timeout is 30 s).
STOP_SECONDS = 25.0
LOG_EVERY_SECONDS = 60.0
# PostgreSQL's error for a lock_timeout (SQLite's is the message "database is locked").
_LOCK_NOT_AVAILABLE = "55P03"


class Flusher:
    """The thread that writes a worker's deferred bookkeeping, and the state requests read to defer."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._round_lock = threading.Lock()
        self.processes = 1
        self._warned_at = float("-inf")

    @property
    def running(self) -> bool:
        """Whether requests defer their bookkeeping (a gunicorn worker after `serve()`)."""
        return self._thread is not None

    def is_flusher_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def start(self, *, processes: int) -> None:
        self.processes = max(processes, 1)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="keeper-flusher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop the thread once it has written what is left (a worker's normal exit)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush_all(final=False)
        # In this thread, whose connection waits for the lock as long as a command's would.
        self.flush_all(final=True)
        connections.close_all()

    def flush_all(self, *, final: bool) -> None:
        """One round: every buffer's due writes; a failure is logged and its writes kept for the next round."""
        with self._round_lock:
            close_old_connections()
            for flush in _flushes(final=final):
                try:
                    flush()
                except Exception as exc:  # noqa: BLE001 - a thread's last resort: log, keep going, retry next round
                    self._warn(exc)
            close_old_connections()

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= LOG_EVERY_SECONDS:
            self._warned_at = now
            # The class only: a driver's message may name hosts and users.
            logger.warning("Deferred writes not written yet (%s): kept for the next round.", exc.__class__.__name__)


flusher = Flusher()


@dataclass(frozen=True)
class DeferredWrites:
    """What an app writes behind its requests: `flush` writes all of it (a worker's exit), `flush_due`
    what is due this round (by default all of it)."""

    flush: Callable[[], None]
    flush_due: Callable[[], None] | None = None


# Filled by the apps that defer writes (their AppConfig.ready), so this module imports none of them.
_deferred: dict[str, DeferredWrites] = {}


def register(name: str, flush: Callable[[], None], *, flush_due: Callable[[], None] | None = None) -> None:
    """Have the flusher write `name`'s deferred writes: `flush_due` each round, `flush` at the worker's exit."""
    _deferred[name] = DeferredWrites(flush, flush_due)


def _flushes(*, final: bool) -> list[Callable[[], None]]:
    return [writes.flush if final or writes.flush_due is None else writes.flush_due for writes in _deferred.values()]


def deferring() -> bool:
    """Whether this process writes its request bookkeeping behind (see the module docstring)."""
    return flusher.running


def serve(*, processes: int) -> None:
    """In a gunicorn worker: bound every request's lock waits and start the flusher.

    `processes`: how many workers serve requests (a deferred quota admits this process's share).
    """
    connection_created.connect(_bound_lock_wait, dispatch_uid="keeper-bound-lock-wait")
    flusher.start(processes=processes)


def stop() -> None:
    flusher.stop()


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether `exc` is a lock wait given up (SQLite busy, PostgreSQL lock_timeout), not an outage or a bug."""
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
        return True
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def _bound_lock_wait(sender, connection, **kwargs) -> None:
    if flusher.is_flusher_thread():
        return  # the flusher may wait: no request waits with it
    wait_ms = max(int(settings.KEEPER_DATABASE_LOCK_WAIT_SECONDS * 1000), 1)
    if connection.vendor == "sqlite":
        connection.connection.execute(f"PRAGMA busy_timeout = {wait_ms}")
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{wait_ms}ms"])
