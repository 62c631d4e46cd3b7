import django_filters

from keeper.api.filters import MultipleValueFilter, PagingFilterSet
from keeper.events.models import DeliveryStatus, Event, WebhookDelivery
from keeper.events.types import EventType


class EventFilterSet(PagingFilterSet):
    """Parameters of `GET /events` (newest first)."""

    since = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gt", label="Only events recorded after this time (ISO 8601)."
    )
    type = MultipleValueFilter(field_name="type", choices=EventType.choices, label="Only events of these types.")

    class Meta:
        model = Event
        fields: list[str] = []


class DeliveryFilterSet(PagingFilterSet):
    """Parameters of `GET /webhooks/{id}/deliveries` (newest first)."""

    status = MultipleValueFilter(
        field_name="status", choices=DeliveryStatus.choices, label="pending, succeeded or failed."
    )

    class Meta:
        model = WebhookDelivery
        fields: list[str] = []
