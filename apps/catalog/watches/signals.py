"""A sync that loaded a new catalog enqueues the watches' evaluation once it commits (with a Celery broker).

Whichever process ran the sync (the schedule, a Celery task, `manage.py sync_catalog`), the run is
saved as SUCCEEDED inside the transaction that loads the catalog, so the evaluation is asked for on
that commit. Without a broker (the embedded setup) nothing runs inline, which would hold the sync's
process: the schedule's evaluate-watches entry finds the sync without a finished WatchSweep.
"""

import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.catalog import choices

logger = logging.getLogger(__name__)


def sync_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.status != choices.SyncStatus.SUCCEEDED or settings.CELERY_TASK_ALWAYS_EAGER:
        return
    if getattr(instance, "_watches_enqueued", False):
        return  # the run is saved again after its transaction: one evaluation asked for is enough
    instance._watches_enqueued = True
    sync_id = instance.pk

    def enqueue() -> None:
        from apps.catalog.watches.tasks import evaluate_watches

        try:
            evaluate_watches.delay(sync_id)
        except Exception as exc:  # noqa: BLE001 - the broker is down: the schedule's sweep evaluates it
            logger.warning("Could not enqueue the watches' evaluation after sync #%s: %s", sync_id, exc)

    transaction.on_commit(enqueue)
