from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.serializers import MeSerializer
from keeper.api.callers import IsAuthenticatedCaller, caller_of
from keeper.api.generics import ReadOnlyAPIView


class MeView(ReadOnlyAPIView):
    permission_classes = [IsAuthenticatedCaller]

    @extend_schema(summary="Who am I", tags=["Accounts"], responses=MeSerializer)
    def get(self, request: Request) -> Response:
        self.query_params(request)
        caller = caller_of(request.user)
        return Response(
            {
                "user_id": caller.user_id,
                "auth_method": caller.auth_method,
                "credits_per_minute": caller.credits_per_minute or settings.RATE_LIMIT_CREDITS_PER_MINUTE,
                "is_staff": caller.is_staff,
                "scope": caller.scope,
                "organization": caller.organization,
                "extra": caller.extra,
            }
        )
