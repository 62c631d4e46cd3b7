"""Base views of the read-only API: every query string is validated in full."""

import functools
from typing import Any

from django.core import validators
from django.http import QueryDict
from rest_framework import exceptions, fields, generics, serializers, views
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from keeper.api.callers import presents_credentials
from keeper.api.filters import StrictFilterBackend
from keeper.api.serializers import BLANK_MESSAGE, blank_parameters


class KeeperViewMixin:
    """Every request meets the limits, and a refusal says which limit was hit.

    DRF checks permissions before throttles and stops at a failed
    authentication, so a flood of bad tokens, of calls while the identity
    provider is down, or of forbidden calls would never meet a limit. Here the
    throttles run right after authentication (as an anonymous request when it
    failed), before permissions; RateLimitMiddleware adds the 401 penalty.
    """

    def perform_authentication(self, request: Request) -> None:
        if not presents_credentials(request._request) and all(
            getattr(authenticator, "anonymous_without_credentials", False) for authenticator in request.authenticators
        ):
            # Each would return None: conclude as DRF does when all of them have (an anonymous user, no auth).
            request._not_authenticated()
            return
        super().perform_authentication(request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(request)
        request.version, request.versioning_scheme = self.determine_version(request, *args, **kwargs)
        try:
            self.perform_authentication(request)
        except exceptions.APIException:
            self.check_throttles(request)
            raise
        self.check_throttles(request)
        self.check_permissions(request)

    def check_throttles(self, request: Request) -> None:
        for throttle in self.get_throttles():
            if not throttle.allow_request(request, self):
                # Which limit refused, for the refusal counts of the staff overview (apps/keys/traffic.py).
                request._request.throttled_by = type(throttle)
                # No wait (DRF's None) when waiting cannot help: no Retry-After then.
                wait = throttle.wait()
                wait = max(wait, 1) if wait is not None else None
                raise exceptions.Throttled(wait=wait, detail=getattr(throttle, "detail", None))


# What a query serializer may be read once for: DRF's own serializer methods and fields, with fixed
# defaults and Django's own validators (bounds, lengths: nothing that reads the database).
_SERIALIZER_METHODS = (
    "is_valid",
    "run_validation",
    "to_internal_value",
    "validate",
    "run_validators",
    "get_validators",
)
_FIXED_DEFAULTS = (str, int, float, bool, type(None))


@functools.cache
def _empty_query_answer(serializer_class: type[serializers.Serializer]) -> dict[str, Any] | None:
    """What `serializer_class` reads from an empty query string, when that is the same on every request;
    None when it is not (a required parameter, a callable default, a field or validation of its own).

    Most requests of the endpoints without a FilterSet carry no parameters at all, and building and
    running a DRF serializer for nothing cost more than their SQL (~25 us of a ~0.5 ms answer).
    """
    base = serializers.Serializer
    if any(getattr(serializer_class, name) is not getattr(base, name) for name in _SERIALIZER_METHODS):
        return None
    if getattr(getattr(serializer_class, "Meta", None), "validators", None):
        return None
    serializer = serializer_class(data=QueryDict())
    for field in serializer.fields.values():
        if type(field).__module__ != fields.__name__ or field.required:
            return None
        if any(type(validator).__module__ != validators.__name__ for validator in field.validators):
            return None
        if field.default is not fields.empty and not isinstance(field.default, _FIXED_DEFAULTS):
            return None
    if not serializer.is_valid():
        return None
    return dict(serializer.validated_data)


def validated_query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The query string read by `serializer_class`; malformed, blank or unknown parameters are a 400 naming them."""
    if not request.query_params:
        answer = _empty_query_answer(serializer_class)
        if answer is not None:
            return dict(answer)
    serializer = serializer_class(data=request.query_params)
    errors = {} if serializer.is_valid() else dict(serializer.errors)
    errors.update({name: [BLANK_MESSAGE] for name in blank_parameters(serializer, request.query_params)})
    unknown = [name for name in request.query_params if name not in serializer.fields]
    errors.update({name: ["Unknown query parameter."] for name in unknown})
    if errors:
        raise ValidationError(errors)
    return serializer.validated_data


class ReadOnlyAPIView(KeeperViewMixin, views.APIView):
    """An endpoint without a FilterSet; its query parameters come from `query_serializer_class`."""

    query_serializer_class: type[serializers.Serializer] = serializers.Serializer

    def query_params(self, request: Request) -> dict[str, Any]:
        """The validated query parameters; malformed or unknown ones are a 400 naming them."""
        return validated_query(self.query_serializer_class, request)


class ReadOnlyListAPIView(KeeperViewMixin, generics.GenericAPIView):
    """A list endpoint filtered by its FilterSet, which validates the whole query string."""

    filter_backends = [StrictFilterBackend]
    # Set by StrictFilterBackend once the query string is valid.
    filterset = None

    def validated_filterset(self, request: Request) -> Any:
        """The view's FilterSet over the whole query string (a 400 naming each bad parameter), for a view
        whose selector reads the validated values rather than a filtered queryset."""
        return StrictFilterBackend().validated_filterset(request, self.get_queryset(), self)
