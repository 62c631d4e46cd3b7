"""Reads for the key management API: who manages what, and usage analytics."""

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet, Sum
from django.utils import timezone

from apps.accounts.identity import Caller
from apps.accounts.services import memberships_sync
from apps.keys.choices import Scope
from apps.keys.models import ApiKey, KeyUsageDay
from apps.keys.services import Actor, owner_for_subject


@dataclass(frozen=True)
class KeyManager:
    """A caller of the management API: whose keys they see and how far they may go."""

    user: Any
    scope: str
    sees_all: bool
    actor: Actor

    def keys(self) -> QuerySet:
        return ApiKey.objects.visible_to(self.user, sees_all=self.sees_all).select_related("owner", "organization")

    def may(self, needed: str) -> bool:
        return Scope.covers(self.scope, needed)


def key_manager(caller: Caller, ip: str | None) -> KeyManager:
    if caller.auth_method == "api_key":
        key = caller.api_key
        # The owner's id and name are all the management API needs; no need to load the user row.
        owner = get_user_model()(pk=key.owner_id, username=key.owner_name)
        return KeyManager(owner, key.scope, key.scope == Scope.ADMIN, Actor(f"key:{key.masked}", ip))
    if caller.auth_method == "token":
        user = owner_for_subject(caller.user_id)
        memberships_sync(user, caller.organization_roles)
    else:
        user = get_user_model().objects.get(username=caller.user_id)
    scope = Scope.ADMIN if caller.is_staff else Scope.WRITE
    return KeyManager(user, scope, caller.is_staff, Actor(f"{caller.auth_method}:{caller.user_id}", ip))


def usage_summary(keys: QuerySet, days: int) -> dict[str, Any]:
    since = timezone.now().date() - timedelta(days=days - 1)
    rows = KeyUsageDay.objects.filter(key__in=keys, day__gte=since)
    per_day = list(
        rows.values("day")
        .annotate(
            requests=Sum("requests"), errors=Sum("errors"), rate_limited=Sum("rate_limited"), credits=Sum("credits")
        )
        .order_by("day")
    )
    endpoints: Counter = Counter()
    for counts in rows.values_list("endpoints", flat=True):
        endpoints.update(counts)
    totals = {name: sum(day[name] for day in per_day) for name in ("requests", "errors", "rate_limited", "credits")}
    return {
        "days": days,
        **totals,
        "average_per_day": round(totals["requests"] / days, 2),
        "top_endpoints": [{"route": route, "requests": n} for route, n in endpoints.most_common(10)],
        "per_day": per_day,
    }
