from celery import shared_task
from django.conf import settings

from apps.catalog.history import history_prune
from apps.catalog.services import catalog_sync
from apps.catalog.watches.tasks import evaluate_watches  # noqa: F401 - registered with the workers as the others


@shared_task(name="apps.catalog.tasks.sync_catalog", soft_time_limit=25 * 60, time_limit=30 * 60, acks_late=True)
def sync_catalog(force: bool = False) -> dict:
    """Periodic catalog sync (beat schedule: KEEPER_CATALOG_SYNC_INTERVAL_MINUTES)."""
    run = catalog_sync(source=settings.KEEPER_CATALOG_SOURCE, force=force)
    return {"id": run.pk, "status": run.status, "hash": run.data_hash}


@shared_task(name="apps.catalog.tasks.prune_catalog_history", soft_time_limit=10 * 60, time_limit=15 * 60)
def prune_catalog_history() -> dict:
    """Daily: forget catalog changes older than KEEPER_HISTORY_DAYS (beat schedule)."""
    return {"deleted": history_prune()}
