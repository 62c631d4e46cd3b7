from celery import shared_task

from apps.catalog.watches.services import evaluate_watches as evaluate


@shared_task(name="apps.catalog.watches.tasks.evaluate_watches", soft_time_limit=25 * 60, time_limit=30 * 60)
def evaluate_watches(sync_id: int | None = None) -> dict:
    """Re-run the watches after the latest sync: enqueued when a sync commits (with a broker), and on the
    schedule (every KEEPER_WATCHES_EVALUATE_SECONDS) for syncs whose evaluation is not finished."""
    result = evaluate(sync_id)
    return {
        "sync": result.sync_id,
        "evaluated": result.evaluated,
        "changed": result.changed,
        "paused": result.paused,
        "deferred": result.deferred,
        "finished": result.finished,
    }
