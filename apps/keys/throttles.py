"""A key's daily quota: credits per UTC day, counted where every process and a restart see it.

In Redis with RATE_LIMIT_BACKEND=redis, else (and while Redis is down) in the database
(apps.throttling QuotaUsage); never in one process's memory, which N workers would multiply.
"""

from datetime import UTC, datetime

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.throttling import services
from apps.throttling.services import next_utc_midnight, seconds_to_utc_midnight
from keeper.api.callers import caller_of
from keeper.observability import metrics


def quota_counter_key(key, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"quota:{key.key_id}:{now:%Y%m%d}"


class DailyQuotaThrottle(BaseThrottle):
    """429 once a key has spent its `daily_quota` credits today, saying when the quota resets.

    When CreditThrottle ran for the key it already counted the quota in the same round trip
    (request.quota_decision); otherwise (limits off, no pool of its own) it is counted here.
    """

    def allow_request(self, request: Request, view) -> bool:
        if getattr(view, "free_of_charge", False):
            return True  # nothing to count (apps/throttling/throttles.py)
        caller = caller_of(getattr(request, "_user", None))
        if caller is None or not ((caller.daily_quota and caller.quota_key) or caller.ancestor_quotas):
            return True
        now = datetime.now(UTC)
        self.seconds_left = seconds_to_utc_midnight(now)
        decision = getattr(request._request, "quota_decision", None)
        if decision is None:
            cost = services.route_cost(request._request)
            decision = services.limiters().add_within(caller.quota_key, cost, caller.daily_quota, self.seconds_left)
        resets_at = next_utc_midnight(now)
        # Set by CreditThrottle for a key created by a key: the quota that refused, and whether it is a key's above.
        quota, above = getattr(request._request, "quota_binding", (caller.daily_quota, False))
        whose = "The daily quota of a key above this one (shared by the keys it created)" if above else "Daily quota"
        self.detail = f"{whose} of {quota} credits used up; it resets at {resets_at:%Y-%m-%dT%H:%M:%SZ}."
        if not decision.allowed:
            metrics.throttle_refused("quota")
            # The key's own quota refused: its usage flush records key.quota_exhausted (apps/keys/usage.py).
            request._request.quota_refused = not above
        return decision.allowed

    def wait(self) -> float:
        return self.seconds_left
