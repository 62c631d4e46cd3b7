"""GET /metrics: Prometheus metrics, for monitoring networks and admin-scoped callers."""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from keeper.api.callers import IsStaffCaller, client_ip
from keeper.observability.metrics import exposition


@lru_cache(maxsize=4)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


def from_metrics_network(request: Request) -> bool:
    """The client IP (as the limits see it: X-Forwarded-For only from trusted proxies) is in
    KEEPER_METRICS_ALLOWED_NETWORKS."""
    try:
        address = ipaddress.ip_address(client_ip(request._request))
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.KEEPER_METRICS_ALLOWED_NETWORKS)))


class CanReadMetrics(BasePermission):
    """Monitoring networks, else staff and admin-scoped keys (401 without credentials, 403 without admin)."""

    message = "Only admin-scoped callers or KEEPER_METRICS_ALLOWED_NETWORKS may read the metrics."

    def has_permission(self, request: Request, view) -> bool:
        return from_metrics_network(request) or IsStaffCaller().has_permission(request, view)


class FirstRenderer(BaseContentNegotiation):
    """Errors are JSON whatever Accept says (Prometheus asks for text); the metrics pick their own format."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


class MetricsView(APIView):
    permission_classes = [CanReadMetrics]
    # A scrape spends no credits and takes no token of the global bucket (a drained bucket must not
    # blind monitoring); the limits (settings.REST_FRAMEWORK's throttles) still report the caller's pool.
    free_of_charge = True
    content_negotiation_class = FirstRenderer

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse:
        body, content_type = exposition(request.META.get("HTTP_ACCEPT"))
        return HttpResponse(body, content_type=content_type)
