from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from apps.throttling import services
from apps.throttling.throttles import RateLimitState
from keeper.api.exceptions import error_body
from keeper.observability import metrics


class RateLimitMiddleware:
    """X-RateLimit-* headers on every response, the 401 penalty, and limits for unknown URLs.

    Requests to URLs with no view never reach the DRF throttles; they are charged
    the default cost here, so probing for endpoints is not free.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.RATE_LIMIT_ENABLED and not _resolves(request):
            refusal = self._charge_unknown_url(request)
            if refusal is not None:
                return refusal
        response = self.get_response(request)
        state: RateLimitState | None = getattr(request, "rate_limit", None)
        if response.status_code == 401 and settings.RATE_LIMIT_ENABLED and settings.RATE_LIMIT_UNAUTHORIZED_PENALTY:
            key, limit = services.credit_pool(request, None)
            penalty = settings.RATE_LIMIT_UNAUTHORIZED_PENALTY
            decision = services.consume_credits(key, penalty, limit, force=True)
            metrics.unauthorized_penalty_charged()
            cost = (state.cost if state else 0) + penalty
            state = RateLimitState(limit, cost, decision.remaining, key)
        if state is not None:
            response["X-RateLimit-Limit"] = str(state.limit)
            response["X-RateLimit-Cost"] = str(state.cost)
            response["X-RateLimit-Remaining"] = str(state.remaining)
        return response

    def _charge_unknown_url(self, request: HttpRequest) -> HttpResponse | None:
        key, limit = services.credit_pool(request, None)
        cost = settings.RATE_LIMIT_DEFAULT_CREDIT_COST
        decision = services.consume_credits(key, cost, limit)
        request.rate_limit = RateLimitState(limit, cost, decision.remaining, key)
        if decision.allowed:
            return None
        metrics.throttle_refused("pool")
        wait = max(int(decision.retry_after + 0.999), 1)
        response = JsonResponse(
            error_body(f"Credit limit exceeded. Expected available in {wait} seconds.", "throttled"), status=429
        )
        response["Retry-After"] = str(wait)
        response["X-RateLimit-Limit"] = str(limit)
        response["X-RateLimit-Cost"] = str(cost)
        response["X-RateLimit-Remaining"] = str(decision.remaining)
        return response


def _resolves(request: HttpRequest) -> bool:
    try:
        resolve(request.path_info)
    except Resolver404:
        return False
    return True
