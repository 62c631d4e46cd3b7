"""Catalog responses are pure functions of the request, the caller's audience and the catalog version:
cache them, and let clients too.

A repeated search on an unchanged catalog returns the stored bytes instead of filtering,
serializing and rendering again (bench/README.md has the figures). Authentication and limits
still run for every request: the cache sits inside the view. A new sync changes the version,
so no response outlives its catalog.

What a caller may ask depends on who it is (an anonymous caller may name fewer places, and may not
rank by benchmark scores), so entries, and ETags, are kept per audience (anonymous callers, or
authenticated ones, who may all ask the same) as well as per path. The view validates its query once,
with its FilterSet, inside the cached `get`: a query an anonymous caller may not ask is refused there
(a 400 is never stored), and can never be answered from what an authenticated caller was allowed.

For HTTP caches: `ETag` from the catalog version, the audience and the request (a `304` on
`If-None-Match`, after the caller's limits were applied), and `Cache-Control` by kind of data: public
for what anyone may read, private (with `Vary: Authorization, X-API-Key`) for answers only
authenticated callers get; shorter for prices. Whether an answer is for authenticated callers only is
decided after validation, by the view's `for_callers_only()` or else its validated FilterSet's, and kept
with the stored answer, so that a cache hit and a 304 carry the same headers as the first answer.
Errors are never cached (keeper.api.middleware.CacheControlMiddleware marks them no-store).
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import parse_etags, patch_vary_headers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.version import catalog_version
from keeper.api.callers import caller_of
from keeper.api.renderers import ORJSONRenderer

CACHED_HEADERS = ("X-Total-Count",)
CATALOG, PRICES = "catalog", "prices"
# The request headers that name a caller (a session's cookie is read only by the admin's own pages).
CALLER_HEADERS = ("Authorization", "X-API-Key")
# Who may ask what: every authenticated caller may ask the same, anonymous callers less.
ANONYMOUS, AUTHENTICATED = "anonymous", "authenticated"


def cache_control(kind: str, *, private: bool) -> str:
    max_age = settings.KEEPER_PRICES_MAX_AGE_SECONDS if kind == PRICES else settings.KEEPER_CATALOG_MAX_AGE_SECONDS
    audience = "private" if private else "public"
    return f"{audience}, max-age={max_age}, stale-while-revalidate={max_age * 6}"


def audience_of(request: Request) -> str:
    """The audience whose entries a request reads (see the module docstring)."""
    return ANONYMOUS if caller_of(request.user) is None else AUTHENTICATED


@dataclass(frozen=True)
class Answer:
    """A 200 as stored: the body (None when it was not rendered here), the headers kept with it, and
    whether only authenticated callers may get it."""

    body: bytes | None
    headers: dict[str, str]
    for_callers_only: bool
    content_type: str = ORJSONRenderer.media_type


def cached_catalog_response(
    get: Callable | None = None, *, kind: str = CATALOG, private: bool = False, media_type: str | None = None
) -> Callable:
    """Decorate a catalog view's `get`; `private=True` for answers that always need an authenticated caller;
    `media_type` for a `get` that answers a rendered HttpResponse of that type (a feed), not DRF data."""

    def decorate(get: Callable) -> Callable:
        @wraps(get)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
            version = catalog_version()
            if version is None:
                return get(view, request, *args, **kwargs)
            path = request._request.get_full_path()
            digest = hashlib.sha256(f"{version}\n{audience_of(request)}\n{path}".encode()).hexdigest()
            etag = f'W/"{digest[:32]}"'
            revalidating = etag in parse_etags(request.META.get("HTTP_IF_NONE_MATCH", ""))
            cache = caches["catalog"] if settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS else None
            key = "response:" + digest
            answer = cache.get(key) if cache is not None else None
            response = None
            if answer is None:
                response = get(view, request, *args, **kwargs)
                answered = Response if media_type is None else HttpResponse
                if response.status_code != 200 or not isinstance(response, answered):
                    return response
                answer = _answer(view, response, private=private, rendered=cache is not None, media_type=media_type)
                if cache is not None and len(answer.body) <= settings.KEEPER_CATALOG_RESPONSE_CACHE_MAX_BYTES:
                    cache.set(key, answer, settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS)
            if revalidating:
                response = HttpResponseNotModified()
            elif response is None or answer.body is not None:
                response = HttpResponse(answer.body, content_type=answer.content_type)
                for name, value in answer.headers.items():
                    response[name] = value
            response["ETag"] = etag
            response["Cache-Control"] = cache_control(kind, private=answer.for_callers_only)
            if answer.for_callers_only:
                patch_vary_headers(response, CALLER_HEADERS)
            return response

        return wrapper

    return decorate(get) if get is not None else decorate


def _answer(
    view: Any, response: HttpResponse, *, private: bool, rendered: bool, media_type: str | None = None
) -> Answer:
    """What is kept of a view's 200: rendered only when it is stored (uncached, DRF renders it as usual);
    a response of `media_type` is rendered already."""
    headers = {name: response[name] for name in CACHED_HEADERS if name in response}
    callers_only = private or _for_callers_only(view)
    if media_type is not None:
        return Answer(body=response.content, headers=headers, for_callers_only=callers_only, content_type=media_type)
    body = ORJSONRenderer().render(response.data) if rendered else None
    return Answer(body=body, headers=headers, for_callers_only=callers_only)


def _for_callers_only(view: Any) -> bool:
    """Whether the view's validated query is one only authenticated callers may ask: the view's own
    `for_callers_only()` decides, or else its validated FilterSet's (apps/catalog/filters/places.py)."""
    for owner in (view, getattr(view, "filterset", None)):
        decide = getattr(owner, "for_callers_only", None)
        if decide is not None:
            return bool(decide())
    return False
