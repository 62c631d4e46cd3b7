"""Base views of the read-only API."""

from typing import Any

from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from keeper.api.filters import StrictFilterBackend


class ReadOnlyAPIView(generics.GenericAPIView):
    """A read-only endpoint whose query string is validated in full."""

    filter_backends = [StrictFilterBackend]
    # Set by StrictFilterBackend once the query string is valid.
    filterset = None
    query_serializer_class: type[serializers.Serializer] | None = None

    def query_params(self, request: Request) -> dict[str, Any]:
        """Validated query parameters of endpoints without a FilterSet; unknown ones are a 400."""
        serializer_class = self.query_serializer_class or serializers.Serializer
        serializer = serializer_class(data=request.query_params)
        errors = {} if serializer.is_valid() else dict(serializer.errors)
        errors.update(
            {name: ["Unknown query parameter."] for name in request.query_params if name not in serializer.fields}
        )
        if errors:
            raise ValidationError(errors)
        return serializer.validated_data
