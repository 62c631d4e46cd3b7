from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from apps.throttling import logins, services
from apps.throttling.throttles import GlobalTokenBucketThrottle, RateLimitState, over_limit_detail
from keeper.api.callers import caller_of
from keeper.api.exceptions import error_body
from keeper.observability import metrics


class RateLimitMiddleware:
    """X-RateLimit-* headers on every response, the 401 penalty, limits for unknown URLs and the admin's
    POSTs, and the answer to a refused sign-in (apps/throttling/logins.py).

    Requests to URLs with no view never reach the DRF throttles; they are charged
    the default cost here, so probing for endpoints is not free. Nor do the admin's
    views: a POST to them (the login form's among them, each a password hash) is charged
    here as an API request is, to the caller's pool at its route's cost, after a token
    of the global bucket unless the caller is staff.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.RATE_LIMIT_ENABLED and not _resolves(request):
            refusal = self._charge_unknown_url(request)
            if refusal is not None:
                return refusal
        response = self.get_response(request)
        refused_seconds = getattr(request, logins.REFUSED_ATTRIBUTE, None)
        if refused_seconds is not None:
            response = logins.login_refused_response(refused_seconds)
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

    def process_view(self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict):
        match = request.resolver_match
        if (
            settings.RATE_LIMIT_ENABLED
            and request.method not in ("GET", "HEAD", "OPTIONS")
            and match is not None
            and "admin" in match.app_names
        ):
            return self._charge_admin_post(request)
        return None

    def _charge_unknown_url(self, request: HttpRequest) -> HttpResponse | None:
        key, limit = services.credit_pool(request, None)
        cost = settings.RATE_LIMIT_DEFAULT_CREDIT_COST
        decision = services.consume_credits(key, cost, limit)
        request.rate_limit = RateLimitState(limit, cost, decision.remaining, key)
        if decision.allowed:
            return None
        metrics.throttle_refused("pool")
        return _throttled("Credit limit exceeded.", decision.retry_after, request.rate_limit)

    def _charge_admin_post(self, request: HttpRequest) -> HttpResponse | None:
        caller = caller_of(request.user)
        key, limit = services.credit_pool(request, caller)
        cost = services.route_cost(request)
        if caller is None or not caller.is_staff:
            bucket = services.take_global_token()
            if not bucket.allowed:
                metrics.throttle_refused("global_bucket")
                request.rate_limit = RateLimitState(limit, cost, services.consume_credits(key, 0, limit).remaining, key)
                return _throttled(GlobalTokenBucketThrottle.detail, bucket.retry_after, request.rate_limit)
        decision = services.consume_credits(key, cost, limit)
        request.rate_limit = RateLimitState(limit, cost, decision.remaining, key)
        if decision.allowed:
            return None
        metrics.throttle_refused("pool")
        over_limit = over_limit_detail(request.rate_limit)
        if over_limit is not None:
            return _throttled(over_limit, None, request.rate_limit)
        return _throttled("Credit limit exceeded.", decision.retry_after, request.rate_limit)


def _throttled(message: str, retry_after: float | None, state: RateLimitState) -> JsonResponse:
    """A 429 as the DRF throttles answer it (without Retry-After when no wait helps)."""
    if retry_after is None:
        response = JsonResponse(error_body(message, "throttled"), status=429)
    else:
        wait = max(int(retry_after + 0.999), 1)
        response = JsonResponse(error_body(f"{message} Expected available in {wait} seconds.", "throttled"), status=429)
        response["Retry-After"] = str(wait)
    response["X-RateLimit-Limit"] = str(state.limit)
    response["X-RateLimit-Cost"] = str(state.cost)
    response["X-RateLimit-Remaining"] = str(state.remaining)
    return response


def _resolves(request: HttpRequest) -> bool:
    try:
        resolve(request.path_info)
    except Resolver404:
        return False
    return True
