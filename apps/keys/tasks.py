from celery import shared_task

from apps.keys.services import keys_mark_expired, keys_warn_expiring
from apps.keys.signing import signing_keys_prune


@shared_task(name="apps.keys.tasks.warn_expiring_keys", time_limit=600)
def warn_expiring_keys() -> dict:
    """Daily: warn about keys expiring within KEEPER_KEY_EXPIRY_WARNING_DAYS and mark expired ones."""
    warned = keys_warn_expiring()
    return {"warned": [key.key_id for key in warned], "expired": keys_mark_expired()}


@shared_task(name="apps.keys.tasks.prune_signing_keys", time_limit=60)
def prune_signing_keys() -> dict:
    """Hourly: delete the capability token signing keys whose last token has expired."""
    return {"dropped": signing_keys_prune()}
