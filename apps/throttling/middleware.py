from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.throttling import services
from apps.throttling.throttles import RateLimitState


class RateLimitMiddleware:
    """Adds X-RateLimit-* headers, and charges the 401 penalty (as the Spare Cores API does)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        state: RateLimitState | None = getattr(request, "rate_limit", None)
        if response.status_code == 401 and settings.RATE_LIMIT_ENABLED and settings.RATE_LIMIT_UNAUTHORIZED_PENALTY:
            key, limit = services.credit_pool(request, None)
            penalty = settings.RATE_LIMIT_UNAUTHORIZED_PENALTY
            decision = services.consume_credits(key, penalty, limit, force=True)
            cost = (state.cost if state else 0) + penalty
            state = RateLimitState(limit, cost, decision.remaining, key)
        if state is not None:
            response["X-RateLimit-Limit"] = str(state.limit)
            response["X-RateLimit-Cost"] = str(state.cost)
            response["X-RateLimit-Remaining"] = str(state.remaining)
        return response
