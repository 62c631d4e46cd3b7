"""Rate-limit decisions and configuration changes."""

import threading
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.http import HttpRequest
from django.urls import URLResolver, get_resolver

from apps.throttling.limiters import Decision, FallbackLimiters
from apps.throttling.models import GlobalRateLimit, RouteCost
from keeper.api.callers import Caller, client_ip

_limiters: FallbackLimiters | None = None
_limiters_lock = threading.Lock()


def limiters() -> FallbackLimiters:
    global _limiters
    if _limiters is None or _limiters.backend != settings.RATE_LIMIT_BACKEND:
        with _limiters_lock:
            if _limiters is None or _limiters.backend != settings.RATE_LIMIT_BACKEND:
                _limiters = FallbackLimiters(settings.RATE_LIMIT_BACKEND)
    return _limiters


def reset_limiters() -> None:
    global _limiters
    _limiters = None
    _route_costs.clear()


# --- Route costs ----------------------------------------------------------------


class _RouteCostCache:
    """Costs from the database, re-read every RATE_LIMIT_ROUTE_COST_TTL_SECONDS (staff edits apply within it)."""

    def __init__(self):
        self.costs: dict[str, int] = {}
        self.loaded_at = float("-inf")
        self.lock = threading.Lock()

    def get(self, route: str) -> int:
        if time.monotonic() - self.loaded_at >= settings.RATE_LIMIT_ROUTE_COST_TTL_SECONDS:
            with self.lock:
                self.costs = dict(RouteCost.objects.values_list("route", "cost"))
                self.loaded_at = time.monotonic()
        return self.costs.get(route, settings.RATE_LIMIT_DEFAULT_CREDIT_COST)

    def clear(self) -> None:
        self.loaded_at = float("-inf")


_route_costs = _RouteCostCache()


def request_route(request: HttpRequest) -> str:
    """The matched URL pattern, e.g. /server/<str:vendor>/<path:server>: costs match routes, not prefixes."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.route is None:
        return request.path
    return "/" + match.route.lstrip("^").rstrip("$")


def api_routes() -> list[str]:
    """Every API route as request_route() names it (what RouteCost and key endpoint patterns match)."""
    routes: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if not route.startswith(("admin/", "oidc/")):
                    walk(pattern.url_patterns, route)
            elif not route.startswith(("admin/", "oidc/")):
                routes.add("/" + route.lstrip("^").rstrip("$"))

    walk(get_resolver().url_patterns, "")
    return sorted(routes)


def route_cost(request: HttpRequest) -> int:
    return _route_costs.get(request_route(request))


def route_costs_changed() -> None:
    _route_costs.clear()


# --- Who pays -------------------------------------------------------------------


def credit_pool(request: HttpRequest, caller: Caller | None) -> tuple[str, int]:
    """The pool a request draws from: (key, credits per minute)."""
    if caller is None:
        return f"ip:{client_ip(request)}", settings.RATE_LIMIT_CREDITS_PER_MINUTE
    key = caller.pool_key or f"user:{caller.user_id}"
    return key, caller.credits_per_minute or settings.RATE_LIMIT_CREDITS_PER_MINUTE


def next_utc_midnight(now: datetime) -> datetime:
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def seconds_to_utc_midnight(now: datetime | None = None) -> int:
    """How long a per-UTC-day counter (a daily quota) has left."""
    now = now or datetime.now(UTC)
    return max(int((next_utc_midnight(now) - now).total_seconds()), 1)


def consume_credits(key: str, cost: int, limit: int, *, force: bool = False) -> Decision:
    return limiters().consume(key, cost, limit, force=force)


# --- The global bucket ----------------------------------------------------------


def global_limit() -> GlobalRateLimit:
    return GlobalRateLimit.current()


def _global_limit_values() -> tuple[float, int]:
    limit = global_limit()
    return limit.rate_limit, limit.rate_burst


def take_global_token() -> Decision:
    """A token of the global bucket. Its settings are read on every request (from Redis with the
    Redis backend, else from the database), so a change applies to the next request in every process."""
    return limiters().take(_global_limit_values)


def global_limit_update(*, rate_limit: float | None = None, rate_burst: int | None = None) -> GlobalRateLimit:
    limit = GlobalRateLimit.current()
    if rate_limit is not None:
        limit.rate_limit = rate_limit
    if rate_burst is not None:
        limit.rate_burst = rate_burst
    limit.full_clean()
    limit.save()
    limiters().configuration_changed()
    return limit
