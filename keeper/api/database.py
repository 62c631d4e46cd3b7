"""A database that cannot be reached is a JSON 503 with Retry-After: never a 500, an HTML page or a hang.

While PostgreSQL restarts (or the network to it fails), every query raises OperationalError or
InterfaceError, from a view, an authentication class or a middleware (limits and keys run before
the view). Views' errors reach DatabaseUnavailableMiddleware.process_exception; a middleware's
errors never reach another middleware (Django turns them into a response where they are raised),
so keeper.api.views.server_error, the 500 handler, answers those the same way.

Recovery needs no restart: Django closes a connection whose query failed at the end of the request,
and with CONN_HEALTH_CHECKS checks a persistent connection before a request's first query, so the
first request after the database is back connects anew.
"""

import logging
import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from keeper.api.exceptions import error_body
from keeper.observability import metrics
from keeper.writes import is_lock_timeout

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
LOG_EVERY_SECONDS = 60.0

_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
try:
    import psycopg

    # Raised as they are (not wrapped by Django) where code uses the driver directly.
    _OUTAGE_ERRORS += (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # SQLite-only installation
    pass

_last_warning = float("-inf")


def is_database_outage(exc: BaseException | None) -> bool:
    """Whether `exc` says the database cannot be used now (connection refused or lost, server shutting
    down, locked), as opposed to a bug in a query."""
    return isinstance(exc, _OUTAGE_ERRORS)


def database_unavailable_response(exc: BaseException) -> JsonResponse:
    """The 503 for a database outage; logged here at most once a minute per process, without a traceback."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= LOG_EVERY_SECONDS:
        _last_warning = now
        # The class only: a driver's message names hosts and users.
        logger.warning("Database unavailable (%s): answering 503 until it is back.", exc.__class__.__name__)
    detail = "The database is unavailable; try again later."
    if is_lock_timeout(exc):
        # Another connection (a catalog sync) holds the lock longer than a request may wait (keeper/writes.py).
        metrics.database_lock_timeout("unavailable")
        detail = "The database is busy with another write; try again later."
    response = JsonResponse(error_body(detail, "database_unavailable"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # Django would log every such request as a server error with its traceback.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class DatabaseUnavailableMiddleware:
    """Turns a database outage raised by a view into the JSON 503 (see the module docstring for middleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_outage(exception):
            return database_unavailable_response(exception)
        return None
