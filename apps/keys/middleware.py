from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from apps.keys.traffic import is_counted, traffic_buffer
from apps.keys.usage import usage_buffer
from apps.throttling.services import request_route, route_cost


class KeyUsageMiddleware:
    """Counts each request made with an API key (see apps.keys.usage)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        key = getattr(request, "api_key", None)
        if key is not None and key.pk is not None:
            state = getattr(request, "rate_limit", None)
            # A refused request (429) spent no credits.
            credits = 0 if response.status_code == 429 else (state.cost if state is not None else route_cost(request))
            try:
                usage_buffer.record(
                    key.pk,
                    status=response.status_code,
                    route=request_route(request),
                    credits=credits,
                    quota_refused=getattr(request, "quota_refused", False),
                )
            except DatabaseError:
                # Analytics must never fail the request that was already answered.
                pass
        return response


class TrafficMiddleware:
    """Counts every API request per day and credential, and its refusals by reason (see apps.keys.traffic).

    Placed outside RateLimitMiddleware, so that the 429s it answers itself are counted too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if is_counted(request):
            try:
                traffic_buffer.record(request, response)
            except DatabaseError:
                # Analytics must never fail the request that was already answered.
                pass
        return response
