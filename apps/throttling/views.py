from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import IsStaffCaller
from apps.throttling import services
from apps.throttling.serializers import GlobalRateLimitSerializer
from keeper.api.generics import ReadOnlyAPIView


class GlobalConfigView(ReadOnlyAPIView):
    """The global token bucket; changes apply to the next request in every process and survive restarts."""

    permission_classes = [IsStaffCaller]

    @extend_schema(summary="Global rate limit", tags=["Administrative"], responses=GlobalRateLimitSerializer)
    def get(self, request: Request) -> Response:
        self.query_params(request)
        return Response(GlobalRateLimitSerializer(services.global_limit()).data)

    @extend_schema(
        summary="Change the global rate limit",
        tags=["Administrative"],
        request=GlobalRateLimitSerializer,
        responses=GlobalRateLimitSerializer,
    )
    def patch(self, request: Request) -> Response:
        self.query_params(request)
        serializer = GlobalRateLimitSerializer(services.global_limit(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        limit = services.global_limit_update(**serializer.validated_data)
        return Response(GlobalRateLimitSerializer(limit).data)
