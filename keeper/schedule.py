"""Celery beat's schedule, run in one process for the embedded setup (no Redis, no beat).

The tasks run in-process (CELERY_TASK_ALWAYS_EAGER), each at its interval: the
catalog sync every KEEPER_CATALOG_SYNC_INTERVAL_MINUTES, the key expiry warnings and the
catalog history's pruning (KEEPER_HISTORY_DAYS) daily.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass
class ScheduledTask:
    name: str
    task: str
    every: float
    due: float


def beat_entries(now: float) -> list[ScheduledTask]:
    """The beat schedule; each entry first runs one interval from now (start-up has just synced)."""
    return [
        ScheduledTask(name, entry["task"], float(entry["schedule"]), now + float(entry["schedule"]))
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    ]


def run_due(entries: list[ScheduledTask], now: float) -> list[str]:
    """Run the entries that are due and reschedule them; the names of those that ran."""
    from keeper.celery import app

    # What a worker does at start: import every app's tasks module (autodiscovery is lazy).
    app.loader.import_default_modules()
    ran = []
    for entry in entries:
        if entry.due <= now:
            try:
                app.tasks[entry.task].apply(throw=True)
            except Exception as exc:  # noqa: BLE001 - log and try again at the next interval
                logger.error("Scheduled task %s failed: %s: %s", entry.name, exc.__class__.__name__, exc)
            entry.due = now + entry.every
            ran.append(entry.name)
    return ran


def run_forever(clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    entries = beat_entries(clock())
    while True:
        sleep(max(min(entry.due for entry in entries) - clock(), 0.0))
        run_due(entries, clock())
