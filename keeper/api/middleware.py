from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

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
