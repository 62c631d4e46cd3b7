"""Time parameters of the catalog history (`/changes`, `/syncs`, `/price_history`) and of
`/server_prices?price_change_since=`: RFC 3339 date-times with a UTC offset (`2026-03-01T12:00:00Z`)
or dates (`2026-03-01`, midnight UTC), and for `since`/`until` also a sync id. Documented in OpenAPI
as exactly those alternatives.
"""

import re
from datetime import UTC, datetime, time
from typing import Any

import django_filters
from django import forms
from drf_spectacular.drainage import set_override

from keeper.api.filters import MAX_NUMBER

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SYNC_ID = re.compile(r"\d{1,16}")
# RFC 3339 allows a leap second (23:59:60), which Python's datetime has no room for.
_LEAP_SECOND = re.compile(r"(T\d{2}:\d{2}):60")
TIME_SCHEMAS: list[dict[str, Any]] = [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]
TIME_MESSAGE = "Give an RFC 3339 date-time with a UTC offset (2026-03-01T12:00:00Z) or a date (2026-03-01)."


def parse_time(text: str) -> datetime:
    """An aware UTC datetime from RFC 3339 text or a date (midnight UTC); ValueError otherwise."""
    text = text.strip().upper()
    if _DATE.fullmatch(text):
        return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time(), tzinfo=UTC)
    if "T" not in text:
        raise ValueError(TIME_MESSAGE)
    value = datetime.fromisoformat(_LEAP_SECOND.sub(r"\1:59", text))
    if value.tzinfo is None:
        raise ValueError(TIME_MESSAGE)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # Within a day of the ends of the calendar: as early or as late as a datetime goes.
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


class TimeField(forms.Field):
    def to_python(self, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        try:
            return parse_time(str(value))
        except ValueError:
            raise forms.ValidationError(TIME_MESSAGE, code="invalid") from None


class SyncPointField(TimeField):
    """A time, or a sync id (an integer from 1)."""

    def to_python(self, value: Any) -> datetime | int | None:
        if isinstance(value, str) and _SYNC_ID.fullmatch(value.strip()):
            number = int(value)
            if not 1 <= number <= MAX_NUMBER:
                raise forms.ValidationError(f"A sync id is from 1 to {MAX_NUMBER}.", code="invalid")
            return number
        try:
            return super().to_python(value)
        except forms.ValidationError:
            raise forms.ValidationError(f"Give a sync id or a time. {TIME_MESSAGE}", code="invalid") from None


class TimeFilter(django_filters.Filter):
    """A time parameter (RFC 3339 date-time with offset, or date), documented as either."""

    field_class = TimeField
    schemas = TIME_SCHEMAS

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        set_override(self, "field", {"anyOf": self.schemas, "description": str(self.label or "")})


class SyncPointFilter(TimeFilter):
    field_class = SyncPointField
    schemas = [{"type": "integer", "minimum": 1, "maximum": MAX_NUMBER}, *TIME_SCHEMAS]
