"""The staff overview's webhook section (keeper/admin.py): deliveries per day by outcome."""

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.urls import reverse

from keeper.admin import OVERVIEW_DAYS
from keeper.charts import Series, stacked_bar_chart
from keeper.events.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

DELIVERY_SERIES = [
    Series(DeliveryStatus.SUCCEEDED, "succeeded", "#417690"),
    Series(DeliveryStatus.PENDING, "pending (retrying)", "#e0a800"),
    Series(DeliveryStatus.FAILED, "failed", "#ba2121"),
]


def deliveries_per_day(today: date, days: int = OVERVIEW_DAYS) -> dict[date, dict[str, int]]:
    """Deliveries created each UTC day of the `days` ending `today`, by their outcome now."""
    first = today - timedelta(days=days - 1)
    rows = (
        WebhookDelivery.objects.filter(created_at__date__gte=first)
        .annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    per_day: dict[date, dict[str, int]] = defaultdict(dict)
    for row in rows:
        per_day[row["day"]][row["status"]] = row["count"]
    return dict(per_day)


def _title(day: date, row: dict[str, int]) -> str:
    parts = ", ".join(f"{row.get(part.name, 0)} {part.label}" for part in DELIVERY_SERIES)
    return f"{day:%Y-%m-%d}: {parts}"


def webhooks_overview(user: Any, now: datetime) -> dict[str, Any] | None:
    """Deliveries per day by outcome and the disabled endpoints, for staff who may view deliveries."""
    if not user.has_perm("events.view_webhookdelivery"):
        return None
    today = now.date()
    per_day = deliveries_per_day(today)
    totals = {part.name: sum(row.get(part.name, 0) for row in per_day.values()) for part in DELIVERY_SERIES}
    return {
        "chart": stacked_bar_chart(
            per_day,
            DELIVERY_SERIES,
            days=OVERVIEW_DAYS,
            today=today,
            title=_title,
            y_title="deliveries per day",
            chart_id="overview-deliveries",
        ),
        "totals": [{"label": part.label, "count": totals[part.name]} for part in DELIVERY_SERIES],
        "disabled": list(WebhookEndpoint.objects.filter(enabled=False).order_by("-disabled_at")[:10]),
        "deliveries_url": reverse("admin:events_webhookdelivery_changelist"),
        "endpoints_url": reverse("admin:events_webhookendpoint_changelist"),
    }
