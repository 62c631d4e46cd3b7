"""Catalog responses are pure functions of the request and the catalog version: cache them, and let clients too.

A repeated search on an unchanged catalog returns the stored bytes instead of filtering,
serializing and rendering again (bench/README.md has the figures). Authentication and limits
still run for every request: the cache sits inside the view. A new sync changes the version,
so no response outlives its catalog.

For HTTP caches: `ETag` from the catalog version and the request (a `304` on `If-None-Match`, after
the caller's limits were applied), and `Cache-Control` by kind of data: public for what anyone may
read, private for answers only authenticated callers get; shorter for prices. Errors are never
cached (keeper.api.middleware.CacheControlMiddleware marks them no-store).

Whether an answer is for authenticated callers only can depend on the query (an anonymous caller may
name fewer places): a view says so for each request with `answer_needs_caller(request)`. Such answers
are private, so that a shared cache never hands them to an anonymous caller.
"""

import hashlib
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import parse_etags, patch_vary_headers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.selectors import catalog_version
from keeper.api.renderers import ORJSONRenderer

CACHED_HEADERS = ("X-Total-Count",)
CATALOG, PRICES = "catalog", "prices"
# The request headers that name a caller (a session's cookie is read only by the admin's own pages).
CALLER_HEADERS = ("Authorization", "X-API-Key")


def cache_control(kind: str, *, private: bool) -> str:
    max_age = settings.KEEPER_PRICES_MAX_AGE_SECONDS if kind == PRICES else settings.KEEPER_CATALOG_MAX_AGE_SECONDS
    audience = "private" if private else "public"
    return f"{audience}, max-age={max_age}, stale-while-revalidate={max_age * 6}"


def cached_catalog_response(get: Callable | None = None, *, kind: str = CATALOG, private: bool = False) -> Callable:
    """Decorate a catalog view's `get`; `private=True` for answers that need an authenticated caller."""

    def decorate(get: Callable) -> Callable:
        @wraps(get)
        def wrapper(view, request: Request, *args, **kwargs):
            version = catalog_version()
            if version is None:
                return get(view, request, *args, **kwargs)
            path = request._request.get_full_path()
            digest = hashlib.sha256(f"{version}\n{path}".encode()).hexdigest()
            etag = f'W/"{digest[:32]}"'
            for_callers_only = private or _answer_needs_caller(view, request)
            headers = {"ETag": etag, "Cache-Control": cache_control(kind, private=for_callers_only)}
            if etag in parse_etags(request.META.get("HTTP_IF_NONE_MATCH", "")):
                not_modified = HttpResponseNotModified()
                for name, value in headers.items():
                    not_modified[name] = value
                if for_callers_only:
                    patch_vary_headers(not_modified, CALLER_HEADERS)
                return not_modified
            response = _rendered(get, view, request, args, kwargs, "response:" + digest)
            if response.status_code == 200:
                for name, value in headers.items():
                    response[name] = value
                if for_callers_only:
                    patch_vary_headers(response, CALLER_HEADERS)
            return response

        return wrapper

    return decorate(get) if get is not None else decorate


def _answer_needs_caller(view, request: Request) -> bool:
    """Whether the view says an anonymous caller would be refused this request (see the module docstring)."""
    needs_caller = getattr(view, "answer_needs_caller", None)
    return bool(needs_caller is not None and needs_caller(request))


def _rendered(get: Callable, view, request: Request, args, kwargs, key: str):
    if not settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS:
        return get(view, request, *args, **kwargs)
    cache = caches["catalog"]
    stored = cache.get(key)
    if stored is None:
        response = get(view, request, *args, **kwargs)
        if response.status_code != 200 or not isinstance(response, Response):
            return response
        body = ORJSONRenderer().render(response.data)
        stored = (body, {name: response[name] for name in CACHED_HEADERS if name in response})
        if len(body) <= settings.KEEPER_CATALOG_RESPONSE_CACHE_MAX_BYTES:
            cache.set(key, stored, settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS)
    body, headers = stored
    response = HttpResponse(body, content_type=ORJSONRenderer.media_type)
    for name, value in headers.items():
        response[name] = value
    return response
