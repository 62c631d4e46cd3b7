"""gunicorn settings for the embedded setup: `gunicorn -c keeper/gunicorn.conf.py keeper.wsgi`.

Without Redis there is no Celery beat, so the master process starts one
`run_schedule` child that runs beat's schedule in-process (catalog sync, key
expiry warnings); with Redis, run Celery beat instead and this child exits at once.

Metrics: every process (workers, that child) keeps its Prometheus values in files under
PROMETHEUS_MULTIPROC_DIR, which /metrics sums; unless set, a private folder per master.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keeper.settings")
# Before any process imports prometheus_client, which chooses its multiprocess mode on import.
_OWNED_MARKER = ".keeper-owned"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="keeper-metrics-")
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"], _OWNED_MARKER).touch()

bind = "0.0.0.0:8000"
workers = 2
# asyncio for the sockets, Django run inline: slow or idle connections hold no worker (keeper/server.py).
worker_class = "keeper.server.KeeperWorker"
# Open connections per worker (each costs a few kilobytes); more are answered 503 and closed.
worker_connections = 1000
# gunicorn kills a worker that has not reported for this long; no request waits for a database lock
# longer than KEEPER_DATABASE_LOCK_WAIT_SECONDS (at most 5 s; keeper/writes.py), so none reaches it.
timeout = 30
# Seconds an idle kept-alive connection stays open, and the most a later request's headers may take.
keepalive = 2
# Request lines come from Django (keeper.observability), one per request; this logger adds lines
# only for answers Django never saw, and writes gunicorn's own messages in KEEPER_LOG_FORMAT.
accesslog = "-"
logger_class = "keeper.observability.gunicorn.KeeperGunicornLogger"
PROJECT = Path(__file__).resolve().parent.parent
_scheduler: subprocess.Popen | None = None


def on_starting(server) -> None:
    """Refuse to start, before listening, on a KEEPER_API_KEYS that cannot be merged (see apps/keys/bootstrap.py)."""
    # Values of an earlier server in the same folder would be summed into this one's.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)
    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DatabaseError, connections

    try:
        django.setup()
        from apps.keys.bootstrap import ensure_merged

        # Marked merged in this process, so the workers forked from it need no write at their first key.
        ensure_merged()
    except ImproperlyConfigured as exc:
        server.log.error("Not starting: %s", exc)
        sys.exit(1)
    except DatabaseError as exc:
        # Not migrated yet: the workers merge once the tables exist.
        server.log.warning("Bootstrap keys not merged at start-up: %s", exc.__class__.__name__)
    finally:
        # Workers are forked from this process: they must not share its connection.
        connections.close_all()


def when_ready(server) -> None:
    global _scheduler
    _scheduler = subprocess.Popen(
        [sys.executable, str(PROJECT / "manage.py"), "run_schedule"],
        cwd=PROJECT,
    )


def post_worker_init(worker) -> None:
    """Warm each worker up, then keep the start-up objects out of the garbage collector's way.

    Measured (bench/README.md): the first request of a cold worker took 350-460 ms (URLconf
    import, exchange rates), and full collections of the start-up heap made a p99 of ~57 ms
    against a p50 of ~9 ms; with the heap frozen the p99 was ~12 ms.
    """
    import gc

    from django.urls import get_resolver

    from apps.catalog.pricing import exchange_rate
    from keeper import writes

    get_resolver().url_patterns  # noqa: B018 - imports every view module now
    exchange_rate("EUR", "USD")
    # Requests wait for no database lock beyond a small bound; their bookkeeping is written behind.
    writes.serve(processes=worker.cfg.workers)
    gc.collect()
    gc.freeze()


def worker_exit(server, worker) -> None:
    """A worker's normal exit writes the bookkeeping its requests deferred (keeper/writes.py)."""
    from keeper import writes

    writes.stop()


def child_exit(server, worker) -> None:
    """A dead worker's live gauges must not be summed any more (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _scheduler is not None and _scheduler.poll() is None:
        _scheduler.terminate()
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    if os.path.exists(os.path.join(metrics_dir, _OWNED_MARKER)):
        shutil.rmtree(metrics_dir, ignore_errors=True)
