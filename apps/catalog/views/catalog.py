from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.caching import cached_catalog_response
from apps.catalog.filters import RegionFilterSet, ServerFilterSet, currency_choices
from apps.catalog.models import Region, Server
from apps.catalog.selectors import catalog as selectors
from apps.catalog.selectors import servers
from apps.catalog.selectors import tables as table_selectors
from apps.catalog.serializers import (
    TABLE_SERIALIZERS,
    HealthSerializer,
    RegionWithVendorSerializer,
    ServerSearchResultSerializer,
    StatsSerializer,
)
from apps.catalog.serializers_databases import DATABASE_TABLE_SERIALIZERS
from apps.catalog.serializers_details import StatsParameters
from keeper.api.exceptions import ServiceUnavailable
from keeper.api.filters import StrictFilterBackend
from keeper.api.generics import ReadOnlyAPIView, ReadOnlyListAPIView
from keeper.api.pagination import LimitPagePagination


class ServerSearchView(ReadOnlyListAPIView):
    queryset = Server.objects.all()
    filterset_class = ServerFilterSet
    pagination_class = LimitPagePagination

    @extend_schema(
        operation_id="search_servers",
        summary="Search servers",
        tags=["Query Resources"],
        responses=ServerSearchResultSerializer(many=True),
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        filterset = StrictFilterBackend().validated_filterset(request, self.get_queryset(), self)
        rows, total = servers.search_servers(filterset.search())
        return Response(rows, headers={} if total is None else {"X-Total-Count": str(total)})


class CurrencyParameters(serializers.Serializer):
    currency = serializers.ChoiceField(choices=currency_choices(), default="USD", help_text="Currency of the prices.")


class ServerDetailView(ReadOnlyAPIView):
    query_serializer_class = CurrencyParameters

    @extend_schema(
        summary="Get a server",
        description="One server by its id or API reference, e.g. `/server/aws/p3.8xlarge`.",
        tags=["Server Details"],
        parameters=[
            OpenApiParameter("vendor", str, OpenApiParameter.PATH, description="Vendor id, e.g. aws."),
            OpenApiParameter("server", str, OpenApiParameter.PATH, description="Server id or API reference."),
        ],
        responses={200: ServerSearchResultSerializer, 404: OpenApiResponse(description="Unknown server.")},
    )
    @cached_catalog_response
    def get(self, request: Request, vendor: str, server: str) -> Response:
        params = self.query_params(request)
        row = servers.server_by_reference(vendor, server, currency=params["currency"])
        if row is None:
            raise NotFound(f"Server {server!r} of vendor {vendor!r} not found (by server id or API reference).")
        return Response(row)


class RegionListView(ReadOnlyListAPIView):
    queryset = Region.objects.order_by("vendor_id", "region_id")
    filterset_class = RegionFilterSet

    @extend_schema(summary="List regions", tags=["Query Resources"], responses=RegionWithVendorSerializer(many=True))
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        filterset = StrictFilterBackend().validated_filterset(request, self.get_queryset(), self)
        return Response(selectors.region_rows(filterset.vendor_ids))


class StatsView(ReadOnlyAPIView):
    query_serializer_class = StatsParameters

    @extend_schema(summary="Catalog statistics", tags=["Administrative"], responses=StatsSerializer)
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        params = self.query_params(request)
        return Response(table_selectors.catalog_stats(vendor=params.get("vendor"), only_active=params["only_active"]))


class HealthcheckView(ReadOnlyAPIView):
    @extend_schema(
        summary="Health check",
        description="Package versions and the loaded catalog; 503 while no catalog has ever been loaded.",
        tags=["Administrative"],
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(
                HealthSerializer,
                description="No catalog has been loaded yet (this body), or the server is overloaded (the error body).",
            ),
        },
    )
    def get(self, request: Request) -> Response:
        self.query_params(request)
        health = selectors.cached_health()
        status = 200 if health["database_hash"] else ServiceUnavailable.status_code
        return Response(health, status=status)


class TableView(ReadOnlyAPIView):
    """A whole catalog table."""

    table: str = ""

    @cached_catalog_response
    def get(self, request: Request) -> Response:
        self.query_params(request)
        return Response(selectors.table_rows(self.table))


def _table_view(name: str, serializer: type[serializers.Serializer]) -> type[TableView]:
    view = type(f"{name.title().replace('_', '')}TableView", (TableView,), {"table": name})
    schema = extend_schema(
        operation_id=f"table_{name}",
        summary=f"Table dump: {name}",
        tags=["Table dumps"],
        responses=serializer(many=True),
    )
    return extend_schema_view(get=schema)(view)


# `/table/{name}` of each whole table (apps/catalog/urls.py), in TABLE_SERIALIZERS' order, the managed
# databases' last.
TABLE_VIEWS = {
    name: _table_view(name, serializer)
    for name, serializer in {**TABLE_SERIALIZERS, **DATABASE_TABLE_SERIALIZERS}.items()
}
