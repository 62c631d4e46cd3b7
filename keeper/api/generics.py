"""Base views of the read-only API: every query string is validated in full."""

from typing import Any

from rest_framework import exceptions, generics, serializers, views
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from keeper.api.filters import StrictFilterBackend


class KeeperViewMixin:
    """Throttles run even when authentication fails, and say which limit was hit.

    DRF authenticates before it throttles, so a flood of bad tokens would never
    meet a limit; here a failed authentication is throttled as an anonymous
    request (and the 401 penalty is charged by RateLimitMiddleware).
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            self.perform_authentication(request)
        except exceptions.AuthenticationFailed:
            self.check_throttles(request)
            raise
        super().initial(request, *args, **kwargs)

    def check_throttles(self, request: Request) -> None:
        for throttle in self.get_throttles():
            if not throttle.allow_request(request, self):
                raise exceptions.Throttled(wait=max(throttle.wait(), 1), detail=getattr(throttle, "detail", None))


class ReadOnlyAPIView(KeeperViewMixin, views.APIView):
    """An endpoint without a FilterSet; its query parameters come from `query_serializer_class`."""

    query_serializer_class: type[serializers.Serializer] = serializers.Serializer

    def query_params(self, request: Request) -> dict[str, Any]:
        """The validated query parameters; malformed or unknown ones are a 400 naming them."""
        serializer = self.query_serializer_class(data=request.query_params)
        errors = {} if serializer.is_valid() else dict(serializer.errors)
        errors.update(
            {name: ["Unknown query parameter."] for name in request.query_params if name not in serializer.fields}
        )
        if errors:
            raise ValidationError(errors)
        return serializer.validated_data


class ReadOnlyListAPIView(KeeperViewMixin, generics.GenericAPIView):
    """A list endpoint filtered by its FilterSet, which validates the whole query string."""

    filter_backends = [StrictFilterBackend]
    # Set by StrictFilterBackend once the query string is valid.
    filterset = None
