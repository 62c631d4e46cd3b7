from celery import shared_task

from keeper.events.delivery import deliver_due
from keeper.events.services import DELIVER_TASK, events_prune


@shared_task(name=DELIVER_TASK, time_limit=300)
def deliver_webhooks() -> dict:
    """Every 5 s, and on commit of new deliveries with a broker: send due webhook deliveries and retries."""
    return deliver_due().as_dict()


@shared_task(name="keeper.events.tasks.prune_events", time_limit=600)
def prune_events() -> dict:
    """Daily: delete events older than KEEPER_EVENTS_DAYS, with their deliveries."""
    return {"deleted": events_prune()}
