"""The event types Keeper records, declared once: the API's choices, the webhook filters and the README."""

from django.db import models


class EventType(models.TextChoices):
    WATCH_CHANGED = "watch.changed", "A watch's answer changed after a sync"
    WATCH_PAUSED = "watch.paused", "A watch was paused (its owner's key is gone, revoked or over quota)"
    KEY_EXPIRING = "key.expiring", "A key expires within KEEPER_KEY_EXPIRY_WARNING_DAYS"
    KEY_EXPIRED = "key.expired", "A key expired"
    KEY_QUOTA_WARNING = "key.quota_warning", "A key used 80% of its daily quota"
    KEY_QUOTA_EXHAUSTED = "key.quota_exhausted", "A key used all of its daily quota"
    KEY_SUSPENDED = "key.suspended", "A key was suspended"
    KEY_REVOKED = "key.revoked", "A key was revoked"
    KEY_ROTATED = "key.rotated", "A key was rotated"
    SYNC_COMPLETED = "sync.completed", "A catalog sync completed (staff)"
    SYNC_FAILED = "sync.failed", "A catalog sync failed (staff)"
    WEBHOOK_DISABLED = "webhook.disabled", "A webhook endpoint was disabled after failing deliveries"
    WEBHOOK_TEST = "webhook.test", "A test delivery asked for with POST /webhooks/{id}/test"


# Events only staff see (and staff endpoints receive): they have no owner.
STAFF_EVENT_TYPES = frozenset({EventType.SYNC_COMPLETED, EventType.SYNC_FAILED})
