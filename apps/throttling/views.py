from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.throttling import services
from apps.throttling.serializers import (
    GlobalRateLimitSerializer,
    NestedGlobalRateLimitSerializer,
    global_limit_changes,
)
from keeper.api.callers import IsStaffCaller
from keeper.api.generics import ReadOnlyAPIView

GLOBAL_RATE_LIMIT_CHANGE = PolymorphicProxySerializer(
    component_name="GlobalRateLimitChange",
    serializers=[GlobalRateLimitSerializer, NestedGlobalRateLimitSerializer],
    # No discriminator field: the shape is told by the presence of "api".
    resource_type_field_name=None,
)


class GlobalConfigView(ReadOnlyAPIView):
    """The global token bucket; changes apply to the next request in every process and survive restarts."""

    permission_classes = [IsStaffCaller]
    # Never refused by the bucket it configures: a bucket set too small can always be set right here.
    global_bucket_exempt = True

    @extend_schema(summary="Global rate limit", tags=["Administrative"], responses=GlobalRateLimitSerializer)
    def get(self, request: Request) -> Response:
        self.query_params(request)
        return Response(GlobalRateLimitSerializer(services.global_limit()).data)

    @extend_schema(
        summary="Change the global rate limit",
        description=(
            'Either field may be left out. The body is flat, `{"rate_limit": 50, "rate_burst": 5}`, '
            'or nested under `api`, `{"api": {"rate_limit": 50, "rate_burst": 5}}`; a mix of the two, '
            "an unknown key, or a value out of bounds is a 400. The answer is always flat."
        ),
        tags=["Administrative"],
        request=GLOBAL_RATE_LIMIT_CHANGE,
        responses=GlobalRateLimitSerializer,
        examples=[
            OpenApiExample("Flat", value={"rate_limit": 50, "rate_burst": 5}, request_only=True),
            OpenApiExample("Nested", value={"api": {"rate_limit": 50, "rate_burst": 5}}, request_only=True),
        ],
    )
    def patch(self, request: Request) -> Response:
        self.query_params(request)
        limit = services.global_limit_update(**global_limit_changes(request.data))
        return Response(GlobalRateLimitSerializer(limit).data)
