from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog import search
from apps.catalog.caching import cached_catalog_response
from apps.catalog.filters import RegionFilterSet, ServerFilterSet, currency_choices
from apps.catalog.filters.places import Places, place_limit_errors
from apps.catalog.models import Region, Server
from apps.catalog.selectors import catalog as selectors
from apps.catalog.selectors import tables as table_selectors
from apps.catalog.serializers import (
    TABLE_SERIALIZERS,
    HealthSerializer,
    RegionWithVendorSerializer,
    ServerSearchResultSerializer,
    StatsSerializer,
)
from apps.catalog.serializers_details import StatsParameters
from keeper.api.exceptions import ServiceUnavailable
from keeper.api.filters import StrictFilterBackend
from keeper.api.generics import ReadOnlyAPIView, ReadOnlyListAPIView
from keeper.api.pagination import LimitPagePagination


class ServerSearchView(ReadOnlyListAPIView):
    queryset = Server.objects.all()
    filterset_class = ServerFilterSet
    pagination_class = LimitPagePagination

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        # Before the response cache is read: what an anonymous caller may ask depends on the caller,
        # the cache only on the query string. Counting is enough here; `get` validates the values.
        errors = place_limit_errors(self._asked_places(request), request.user)
        if errors:
            raise ValidationError(errors)

    def answer_needs_caller(self, request: Request) -> bool:
        """More places than an anonymous caller may name: the answer is private (apps/catalog/caching.py)."""
        return bool(place_limit_errors(self._asked_places(request), None))

    @staticmethod
    def _asked_places(request: Request) -> Places:
        query = request.query_params
        return Places(
            regions=tuple(query.getlist("regions")),
            vendor_regions=Places.pairs(v for v in query.getlist("vendor_regions") if "~" in v),
            countries=tuple(query.getlist("countries")),
        )

    @extend_schema(
        operation_id="search_servers",
        summary="Search servers",
        tags=["Query Resources"],
        responses=ServerSearchResultSerializer(many=True),
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        filterset = StrictFilterBackend().validated_filterset(request, self.get_queryset(), self)
        limit, page, count = self.paginator.page_of(request)
        rows, total = search.search_servers(filterset.params, filterset.places, limit=limit, page=page, count=count)
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
        row = search.server_by_reference(vendor, server, currency=params["currency"])
        if row is None:
            raise NotFound(f"Server {server!r} of vendor {vendor!r} not found (by server id or API reference).")
        return Response(row)


class RegionListView(ReadOnlyListAPIView):
    queryset = Region.objects.order_by("vendor_id", "region_id")
    filterset_class = RegionFilterSet

    @extend_schema(summary="List regions", tags=["Query Resources"], responses=RegionWithVendorSerializer(many=True))
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        return Response(selectors.region_rows(self.filter_queryset(self.get_queryset())))


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


def table_urls() -> list:
    return [
        path(f"table/{name}", _table_view(name, serializer).as_view(), name=f"table-{name}")
        for name, serializer in TABLE_SERIALIZERS.items()
    ]
