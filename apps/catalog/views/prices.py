"""Price searches: `/server_prices`, `/storage_prices`, `/traffic_prices`, `/database_storage_prices`, and the
`/table/server_prices` and `/table/database_price` dumps."""

from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.caching import cached_catalog_response
from apps.catalog.filters.prices import (
    SERVER_PRICES_MAX_LIMIT,
    DatabasePriceTableFilterSet,
    DatabaseStoragePriceFilterSet,
    ServerPriceFilterSet,
    ServerPriceTableFilterSet,
    StoragePriceFilterSet,
    TrafficPriceFilterSet,
)
from apps.catalog.models import DatabasePrice, DatabaseStoragePrice, ServerPrice, StoragePrice, TrafficPrice
from apps.catalog.selectors import prices as selectors
from apps.catalog.serializers_databases import DatabasePriceSerializer, DatabaseStoragePriceSearchRowSerializer
from apps.catalog.serializers_prices import (
    ServerPriceSearchRowSerializer,
    ServerPriceTableRowSerializer,
    StoragePriceRowSerializer,
    TrafficPriceRowSerializer,
)
from keeper.api.callers import IsAuthenticatedCaller
from keeper.api.generics import ReadOnlyListAPIView
from keeper.api.pagination import LimitPagePagination
from keeper.api.renderers import ORJSONRenderer
from keeper.api.streams import StreamSlots


class ServerPricePagination(LimitPagePagination):
    """`limit` 1 to 250 (default 25): upstream caps this search, whose rows are large. The page parameters
    are validated by the FilterSet (keeper.api.filters.PagingFilterSet); this documents them."""

    default_limit = ServerPriceFilterSet.default_limit

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == "limit":
                parameter["description"] = (
                    f"Rows per page (default {self.default_limit}, 1 to {SERVER_PRICES_MAX_LIMIT})."
                )
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": SERVER_PRICES_MAX_LIMIT,
                    "default": self.default_limit,
                }
        return parameters


class UnitPricePagination(LimitPagePagination):
    default_limit = StoragePriceFilterSet.default_limit


def _answer(rows_and_total: tuple[list[dict[str, Any]], int | None]) -> Response:
    rows, total = rows_and_total
    return Response(rows, headers={} if total is None else {"X-Total-Count": str(total)})


class ServerPriceSearchView(ReadOnlyListAPIView):
    queryset = ServerPrice.objects.all()
    filterset_class = ServerPriceFilterSet
    pagination_class = ServerPricePagination

    @extend_schema(
        operation_id="search_server_prices",
        summary="Search server prices",
        description=(
            "One row per price (server, zone, allocation) with its vendor, region (and country), zone and "
            "server; ordered by price by default."
        ),
        tags=["Query Resources"],
        responses=ServerPriceSearchRowSerializer(many=True),
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        return _answer(selectors.server_prices(self.validated_filterset(request).search()))


class StoragePriceSearchView(ReadOnlyListAPIView):
    queryset = StoragePrice.objects.all()
    filterset_class = StoragePriceFilterSet
    pagination_class = UnitPricePagination

    @extend_schema(
        operation_id="search_storage_prices",
        summary="Search storage prices",
        description="Active block storage prices with their region (and country), vendor and storage.",
        tags=["Query Resources"],
        responses=StoragePriceRowSerializer(many=True),
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        return _answer(selectors.storage_prices(self.validated_filterset(request).search()))


class TrafficPriceSearchView(ReadOnlyListAPIView):
    queryset = TrafficPrice.objects.all()
    filterset_class = TrafficPriceFilterSet
    pagination_class = UnitPricePagination

    @extend_schema(
        operation_id="search_traffic_prices",
        summary="Search traffic prices",
        description=(
            "Active network traffic prices with their region (and country) and vendor, and the cost of "
            "`monthly_traffic` GB under the price tiers."
        ),
        tags=["Query Resources"],
        responses=TrafficPriceRowSerializer(many=True),
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        return _answer(selectors.traffic_prices(self.validated_filterset(request).search()))


class DatabaseStoragePriceSearchView(ReadOnlyListAPIView):
    queryset = DatabaseStoragePrice.objects.all()
    filterset_class = DatabaseStoragePriceFilterSet
    pagination_class = UnitPricePagination

    @extend_schema(
        operation_id="search_database_storage_prices",
        summary="Search database storage prices",
        description=(
            "Active prices of managed databases' storage products with their region (and country), vendor and "
            "database storage; `price_change_since` keeps the prices changed since then, with `previous_price`."
        ),
        tags=["Query Resources"],
        responses=DatabaseStoragePriceSearchRowSerializer(many=True),
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        return _answer(selectors.database_storage_prices(self.validated_filterset(request).search()))


def _dump_limits() -> tuple[int, int, float]:
    # Per process only: a dump holds a database connection while its client reads, whoever asked.
    # The longest life only estimates Retry-After: a client that stops reading is cut off by then.
    per_process = settings.KEEPER_STREAMS_PER_PROCESS
    return per_process, per_process, settings.KEEPER_SEND_TIMEOUT_SECONDS


# Table dumps streaming at once in a process (429 with Retry-After beyond).
dump_streams = StreamSlots(_dump_limits)


class ServerPriceTableView(ReadOnlyListAPIView):
    """The server price table. Hundreds of thousands of rows (about 125 MB): streamed, a chunk at a time
    as the client takes them, on a database connection of its own (keeper.api.streams); never cached."""

    queryset = ServerPrice.objects.all()
    filterset_class = ServerPriceTableFilterSet
    permission_classes = [IsAuthenticatedCaller]

    @extend_schema(
        operation_id="table_server_prices",
        summary="Table dump: server_prices",
        description="The server prices without their relations, for authenticated callers.",
        tags=["Table dumps"],
        responses=ServerPriceTableRowSerializer(many=True),
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        query = self.validated_filterset(request).query()
        body = dump_streams.open("dump", selectors.server_price_table_stream(query))
        return StreamingHttpResponse(body, content_type=ORJSONRenderer.media_type)


class DatabasePriceTableView(ReadOnlyListAPIView):
    """The managed database price table (tens of thousands of rows at most): answered whole and cached, per
    audience, like the catalog's other answers, but for authenticated callers only (as upstream)."""

    queryset = DatabasePrice.objects.all()
    filterset_class = DatabasePriceTableFilterSet
    permission_classes = [IsAuthenticatedCaller]

    @extend_schema(
        operation_id="table_database_price",
        summary="Table dump: database_price",
        description="The managed database prices without their relations, for authenticated callers.",
        tags=["Table dumps"],
        responses=DatabasePriceSerializer(many=True),
    )
    @cached_catalog_response(private=True)
    def get(self, request: Request) -> Response:
        return Response(selectors.database_price_table_rows(self.validated_filterset(request).query()))
