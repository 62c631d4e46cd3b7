"""Catalog responses are pure functions of the request and the catalog version: cache them.

A repeated search on an unchanged catalog returns the stored bytes instead of
filtering, serializing and rendering again (bench/README.md has the figures).
Authentication and limits still run for every request: the cache sits inside
the view. A new sync changes the version, so no response outlives its catalog.
"""

import hashlib
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.selectors import catalog_version
from keeper.api.renderers import ORJSONRenderer

CACHED_HEADERS = ("X-Total-Count",)


def cached_catalog_response(get: Callable) -> Callable:
    @wraps(get)
    def wrapper(view, request: Request, *args, **kwargs):
        if not settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS:
            return get(view, request, *args, **kwargs)
        version = catalog_version()
        if version is None:
            return get(view, request, *args, **kwargs)
        path = request._request.get_full_path()
        key = "response:" + hashlib.sha256(f"{version}\n{path}".encode()).hexdigest()
        cache = caches["catalog"]
        stored = cache.get(key)
        if stored is None:
            response = get(view, request, *args, **kwargs)
            if response.status_code != 200 or not isinstance(response, Response):
                return response
            body = ORJSONRenderer().render(response.data)
            headers = {name: response[name] for name in CACHED_HEADERS if name in response}
            stored = (body, headers)
            if len(body) <= settings.KEEPER_CATALOG_RESPONSE_CACHE_MAX_BYTES:
                cache.set(key, stored, settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS)
        body, headers = stored
        response = HttpResponse(body, content_type=ORJSONRenderer.media_type)
        for name, value in headers.items():
            response[name] = value
        return response

    return wrapper
