"""A key's daily quota: credits per UTC day, counted by the rate-limit backend (memory or Redis)."""

from datetime import UTC, datetime, timedelta

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.accounts.identity import caller_of
from apps.throttling import services


def next_utc_midnight(now: datetime) -> datetime:
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def seconds_to_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    return max(int((next_utc_midnight(now) - now).total_seconds()), 1)


def quota_counter_key(key, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"quota:{key.key_id}:{now:%Y%m%d}"


class DailyQuotaThrottle(BaseThrottle):
    """429 once a key has spent its `daily_quota` credits today, saying when the quota resets."""

    def allow_request(self, request: Request, view) -> bool:
        caller = caller_of(getattr(request, "_user", None))
        key = caller.api_key if caller is not None else None
        if key is None or not key.daily_quota:
            return True
        now = datetime.now(UTC)
        self.seconds_left = seconds_to_midnight(now)
        cost = services.route_cost(request._request)
        decision = services.limiters().add_within(quota_counter_key(key, now), cost, key.daily_quota, self.seconds_left)
        resets_at = next_utc_midnight(now)
        self.detail = f"Daily quota of {key.daily_quota} credits used up; it resets at {resets_at:%Y-%m-%dT%H:%M:%SZ}."
        return decision.allowed

    def wait(self) -> float:
        return self.seconds_left
