"""Recording events: the one way the apps tell callers something (apps build on keeper/, never the reverse)."""

from typing import Any

from keeper.events.models import Event
from keeper.events.types import EventType


def record_event(owner: str, type: EventType | str, data: dict[str, Any], *, subject: str = "") -> Event:
    """Record an event for `owner` (a Caller.owner; "" for staff only), in the caller's transaction: if
    that transaction rolls back, the event (and its deliveries) never existed."""
    return Event.objects.create(owner=owner, type=EventType(type), data=data, subject=subject)
