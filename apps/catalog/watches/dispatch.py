"""Running a catalog query in-process as a caller would: the catalog view itself, through DRF's forced
authentication, so the same throttles (credit pools, daily quotas, the global bucket) and permissions
apply as to a request.

What a server-side re-run skips, and why: the middlewares (no client: no CORS, compression, request
log or X-RateLimit headers; per-key usage counters are the middleware's), the key's allowed IPs (no
client address: the key was checked from an allowed one when the watch was created) and the
authentication itself (the Caller is rebuilt by keeper.api.callers.load_caller, which applies a
key's status and endpoint restrictions as key_authenticate does).
"""

import io
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.core.handlers.wsgi import WSGIRequest
from django.urls import Resolver404, URLPattern, resolve

from keeper.api.callers import Caller

MAX_QUERY_LENGTH = 2000
# Not watchable: they answer about the caller's question, not the catalog (and cost an AI provider call).
AI_ROUTE_PREFIX = "ai-"


class QueryRefused(ValueError):
    """A query that is not a watchable catalog route; the message says why."""


@dataclass(frozen=True)
class Target:
    """A watchable query: its path, query string and route (the catalog URL name)."""

    path: str
    query_string: str
    route: str

    @property
    def query(self) -> str:
        return f"{self.path}?{self.query_string}" if self.query_string else self.path


@dataclass(frozen=True)
class Answer:
    """What the route answered: its status, its JSON body, and which throttle refused it (if one did)."""

    status: int
    body: Any
    throttled_by: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@cache
def _catalog_route_names() -> frozenset[str]:
    from apps.catalog import urls

    return frozenset(p.name for p in urls.urlpatterns if isinstance(p, URLPattern) and p.name)


def target_of(query: Any) -> Target:
    """The catalog route `query` names, or QueryRefused saying why it cannot be watched."""
    if not isinstance(query, str) or not query.startswith("/"):
        raise QueryRefused("A query is a catalog path starting with /, e.g. /servers?vendor=aws.")
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryRefused(f"A query has at most {MAX_QUERY_LENGTH} characters.")
    parts = urlsplit(query)
    if parts.scheme or parts.netloc or parts.fragment:
        raise QueryRefused("A query is a path with its query string only: no scheme, host or #fragment.")
    try:
        match = resolve(parts.path)
    except Resolver404:
        raise QueryRefused(f"{parts.path} is not a catalog route.") from None
    name = match.url_name or ""
    if name.startswith(AI_ROUTE_PREFIX):
        raise QueryRefused(f"{parts.path} is an AI assist route: its answers are not catalog data to watch.")
    if name not in _catalog_route_names():
        raise QueryRefused(f"{parts.path} is not a catalog route (watches re-run catalog queries only).")
    view_class = getattr(match.func, "view_class", None)
    if (
        view_class is None
        or "get" not in getattr(view_class, "http_method_names", ())
        or not hasattr(view_class, "get")
    ):
        raise QueryRefused(f"{parts.path} cannot be read with GET.")
    return Target(parts.path, parts.query, name)


def _request(target: Target, caller: Caller) -> WSGIRequest:
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": target.path,
            "QUERY_STRING": target.query_string,
            "SERVER_NAME": "keeper",
            "SERVER_PORT": "80",
            "HTTP_ACCEPT": "application/json",
            "REMOTE_ADDR": "",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
        }
    )
    request.resolver_match = resolve(target.path)
    # DRF's Request authenticates with these alone (rest_framework.request.ForcedAuthentication).
    request._force_auth_user = caller
    request._force_auth_token = caller.api_key
    if caller.api_key is not None:
        request.api_key = caller.api_key
    return request


def run_as(caller: Caller, target: Target) -> Answer:
    """The route's answer to `caller` now: its status and JSON body (an error body for 4xx)."""
    request = _request(target, caller)
    match = request.resolver_match
    response = match.func(request, *match.args, **match.kwargs)
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    content = b"".join(response.streaming_content) if response.streaming else response.content
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        body = {"detail": content[:200].decode(errors="replace")}
    throttle = getattr(request, "throttled_by", None)
    return Answer(response.status_code, body, throttle.__name__ if throttle is not None else None)
