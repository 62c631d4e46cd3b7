"""One log line (logger `keeper.requests`), an `X-Request-ID` and the request metrics, per request.

First in settings.MIDDLEWARE, so it sees every answer as it leaves: CORS and gzip applied, 401s
and 429s of the limits and keys middleware, the response cache's fast paths, errors of any
kind. Streaming answers (GET /keys/watch, static files) are logged when they end, with their
real duration and size.
"""

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils.functional import SimpleLazyObject, empty

from keeper.api.callers import caller_of, client_ip
from keeper.observability import metrics
from keeper.observability.logging import current_request_id

logger = logging.getLogger("keeper.requests")

REQUEST_ID_HEADER = "X-Request-ID"
# What an incoming id may be to be kept: a token safe in headers, logs and label-free metrics.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def request_id_for(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is 1-128 characters of [A-Za-z0-9._-], else a new uuid4 (hex)."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def route_of(request: HttpRequest) -> str | None:
    """The URL pattern that serves the path, as OpenAPI writes it (`/server/{vendor}/{server}`); None if none.

    Views set request.resolver_match; answers given before URL resolution (an unknown URL refused
    by the limits, a NUL byte) resolve here, so a real route is never reported as unmatched.
    """
    match: ResolverMatch | None = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
    if match.route is None:
        return None
    return "/" + _CONVERTER.sub(r"{\1}", match.route.lstrip("^").rstrip("$"))


def caller_fields(request: HttpRequest) -> tuple[str, str | None]:
    """(kind, id) of the caller: anonymous; api_key and the key's lookup id; token and its subject;
    session and the user name. Never a secret."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        # Django's session user, never asked for by a view: reading it now would load the
        # session (a query) for nothing. DRF views replace it with the caller they authenticated.
        if user._wrapped is empty:
            return "anonymous", None
        user = user._wrapped
    caller = caller_of(user)
    if caller is None:
        return "anonymous", None
    if caller.api_key is not None:
        return caller.auth_method, caller.api_key.key_id
    return caller.auth_method, caller.user_id


def _header_int(response: HttpResponse, name: str) -> int | None:
    value = response.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class RequestObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request.request_id = request_id_for(request.META.get("HTTP_X_REQUEST_ID"))
        token = current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            # gunicorn's worker runs every request in one context: the id must not outlive its request.
            current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request.request_id
        if response.streaming:
            response.streaming_content = _CountingStream(
                response.streaming_content, lambda size: self._record(request, response, started, size)
            )
        else:
            self._record(request, response, started, 0 if request.method == "HEAD" else len(response.content))
        return response

    def _record(self, request: HttpRequest, response: HttpResponse, started: float, size: int) -> None:
        seconds = time.perf_counter() - started
        route = route_of(request)
        status = response.status_code
        kind, caller_id = caller_fields(request)
        cost = _header_int(response, "X-RateLimit-Cost")
        fields: dict[str, Any] = {
            "request_id": request.request_id,
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "response_bytes": size,
            "caller_kind": kind,
            "caller_id": caller_id,
            # A refused request (429) spent nothing, whatever its route costs (as apps.keys.usage counts).
            "credits_charged": None if cost is None else (0 if status == 429 else cost),
            "credits_remaining": _header_int(response, "X-RateLimit-Remaining"),
            "credits_limit": _header_int(response, "X-RateLimit-Limit"),
            "client_ip": client_ip(request),
        }
        metrics.request_observed(route=route, method=request.method or "", status=status, seconds=seconds)
        logger.info("%s %s %s", request.method, request.path, status, extra={"fields": fields})


class _CountingStream:
    """Passes a streaming body through, counting its bytes; reports once when the server closes it."""

    def __init__(self, chunks: Iterable[bytes], on_close: Callable[[int], None]):
        self._chunks = iter(chunks)
        self._on_close = on_close
        self._size = 0
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self._size += len(chunk)
        return chunk

    def close(self) -> None:
        # Django's response.close() calls this (it registers the close of its streaming content).
        if self._closed:
            return
        self._closed = True
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        self._on_close(self._size)
