"""gunicorn settings for the embedded setup: `gunicorn -c keeper/gunicorn.conf.py keeper.wsgi`.

Without Redis there is no Celery beat, so the master process starts one
`sync_catalog --repeat` child that keeps the catalog in sync; with Redis,
run Celery beat instead and this child exits at once.
"""

import subprocess
import sys
from pathlib import Path

bind = "0.0.0.0:8000"
workers = 2
accesslog = "-"
PROJECT = Path(__file__).resolve().parent.parent
_scheduler: subprocess.Popen | None = None


def when_ready(server) -> None:
    global _scheduler
    _scheduler = subprocess.Popen(
        [sys.executable, str(PROJECT / "manage.py"), "sync_catalog", "--repeat", "--no-progress", "--unless-celery"],
        cwd=PROJECT,
    )


def on_exit(server) -> None:
    if _scheduler is not None and _scheduler.poll() is None:
        _scheduler.terminate()
