import secrets

from django.db import models

from keeper.events.types import EventType


def _event_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


class Event(models.Model):
    """Something Keeper tells a caller about: kept KEEPER_EVENTS_DAYS, delivered to matching webhooks.

    `owner` is the local user name of the caller it concerns (Caller.owner; "" for staff-only events);
    `subject` names the thing it is about ("watch:12", "key:34", "sync:5"), so one thing's events are
    read by index.
    """

    public_id = models.CharField(max_length=40, unique=True, default=_event_id, editable=False)
    owner = models.CharField(max_length=200, blank=True, help_text="Local user name of the caller it concerns.")
    type = models.CharField(max_length=40, choices=EventType.choices)
    subject = models.CharField(max_length=100, blank=True, help_text='What it is about, e.g. "watch:12".')
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="event_owner_recent"),
            models.Index(fields=["subject", "-created_at"], name="event_subject_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"
