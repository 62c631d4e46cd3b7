from collections.abc import Callable

from corsheaders.middleware import CorsMiddleware as BaseCorsMiddleware
from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.gzip import GZipMiddleware
from django.utils.functional import SimpleLazyObject, empty

from keeper.api.exceptions import error_body


class RejectNullBytesMiddleware:
    """NUL bytes are never valid in Keeper's paths or parameter values (PostgreSQL cannot even store them).

    Parameter *names* with NUL are left to the views, which refuse them as unknown parameters.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return JsonResponse(error_body(f"No endpoint at {request.path!r}.", "not_found"), status=404)
        bad = sorted(name for name, values in request.GET.lists() if any("\x00" in value for value in values))
        if bad:
            errors = {name: ["Null characters are not allowed."] for name in bad}
            return JsonResponse(error_body("Invalid input: null characters.", "invalid", errors), status=400)
        return self.get_response(request)


class CacheControlMiddleware:
    """Every answer says how it may be cached: per caller and errors never (`private, no-store`).

    Catalog views set their own public or private max-age (apps/catalog/caching.py); an answer
    without a Cache-Control of its own is per caller (keys, /me, /config, AI) and is not stored.
    """

    NO_STORE = "private, no-store"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 400 or not response.has_header("Cache-Control"):
            response["Cache-Control"] = self.NO_STORE
            response.headers.pop("ETag", None)
        return response


class CorsMiddleware(BaseCorsMiddleware):
    """django-cors-headers' CORS, its preflight answers saying how they may be cached.

    A preflight is answered here, before the rate limits (it costs no credits) and before
    CacheControlMiddleware, so it would carry no Cache-Control at all. Its answer is the same for every
    caller and path (any origin, the same allowed headers and methods): shared caches may keep it as
    long as browsers do (CORS_PREFLIGHT_MAX_AGE).
    """

    def check_preflight(self, request: HttpRequest) -> HttpResponse | None:
        response = super().check_preflight(request)
        if response is not None:
            response["Cache-Control"] = f"public, max-age={settings.CORS_PREFLIGHT_MAX_AGE}"
        return response


class CompressMiddleware(GZipMiddleware):
    """gzip for bodies of 200 bytes or more when the client accepts it; never for streams or per-caller answers.

    Streams (server-sent events) must reach the client event by event. Per-caller answers can hold a
    secret next to text the caller chose (a new key and its name): compressing those would let an
    observer of sizes guess the secret (BREACH), while they are small and rare anyway.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.streaming or "no-store" in response.get("Cache-Control", ""):
            return response
        return super().process_response(request, response)


class LazyMessageMiddleware(MessageMiddleware):
    """Django's messages (the admin's "key created" notes), their storage made on first use.

    Only the admin's pages use them; making the storage for every API request (a cookie signer and a
    session storage, ~8 us) and asking it to save nothing at the end was a tenth of a small answer's
    time in Django. A storage nobody touched has nothing to save: Django's update() would do nothing.
    """

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = request.__dict__.get("_messages")
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)
