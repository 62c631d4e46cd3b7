"""Reads for the key management API: who manages what, and usage analytics."""

from collections import Counter
from datetime import timedelta
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet, Sum
from django.utils import timezone

from apps.accounts.identity import idp_label
from apps.accounts.models import Membership
from apps.accounts.services import memberships_sync
from apps.keys.choices import Scope
from apps.keys.models import ApiKey, KeyUsageDay
from apps.keys.policy import Actor, Ceiling, NotAllowed, Rank
from apps.keys.services import owner_for_subject
from keeper.api.callers import Caller


class KeyManager:
    """A caller of the management API: whose keys they see, and the Actor the key policy judges."""

    def __init__(self, user: Any, scope: str, sees_all: bool, *, name: str, ip: str | None, ceiling: Ceiling):
        self.user, self.scope, self.sees_all = user, scope, sees_all
        self._name, self._ip, self._ceiling = name, ip, ceiling

    def keys(self) -> QuerySet:
        return ApiKey.objects.visible_to(self.user, sees_all=self.sees_all).select_related("owner", "organization")

    def may(self, needed: str) -> bool:
        return Scope.covers(self.scope, needed)

    @cached_property
    def actor(self) -> Actor:
        # Built on first write only: reads need no organization memberships.
        admin_of = Membership.objects.filter(user_id=self.user.pk, role=Membership.Role.ADMIN).values_list(
            "organization_id", flat=True
        )
        return Actor(
            self._name,
            self._ip,
            standing=Rank.STAFF if self.sees_all else Rank.OWNER,
            user_id=self.user.pk,
            scope=self.scope,
            ceiling=self._ceiling,
            admin_of=frozenset(admin_of),
        )


def key_manager(caller: Caller, ip: str | None) -> KeyManager:
    """The caller as the key policy sees it: standing, scope, and a ceiling from its own credential."""
    if caller.auth_method == "api_key":
        key = caller.api_key
        # The owner's id and name are all the management API needs; no need to load the user row.
        owner = get_user_model()(pk=key.owner_id, username=key.owner_name)
        staff = key.scope == Scope.ADMIN
        return KeyManager(owner, key.scope, staff, name=f"key:{key.masked}", ip=ip, ceiling=Ceiling.of_key(key))
    if caller.auth_method == "token":
        user = owner_for_subject(caller.user_id)
        memberships_sync(user, caller.organization_roles)
    else:
        user = get_user_model().objects.get(username=caller.user_id)
    if not user.is_active:
        # A key of theirs is refused at authentication already; a token or session is refused here.
        raise NotAllowed("Your account is deactivated: it cannot manage API keys.")
    scope = Scope.ADMIN if caller.is_staff else Scope.WRITE
    ceiling = Ceiling.of_caller(scope, caller.credits_per_minute)
    # A token's subject may be thousands of characters: the audit's actor column holds 200.
    who = idp_label(caller.user_id) if caller.auth_method == "token" else caller.user_id
    return KeyManager(user, scope, caller.is_staff, name=f"{caller.auth_method}:{who}", ip=ip, ceiling=ceiling)


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
