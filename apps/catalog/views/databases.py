"""`GET /databases`: the managed-database search (the FilterSet validates, the selector answers)."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.caching import cached_catalog_response
from apps.catalog.filters.databases import DatabaseFilterSet
from apps.catalog.models import Database
from apps.catalog.selectors import databases
from apps.catalog.serializers_databases import DatabaseSearchResultSerializer
from keeper.api.filters import StrictFilterBackend
from keeper.api.generics import ReadOnlyListAPIView
from keeper.api.pagination import LimitPagePagination


class DatabaseSearchView(ReadOnlyListAPIView):
    queryset = Database.objects.all()
    filterset_class = DatabaseFilterSet
    pagination_class = LimitPagePagination

    @extend_schema(
        operation_id="search_databases",
        summary="Search managed databases",
        tags=["Query Resources"],
        responses=DatabaseSearchResultSerializer(many=True),
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        filterset = StrictFilterBackend().validated_filterset(request, self.get_queryset(), self)
        rows, total = databases.search_databases(filterset.search())
        return Response(rows, headers={} if total is None else {"X-Total-Count": str(total)})
