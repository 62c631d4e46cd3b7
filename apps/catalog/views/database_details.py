"""One managed database's resources: `/database/{vendor}/{database}`, its `/prices`, `/benchmarks` and
`/price_history` (the newest Spare Cores API's routers/database.py, and Keeper's history of its prices)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.caching import PRICES, cached_catalog_response
from apps.catalog.filters.database_details import DatabasePriceHistoryFilterSet, DatabasePricesFilterSet
from apps.catalog.models import DatabasePrice
from apps.catalog.selectors import database_details as selectors
from apps.catalog.selectors.history import DATABASE_PRICE_HISTORY, price_history_rows
from apps.catalog.serializers_databases import (
    DatabasePriceHistorySerializer,
    DatabasePriceOfDatabaseSerializer,
    DatabaseSerializer,
)
from apps.catalog.serializers_details import BenchmarkScoreSerializer
from keeper.api.generics import ReadOnlyAPIView, ReadOnlyListAPIView

DATABASE_PATH = [
    OpenApiParameter("vendor", str, OpenApiParameter.PATH, description="Vendor id, e.g. aws."),
    OpenApiParameter("database", str, OpenApiParameter.PATH, description="Database id or API reference."),
]
TAGS = ["Database Details"]
UNKNOWN = OpenApiResponse(description="Unknown database.")


def unknown_database(vendor: str, database: str) -> NotFound:
    return NotFound(f"Database {database!r} of vendor {vendor!r} not found (by database id or API reference).")


class DatabaseDetailView(ReadOnlyAPIView):
    @extend_schema(
        operation_id="get_database",
        summary="Get a managed database",
        description=(
            "One managed database offering by its id or API reference, e.g. `/database/aws/db.m6i.large`, "
            "whatever its status (retired ones too)."
        ),
        tags=TAGS,
        parameters=DATABASE_PATH,
        responses={200: DatabaseSerializer, 404: UNKNOWN},
    )
    @cached_catalog_response
    def get(self, request: Request, vendor: str, database: str) -> Response:
        self.query_params(request)
        row = selectors.database_row(vendor_id=vendor, database=database)
        if row is None:
            raise unknown_database(vendor, database)
        return Response(row)


class DatabasePricesView(ReadOnlyListAPIView):
    queryset = DatabasePrice.objects.none()
    filterset_class = DatabasePricesFilterSet

    @extend_schema(
        operation_id="database_prices_of_database",
        summary="Prices of a managed database",
        description=(
            "The database's active prices in every region, allocation, HA level and strategy, ordered by them; "
            "`countries` and `vendor_regions` narrow them (anonymous callers: at most 1 country and 3 regions)."
        ),
        tags=TAGS,
        parameters=DATABASE_PATH,
        responses={200: DatabasePriceOfDatabaseSerializer(many=True), 404: UNKNOWN},
    )
    @cached_catalog_response(kind=PRICES)
    def get(self, request: Request, vendor: str, database: str) -> Response:
        query = self.validated_filterset(request).query
        rows = selectors.database_price_rows(vendor_id=vendor, database=database, query=query)
        if rows is None:
            raise unknown_database(vendor, database)
        return Response(rows)


class DatabaseBenchmarksView(ReadOnlyAPIView):
    @extend_schema(
        operation_id="database_benchmarks",
        summary="Benchmark scores of a managed database",
        description="The database's active benchmark scores, in the Spare Cores display order of benchmarks.",
        tags=TAGS,
        parameters=DATABASE_PATH,
        responses={200: BenchmarkScoreSerializer(many=True), 404: UNKNOWN},
    )
    @cached_catalog_response
    def get(self, request: Request, vendor: str, database: str) -> Response:
        self.query_params(request)
        rows = selectors.database_benchmark_rows(vendor_id=vendor, database=database)
        if rows is None:
            raise unknown_database(vendor, database)
        return Response(rows)


class DatabasePriceHistoryView(ReadOnlyListAPIView):
    queryset = DatabasePrice.objects.none()
    filterset_class = DatabasePriceHistoryFilterSet

    @extend_schema(
        operation_id="database_price_history",
        summary="Price history of a managed database",
        description=(
            "Per region, allocation, HA level and strategy, the database's prices over time as (from, until, "
            "price) segments, oldest first, while the price was active (as `/database/{vendor}/{database}/prices` "
            "lists them); `until` null is the current price. A database gone from the catalog keeps its history "
            "under its id."
        ),
        tags=TAGS,
        parameters=DATABASE_PATH,
        responses={
            200: DatabasePriceHistorySerializer(many=True),
            404: OpenApiResponse(description="Unknown database (in the catalog and in its history)."),
        },
    )
    @cached_catalog_response(kind=PRICES)
    def get(self, request: Request, vendor: str, database: str) -> Response:
        query = self.validated_filterset(request).query
        rows = price_history_rows(DATABASE_PRICE_HISTORY, vendor_id=vendor, name=database, query=query)
        if rows is None:
            raise unknown_database(vendor, database)
        return Response(rows)
