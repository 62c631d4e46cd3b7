"""gunicorn settings for the embedded setup: `gunicorn -c keeper/gunicorn.conf.py keeper.wsgi`.

Without Redis there is no Celery beat, so the master process starts one
`run_schedule` child that runs beat's schedule in-process (catalog sync, key
expiry warnings); with Redis, run Celery beat instead and this child exits at once.
"""

import os
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


def on_starting(server) -> None:
    """Refuse to start, before listening, on a KEEPER_API_KEYS that cannot be merged (see apps/keys/bootstrap.py)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keeper.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DatabaseError, connections

    try:
        django.setup()
        from apps.keys.bootstrap import merge_bootstrap_keys

        merge_bootstrap_keys()
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

    get_resolver().url_patterns  # noqa: B018 - imports every view module now
    exchange_rate("EUR", "USD")
    gc.collect()
    gc.freeze()


def on_exit(server) -> None:
    if _scheduler is not None and _scheduler.poll() is None:
        _scheduler.terminate()
