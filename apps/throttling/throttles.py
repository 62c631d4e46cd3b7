"""DRF throttles: the global token bucket, then the caller's credit pool.

A view marked `free_of_charge` (GET /metrics: a drained bucket or pool must not blind monitoring)
takes no token of the bucket, spends no credits and counts against no daily quota; its answer still
reports the caller's pool, at a cost of 0.
"""

from dataclasses import dataclass

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.throttling import services
from keeper.api.callers import Caller, IsStaffCaller, caller_of
from keeper.observability import metrics


@dataclass
class RateLimitState:
    """What the response headers report (X-RateLimit-*)."""

    limit: int
    cost: int
    remaining: int
    key: str


class GlobalTokenBucketThrottle(BaseThrottle):
    """All callers together: `rate_limit` requests/s with `rate_burst`, set by staff at run time.

    Staff callers (IsStaffCaller: staff users and tokens, admin-scoped keys) and views marked
    `global_bucket_exempt` (GET/PATCH /config) neither take a token nor can be refused: a bucket
    set too small must never lock out the people and the endpoint that set it. They take no token
    rather than one that is never refused, so that a staff script cannot drain the bucket and
    starve everyone else; staff still pay credits from their own pool (CreditThrottle).
    """

    detail = "The API is receiving too many requests overall; slow down."

    def allow_request(self, request: Request, view) -> bool:
        if not settings.RATE_LIMIT_ENABLED:
            return True
        if (
            getattr(view, "global_bucket_exempt", False)
            or getattr(view, "free_of_charge", False)
            or IsStaffCaller().has_permission(request, view)
        ):
            return True
        self.decision = services.take_global_token()
        if not self.decision.allowed:
            metrics.throttle_refused("global_bucket")
            # Refused before any credit was spent: report the caller's pool as it stands.
            caller = caller_of(getattr(request, "_user", None))
            key, limit = services.credit_pool(request._request, caller)
            remaining = services.consume_credits(key, 0, limit).remaining
            cost = services.route_cost(request._request)
            request._request.rate_limit = RateLimitState(limit, cost, remaining, key)
        return self.decision.allowed

    def wait(self) -> float:
        return self.decision.retry_after


def over_limit_detail(state: RateLimitState) -> str | None:
    """The refusal of a request that costs more than its pool holds in a minute (None if it does not):
    no wait makes it fit, so its 429 has no Retry-After (as the newest Spare Cores API)."""
    if state.cost <= state.limit:
        return None
    return (
        f"Credit limit exceeded: request cost ({state.cost} credits) is higher than the credit limit "
        f"({state.limit} credits per minute)."
    )


class CreditThrottle(BaseThrottle):
    """Each request costs its route's credits from the caller's pool of credits per rolling minute."""

    detail = "Credit limit exceeded: this request costs more credits than remain in your pool for this minute."
    never_fits = False

    def _refused(self, request: Request) -> None:
        metrics.throttle_refused("pool")
        state = getattr(request._request, "rate_limit", None)
        over_limit = over_limit_detail(state) if state is not None else None
        if over_limit is not None:
            self.detail, self.never_fits = over_limit, True

    def allow_request(self, request: Request, view) -> bool:
        caller = caller_of(getattr(request, "_user", None))
        if getattr(view, "free_of_charge", False):
            if settings.RATE_LIMIT_ENABLED:
                key, limit = services.credit_pool(request._request, caller)
                remaining = services.consume_credits(key, 0, limit).remaining
                request._request.rate_limit = RateLimitState(limit, 0, remaining, key)
            return True
        if caller is not None and (caller.ancestor_pools or caller.ancestor_quotas):
            return self._allow_with_ancestors(request, caller)
        # A key's own pool is a limit its owner asked for: it applies even with RATE_LIMIT_ENABLED off.
        if not settings.RATE_LIMIT_ENABLED and not (caller is not None and caller.pool_requested):
            return True
        key, limit = services.credit_pool(request._request, caller)
        cost = services.route_cost(request._request)
        if caller is not None and caller.daily_quota and caller.quota_key:
            # A key with a daily quota: pool and quota in one round trip; DailyQuotaThrottle reads the verdict.
            self.decision, quota = services.limiters().consume_with_quota(
                key, cost, limit, caller.quota_key, caller.daily_quota, services.seconds_to_utc_midnight()
            )
            request._request.quota_decision = quota
        else:
            self.decision = services.consume_credits(key, cost, limit)
        request._request.rate_limit = RateLimitState(limit, cost, self.decision.remaining, key)
        if not self.decision.allowed:
            self._refused(request)
        return self.decision.allowed

    def _allow_with_ancestors(self, request: Request, caller: Caller) -> bool:
        """A key created by a key: its request is charged to its own pool and quota and to those of every
        key above it, all at once (or to none), so that its siblings together stay within their parent's."""
        key, limit = services.credit_pool(request._request, caller)
        cost = services.route_cost(request._request)
        pools: dict[str, int] = {}
        if settings.RATE_LIMIT_ENABLED or caller.pool_requested:
            pools[key] = limit
        for pool, size in caller.ancestor_pools:
            pools.setdefault(pool, size)
        own_quota = [(caller.quota_key, caller.daily_quota)] if caller.daily_quota and caller.quota_key else []
        quotas = own_quota + list(caller.ancestor_quotas)
        charged = list(pools.items())
        chain = services.limiters().consume_chain(charged, cost, quotas, services.seconds_to_utc_midnight())
        # DailyQuotaThrottle reads the quotas' verdict (allowed, and nothing counted, when a pool refused).
        request._request.quota_decision = chain.quota
        if chain.quota_index >= 0:
            request._request.quota_binding = (quotas[chain.quota_index][1], chain.quota_index >= len(own_quota))
        self.decision = chain.credit
        if chain.pool >= 0:
            # The pool that refused, else the one with the least left: what the caller can still spend.
            key, limit = charged[chain.pool]
            request._request.rate_limit = RateLimitState(limit, cost, self.decision.remaining, key)
        if not self.decision.allowed:
            self._refused(request)
        return self.decision.allowed

    def wait(self) -> float | None:
        return None if self.never_fits else self.decision.retry_after
