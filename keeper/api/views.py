"""JSON replacements for Django's HTML error pages (URLs outside DRF views)."""

import sys

from django.http import HttpRequest, JsonResponse

from keeper.api.database import database_unavailable_response, is_database_outage
from keeper.api.exceptions import error_body


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("Bad request.", "bad_request"), status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        error_body("You do not have permission to perform this action.", "permission_denied"), status=403
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(f"No endpoint at {request.path}.", "not_found"), status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    # Called while the uncaught exception is being handled: a database outage raised in a
    # middleware (which no other middleware sees) is a 503, as it is from a view.
    exc = sys.exc_info()[1]
    if is_database_outage(exc):
        return database_unavailable_response(exc)
    return JsonResponse(error_body("Internal server error.", "server_error"), status=500)
