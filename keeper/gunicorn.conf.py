"""gunicorn settings for the embedded setup: `gunicorn -c keeper/gunicorn.conf.py keeper.wsgi`.

Without Redis there is no Celery beat, so the master process starts one
`run_schedule` child that runs beat's schedule in-process (catalog sync, key
expiry warnings); with Redis, run Celery beat instead and this child exits at once.
"""

import subprocess
import sys
from pathlib import Path

bind = "0.0.0.0:8000"
workers = 2
# asyncio for the sockets, Django run inline: slow or idle connections hold no worker (keeper/server.py).
worker_class = "keeper.server.KeeperWorker"
# Open connections per worker (each costs a few kilobytes); more are answered 503 and closed.
worker_connections = 1000
# Seconds an idle kept-alive connection stays open, and the most a later request's headers may take.
keepalive = 2
accesslog = "-"
PROJECT = Path(__file__).resolve().parent.parent
_scheduler: subprocess.Popen | None = None


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

    get_resolver().url_patterns  # noqa: B018 - imports every view module now
    exchange_rate("EUR", "USD")
    gc.collect()
    gc.freeze()


def on_exit(server) -> None:
    if _scheduler is not None and _scheduler.poll() is None:
        _scheduler.terminate()
