"""The catalog history: `/changes`, `/syncs` and `/server/{vendor}/{server}/price_history`."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.caching import PRICES, cached_catalog_response
from apps.catalog.filters.history import HISTORY_MAX_LIMIT, ChangeFilterSet, PriceHistoryFilterSet, SyncFilterSet
from apps.catalog.models import CatalogChange, ServerPrice, SyncRun
from apps.catalog.selectors import history as selectors
from apps.catalog.serializers_history import CatalogChangeSerializer, PriceHistorySerializer, SyncSerializer
from apps.catalog.views.server_details import SERVER_PATH, unknown_server
from keeper.api.generics import ReadOnlyListAPIView
from keeper.api.pagination import LimitPagePagination

TAGS = ["Catalog history"]


class HistoryPagination(LimitPagePagination):
    """Documents `limit` as HistoryFilterSet validates it: 1 to HISTORY_MAX_LIMIT (default 25), no `-1`."""

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == "limit":
                parameter["description"] = f"Rows per page (default {self.default_limit}, 1 to {HISTORY_MAX_LIMIT})."
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": HISTORY_MAX_LIMIT,
                    "default": self.default_limit,
                }
        return parameters


class ChangeListView(ReadOnlyListAPIView):
    queryset = CatalogChange.objects.all()
    filterset_class = ChangeFilterSet
    pagination_class = HistoryPagination

    @extend_schema(
        operation_id="catalog_changes",
        summary="Catalog changes",
        description=(
            "What the syncs changed in the catalog, newest first: rows added and removed, statuses and "
            "columns changed with their old and new values (prices with their currency; benchmark scores "
            "as each server's best score per benchmark). Kept for KEEPER_HISTORY_DAYS; the first sync "
            "records none."
        ),
        tags=TAGS,
        responses=CatalogChangeSerializer(many=True),
    )
    @cached_catalog_response(kind=PRICES)
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(selectors.change_rows(page))


class SyncListView(ReadOnlyListAPIView):
    queryset = SyncRun.objects.all()
    filterset_class = SyncFilterSet
    pagination_class = HistoryPagination

    @extend_schema(
        operation_id="catalog_syncs",
        summary="Catalog syncs",
        description="The syncs that loaded a catalog, newest first, with their changes counted per table and kind.",
        tags=TAGS,
        responses=SyncSerializer(many=True),
    )
    @cached_catalog_response(kind=PRICES)
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(selectors.sync_rows(page))


class PriceHistoryView(ReadOnlyListAPIView):
    queryset = ServerPrice.objects.none()
    filterset_class = PriceHistoryFilterSet

    @extend_schema(
        operation_id="server_price_history",
        summary="Price history of a server",
        description=(
            "Per region, zone and allocation, the server's prices over time as (from, until, price) segments, "
            "oldest first, while the price was active (as `/server/{vendor}/{server}/prices` lists them); "
            "`until` null is the current price. A server gone from the catalog keeps its history under its id."
        ),
        tags=TAGS,
        parameters=SERVER_PATH,
        responses={
            200: PriceHistorySerializer(many=True),
            404: OpenApiResponse(description="Unknown server (in the catalog and in its history)."),
        },
    )
    @cached_catalog_response(kind=PRICES)
    def get(self, request: Request, vendor: str, server: str) -> Response:
        query = self.validated_filterset(request).query
        rows = selectors.price_history_rows(selectors.SERVER_PRICE_HISTORY, vendor_id=vendor, name=server, query=query)
        if rows is None:
            raise unknown_server(vendor, server)
        return Response(rows)
