"""The keys' section of the staff overview (keeper.admin; registered by apps.keys.apps).

Requests and credits per day by credential (TrafficDay: every API request, API keys, capability
tokens, OAuth tokens, admin sessions and anonymous callers), refusals by reason, the keys that
spent the most credits (KeyUsageDay: a key's own requests and its capability tokens'), and the keys
expiring soon. A part is shown only to staff who may view the rows behind it. Drawn by
templates/admin/keys/staff_overview.html, in about ten small queries.
"""

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.urls import reverse

from apps.keys.choices import Credential, Refusal
from apps.keys.models import ApiKey, KeyUsageDay, TrafficDay
from keeper.admin import OVERVIEW_DAYS
from keeper.charts import Series, stacked_bar_chart

TOP_CALLERS = 10
EXPIRING_SHOWN = 10
CREDENTIAL_SERIES = [
    Series(Credential.API_KEY, "API keys", "#417690"),
    Series(Credential.CAPABILITY_TOKEN, "capability tokens", "#79aec8"),
    Series(Credential.TOKEN, "OAuth tokens", "#5b8c5a"),
    Series(Credential.SESSION, "admin sessions", "#a07cc5"),
    Series(Credential.ANONYMOUS, "anonymous", "#999999"),
]
REFUSAL_COLUMNS = [refusal.value for refusal in Refusal]


def _title(unit: str) -> Any:
    def title(day: date, row: Mapping[str, int]) -> str:
        parts = ", ".join(f"{part.label} {row[part.name]:,}" for part in CREDENTIAL_SERIES if row.get(part.name))
        return f"{day.isoformat()}: {sum(row.values()):,} {unit} ({parts})"

    return title


def traffic(today: date, days: int = OVERVIEW_DAYS) -> dict[str, Any]:
    """Requests and credits per day by credential (two charts), totals per credential, refusals by reason."""
    first = today - timedelta(days=days - 1)
    rows = TrafficDay.objects.filter(day__gte=first, day__lte=today).values(
        "day", "credential", "requests", "errors", "credits", *REFUSAL_COLUMNS
    )
    requests: dict[date, dict[str, int]] = defaultdict(dict)
    credits: dict[date, dict[str, int]] = defaultdict(dict)
    totals: dict[str, Counter] = defaultdict(Counter)
    refusals: Counter = Counter()
    for row in rows:
        requests[row["day"]][row["credential"]] = row["requests"]
        credits[row["day"]][row["credential"]] = row["credits"]
        totals[row["credential"]].update({name: row[name] for name in ("requests", "errors", "credits")})
        refusals.update({name: row[name] for name in REFUSAL_COLUMNS})

    def chart(values: dict, unit: str) -> dict[str, Any]:
        return stacked_bar_chart(
            values,
            CREDENTIAL_SERIES,
            days=days,
            today=today,
            title=_title(unit),
            y_title=f"{unit} per day",
            chart_id=f"overview-{unit}",
        )

    return {
        "first": first,
        "last": today,
        "requests_chart": chart(requests, "requests"),
        "credits_chart": chart(credits, "credits"),
        "by_credential": [
            {"label": series.label, "credential": series.name, **totals[series.name]}
            for series in CREDENTIAL_SERIES
            if totals[series.name]["requests"]
        ],
        "requests": sum(total["requests"] for total in totals.values()),
        "credits": sum(total["credits"] for total in totals.values()),
        "refusals": [
            {"reason": refusal.value, "label": refusal.label, "count": refusals[refusal.value]} for refusal in Refusal
        ],
        "refused": sum(refusals.values()),
    }


def top_callers(today: date, days: int = OVERVIEW_DAYS, limit: int = TOP_CALLERS) -> list[dict[str, Any]]:
    """The keys that spent the most credits (their capability tokens' included), most first."""
    first = today - timedelta(days=days - 1)
    spent = list(
        KeyUsageDay.objects.filter(day__gte=first, day__lte=today)
        .values("key")
        .annotate(credits=Sum("credits"), requests=Sum("requests"))
        .filter(credits__gt=0)
        .order_by("-credits", "key")[:limit]
    )
    keys = ApiKey.objects.select_related("owner", "organization").in_bulk([row["key"] for row in spent])
    return [{**row, "key": keys[row["key"]], "url": _change_url(keys[row["key"]])} for row in spent]


def keys_expiring(now: datetime, limit: int = EXPIRING_SHOWN) -> dict[str, Any]:
    soon = ApiKey.objects.expiring_within(settings.KEEPER_KEY_EXPIRY_WARNING_DAYS, now).select_related("owner")
    return {
        "days": settings.KEEPER_KEY_EXPIRY_WARNING_DAYS,
        "count": soon.count(),
        "keys": [{"key": key, "url": _change_url(key)} for key in soon.order_by("expires_at", "id")[:limit]],
        "url": reverse("admin:keys_apikey_changelist") + "?expiry=soon",
    }


def _change_url(key: ApiKey) -> str:
    return reverse("admin:keys_apikey_change", args=[key.pk])


def keys_overview(user: Any, now: datetime) -> dict[str, Any] | None:
    """The parts of the keys' section `user` may see (by their view permissions), or None for none."""
    today = now.date()
    overview: dict[str, Any] = {}
    if user.has_perm("keys.view_trafficday"):
        overview["traffic"] = traffic(today)
        overview["traffic_url"] = reverse("admin:keys_trafficday_changelist")
    if user.has_perm("keys.view_keyusageday"):
        overview["top_callers"] = top_callers(today)
        overview["usage_url"] = reverse("admin:keys_keyusageday_changelist")
    if user.has_perm("keys.view_apikey"):
        overview["expiring"] = keys_expiring(now)
    return overview or None
