"""The Celery app. Without REDIS_URL tasks run in-process (CELERY_TASK_ALWAYS_EAGER).

A worker loads the catalog before it takes its first task (FirstCatalogSync): at scale nothing
else does the first sync (beat's first run is an interval away), and a worker whose first sync
fails exits with status 1 instead of serving tasks beside an empty catalog.
`celery -A keeper worker --no-first-sync` starts without it.
"""

import logging
import os

import click
from celery import Celery, bootsteps
from celery.platforms import EX_FAILURE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keeper.settings")

logger = logging.getLogger(__name__)

app = Celery("keeper")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class FirstCatalogSync(bootsteps.StartStopStep):
    """The catalog sync, in the worker's main process, before its consumer takes any task.

    An unchanged catalog is skipped by the sync itself, so restarting or adding workers costs a
    hash of the source. Raising SystemExit is how a bootstep stops the worker with a status
    (WorkController.start); the error is logged once, without a traceback, as the sync records it.
    """

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent, first_sync: bool = True, **options) -> None:
        super().__init__(parent, **options)
        self.enabled = first_sync

    def start(self, parent) -> None:
        from django.conf import settings
        from django.db import connections

        from apps.catalog.services import catalog_sync

        source = settings.KEEPER_CATALOG_SOURCE or "sparecores-data"
        logger.info("First catalog sync (worker pid %d) from %s, before taking tasks", os.getpid(), source)
        try:
            run = catalog_sync(source=settings.KEEPER_CATALOG_SOURCE)
        except Exception as exc:  # noqa: BLE001 - the sync recorded it; stop the worker loudly
            logger.critical("First catalog sync failed, stopping the worker: %s: %s", exc.__class__.__name__, exc)
            raise SystemExit(EX_FAILURE) from exc
        finally:
            # Pool processes forked later (to replace one that exited) must not inherit this connection.
            connections.close_all()
        logger.info("First catalog sync (worker pid %d): sync #%s %s", os.getpid(), run.pk, run.status)


app.steps["worker"].add(FirstCatalogSync)
app.user_options["worker"].add(
    click.Option(
        ["--first-sync/--no-first-sync"],
        default=True,
        help="Sync the catalog before taking tasks, and exit with status 1 if that fails (default: on).",
    )
)
